//! The one UTC calendar: civil date and time ↔ Unix seconds, on the `time` crate. Pure; the
//! clock is the caller's.

use time::{Date, Month, OffsetDateTime, PrimitiveDateTime, Time};

/// A UTC date and time by its fields.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Civil {
    pub year: i32,
    pub month: u8,
    pub day: u8,
    pub hour: u8,
    pub minute: u8,
    pub second: u8,
}

impl Civil {
    /// Unix seconds, or `None` when the fields name no instant (month 13, February 30, hour
    /// 24...). A leap second (`:60`) is taken as the next second, as SigV4 dates may carry it.
    pub fn to_unix(self) -> Option<i64> {
        let leap = i64::from(self.second == 60);
        let date = Date::from_calendar_date(self.year, Month::try_from(self.month).ok()?, self.day).ok()?;
        let time = Time::from_hms(self.hour, self.minute, self.second - leap as u8).ok()?;
        Some(PrimitiveDateTime::new(date, time).assume_utc().unix_timestamp() + leap)
    }

    /// The fields of a Unix time, or `None` beyond the years `time` represents.
    pub fn from_unix(secs: i64) -> Option<Civil> {
        let t = OffsetDateTime::from_unix_timestamp(secs).ok()?;
        Some(Civil {
            year: t.year(),
            month: u8::from(t.month()),
            day: t.day(),
            hour: t.hour(),
            minute: t.minute(),
            second: t.second(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn civil(year: i32, month: u8, day: u8, hour: u8, minute: u8, second: u8) -> Civil {
        Civil { year, month, day, hour, minute, second }
    }

    #[test]
    fn round_trips_and_refuses_what_is_no_date() {
        assert_eq!(civil(1970, 1, 1, 0, 0, 0).to_unix(), Some(0));
        assert_eq!(civil(2024, 2, 29, 0, 0, 0).to_unix(), Some(1_709_164_800));
        assert_eq!(civil(2016, 12, 31, 23, 59, 60).to_unix(), civil(2017, 1, 1, 0, 0, 0).to_unix());
        for t in [0, 1_709_164_800, 1_748_772_030, -86_400, 4_102_444_800] {
            assert_eq!(Civil::from_unix(t).and_then(Civil::to_unix), Some(t));
        }
        for bad in [civil(2023, 2, 29, 0, 0, 0), civil(2025, 13, 1, 0, 0, 0), civil(2025, 6, 1, 24, 0, 0)] {
            assert_eq!(bad.to_unix(), None, "{bad:?}");
        }
    }
}
