//! AWS `cron(...)` schedule expressions (the EventBridge syntax job maintenance windows use):
//! six fields `Minutes Hours Day-of-month Month Day-of-week Year`, parsed into the values each
//! field admits.
//!
//! Written here rather than taken from a cron crate because AWS's dialect differs from the
//! POSIX/Quartz ones those implement: a mandatory Year field (1970..2199), weekdays numbered
//! 1 = SUN .. 7 = SAT, and exactly one of the two day fields must be `?`.
//!
//! [`CronExpression::next_at_or_after`] finds the next fire time (UTC, minute resolution), for
//! maintenance windows and the `scheduledJobRollouts` AWS lists.

use std::collections::BTreeSet;
use std::str::FromStr;

use thiserror::Error;
use time::{Date, OffsetDateTime, Time};

use crate::Millis;

const MINUTE: Millis = 60_000;

/// How far ahead `next_at_or_after` looks: five years of days (with a leap day). An expression
/// that fires less often than that (`cron(0 0 29 2 ? 2100-2199)` from 2026) reports none: that
/// is far past any `schedulingConfig` time (at most two years ahead), and the bound keeps one
/// call at a few thousand day checks whatever the expression.
const SEARCH_DAYS: u32 = 5 * 365 + 2;

#[derive(Debug, Clone, PartialEq, Eq, Error)]
pub enum CronError {
    #[error("a cron expression is written cron(Minutes Hours Day-of-month Month Day-of-week Year)")]
    Wrapper,
    #[error("a cron expression has 6 fields, not {0}")]
    FieldCount(usize),
    #[error("{field} field '{text}': {reason}")]
    Field { field: &'static str, text: String, reason: &'static str },
    #[error("one of Day-of-month and Day-of-week must be '?' and the other must not")]
    DayFields,
}

/// A field's name, value range and (for Month and Day-of-week) the names of its values.
struct Spec {
    name: &'static str,
    lo: u16,
    hi: u16,
    names: &'static [&'static str],
}

const MINUTES: Spec = Spec { name: "Minutes", lo: 0, hi: 59, names: &[] };
const HOURS: Spec = Spec { name: "Hours", lo: 0, hi: 23, names: &[] };
const DAY_OF_MONTH: Spec = Spec { name: "Day-of-month", lo: 1, hi: 31, names: &[] };
const MONTH: Spec = Spec {
    name: "Month",
    lo: 1,
    hi: 12,
    names: &["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"],
};
const DAY_OF_WEEK: Spec =
    Spec { name: "Day-of-week", lo: 1, hi: 7, names: &["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"] };
const YEAR: Spec = Spec { name: "Year", lo: 1970, hi: 2199, names: &[] };

/// The Day-of-month field.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfMonth {
    /// `?`: the day is chosen by Day-of-week.
    Any,
    Days(BTreeSet<u16>),
    /// `L`: the last day of the month.
    Last,
    /// `LW`: the last weekday (MON..FRI) of the month.
    LastWeekday,
    /// `nW`: the weekday nearest to day `n`.
    NearestWeekday(u16),
}

/// The Day-of-week field (1 = SUN .. 7 = SAT).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DayOfWeek {
    /// `?`: the day is chosen by Day-of-month.
    Any,
    Days(BTreeSet<u16>),
    /// `nL`: the last such weekday of the month.
    LastOfMonth(u16),
    /// `d#n`: the n-th (1..5) such weekday of the month.
    Nth {
        day: u16,
        nth: u16,
    },
}

/// A parsed `cron(...)` expression; times are UTC.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CronExpression {
    pub minutes: BTreeSet<u16>,
    pub hours: BTreeSet<u16>,
    pub day_of_month: DayOfMonth,
    pub months: BTreeSet<u16>,
    pub day_of_week: DayOfWeek,
    pub years: BTreeSet<u16>,
}

impl Spec {
    fn error(&self, text: &str, reason: &'static str) -> CronError {
        CronError::Field { field: self.name, text: text.to_string(), reason }
    }

    fn value(&self, text: &str) -> Result<u16, CronError> {
        let upper = text.to_ascii_uppercase();
        let v = match self.names.iter().position(|n| *n == upper) {
            Some(i) => i as u16 + 1,
            None if !text.is_empty() && text.bytes().all(|b| b.is_ascii_digit()) => {
                text.parse().map_err(|_| self.error(text, "value out of range"))?
            }
            None => return Err(self.error(text, "not a value")),
        };
        if !(self.lo..=self.hi).contains(&v) {
            return Err(self.error(text, "value out of range"));
        }
        Ok(v)
    }

    /// A comma-separated list of `*`, `v`, `a-b` (wrapping past the end when a > b), each
    /// optionally `/step`.
    fn list(&self, text: &str) -> Result<BTreeSet<u16>, CronError> {
        let mut out = BTreeSet::new();
        for item in text.split(',') {
            let (base, step) = match item.split_once('/') {
                Some((b, s)) => {
                    let step: u16 = s.parse().map_err(|_| self.error(item, "step is not a number"))?;
                    if step == 0 || step > self.hi - self.lo + 1 {
                        return Err(self.error(item, "step out of range"));
                    }
                    (b, step)
                }
                None => (item, 1),
            };
            let (start, end) = match base.split_once('-') {
                _ if base == "*" => (self.lo, self.hi),
                Some((a, b)) => (self.value(a)?, self.value(b)?),
                // `a/n` runs from `a` to the end of the field.
                None if item.contains('/') => (self.value(base)?, self.hi),
                None => {
                    let v = self.value(base)?;
                    (v, v)
                }
            };
            let span = if end >= start { end - start } else { self.hi - start + 1 + end - self.lo };
            for offset in (0..=span).step_by(usize::from(step)) {
                let v = start + offset;
                out.insert(if v > self.hi { v - (self.hi - self.lo + 1) } else { v });
            }
        }
        Ok(out)
    }
}

fn day_of_month(text: &str) -> Result<DayOfMonth, CronError> {
    let spec = &DAY_OF_MONTH;
    Ok(match text {
        "?" => DayOfMonth::Any,
        "L" | "l" => DayOfMonth::Last,
        "LW" | "lw" => DayOfMonth::LastWeekday,
        _ => match text.strip_suffix(['W', 'w']) {
            Some(day) => DayOfMonth::NearestWeekday(spec.value(day)?),
            None => DayOfMonth::Days(spec.list(text)?),
        },
    })
}

fn day_of_week(text: &str) -> Result<DayOfWeek, CronError> {
    let spec = &DAY_OF_WEEK;
    if text == "?" {
        return Ok(DayOfWeek::Any);
    }
    // `L` alone is the last day of the week.
    if text.eq_ignore_ascii_case("L") {
        return Ok(DayOfWeek::Days(BTreeSet::from([spec.hi])));
    }
    if let Some((day, nth)) = text.split_once('#') {
        let nth = match nth {
            "1" | "2" | "3" | "4" | "5" => nth.bytes().next().map_or(0, |b| u16::from(b - b'0')),
            _ => return Err(spec.error(text, "# takes a week number 1 to 5 and a single weekday")),
        };
        return Ok(DayOfWeek::Nth { day: spec.value(day)?, nth });
    }
    match text.strip_suffix(['L', 'l']) {
        Some(day) => Ok(DayOfWeek::LastOfMonth(spec.value(day)?)),
        None => Ok(DayOfWeek::Days(spec.list(text)?)),
    }
}

impl FromStr for CronExpression {
    type Err = CronError;

    fn from_str(s: &str) -> Result<Self, CronError> {
        let inner = s.strip_prefix("cron(").and_then(|r| r.strip_suffix(')')).ok_or(CronError::Wrapper)?;
        let fields: Vec<&str> = inner.split_whitespace().collect();
        let [minutes, hours, dom, months, dow, years] = fields[..] else {
            return Err(CronError::FieldCount(fields.len()));
        };
        let (day_of_month, day_of_week) = (day_of_month(dom)?, day_of_week(dow)?);
        if (day_of_month == DayOfMonth::Any) == (day_of_week == DayOfWeek::Any) {
            return Err(CronError::DayFields);
        }
        Ok(CronExpression {
            minutes: MINUTES.list(minutes)?,
            hours: HOURS.list(hours)?,
            day_of_month,
            months: MONTH.list(months)?,
            day_of_week,
            years: YEAR.list(years)?,
        })
    }
}

impl CronExpression {
    /// The first fire time at or after `ms` (a time inside a minute counts from the next whole
    /// minute, since fire times are whole minutes), or `None` when there is none within five
    /// years (or before the Year field's end, 2199).
    pub fn next_at_or_after(&self, ms: Millis) -> Option<Millis> {
        let minute = ms.div_euclid(MINUTE) + i64::from(ms.rem_euclid(MINUTE) != 0);
        let start = OffsetDateTime::from_unix_timestamp(minute.checked_mul(60)?).ok()?;
        let mut date = start.date();
        // Only the first day is searched from the start's hour and minute; later ones from 00:00.
        let (mut hour, mut min) = (u16::from(start.hour()), u16::from(start.minute()));
        for _ in 0..=SEARCH_DAYS {
            let year = u16::try_from(date.year()).ok()?;
            if year > YEAR.hi {
                return None;
            }
            if self.years.contains(&year)
                && self.months.contains(&u16::from(u8::from(date.month())))
                && self.fires_on(date)
            {
                if let Some((h, m)) = self.first_time_from(hour, min) {
                    let time = Time::from_hms(u8::try_from(h).ok()?, u8::try_from(m).ok()?, 0).ok()?;
                    return Some(date.with_time(time).assume_utc().unix_timestamp() * 1000);
                }
            }
            date = date.next_day()?;
            (hour, min) = (0, 0);
        }
        None
    }

    /// The first (hour, minute) of the expression at or after `hour:min` of a day.
    fn first_time_from(&self, hour: u16, min: u16) -> Option<(u16, u16)> {
        self.hours.range(hour..).find_map(|&h| {
            let from = if h == hour { min } else { 0 };
            self.minutes.range(from..).next().map(|&m| (h, m))
        })
    }

    /// Whether the day fields select `date` (its year and month already match).
    fn fires_on(&self, date: Date) -> bool {
        let day = u16::from(date.day());
        let last = u16::from(date.month().length(date.year()));
        // 1 = SUN .. 7 = SAT, as the Day-of-week field numbers them.
        let weekday_of = |d: u16| (u16::from(date.weekday().number_days_from_sunday()) + d + 7 * 5 - day) % 7 + 1;
        let is_weekday = |d: u16| (2..=6).contains(&weekday_of(d));
        match &self.day_of_month {
            DayOfMonth::Days(days) => return days.contains(&day),
            DayOfMonth::Last => return day == last,
            DayOfMonth::LastWeekday => return day == (1..=last).rev().find(|&d| is_weekday(d)).unwrap_or(last),
            // AWS documents only "the weekday closest to day n"; this is Quartz's rule, which
            // its `W` comes from: the nearest weekday within the same month (a Saturday 1st moves
            // to Monday the 3rd, a Sunday last day to Friday). A month without day `n` has none,
            // as a plain `31` skips short months.
            DayOfMonth::NearestWeekday(n) => {
                let n = *n;
                if n > last {
                    return false;
                }
                let target = match weekday_of(n) {
                    7 if n == 1 => 3,
                    7 => n - 1,
                    1 if n == last => n - 2,
                    1 => n + 1,
                    _ => n,
                };
                return day == target;
            }
            DayOfMonth::Any => {}
        }
        let weekday = weekday_of(day);
        match &self.day_of_week {
            DayOfWeek::Days(days) => days.contains(&weekday),
            DayOfWeek::LastOfMonth(d) => weekday == *d && day + 7 > last,
            DayOfWeek::Nth { day: d, nth } => weekday == *d && (day - 1) / 7 + 1 == *nth,
            // Parsing guarantees one of the two day fields is set.
            DayOfWeek::Any => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(s: &str) -> Result<CronExpression, CronError> {
        s.parse()
    }

    fn set(values: &[u16]) -> BTreeSet<u16> {
        values.iter().copied().collect()
    }

    #[test]
    fn aws_examples_parse_to_their_values() {
        let c = parse("cron(0 2 ? * SAT *)").unwrap();
        assert_eq!(c.minutes, set(&[0]));
        assert_eq!(c.hours, set(&[2]));
        assert_eq!(c.day_of_month, DayOfMonth::Any);
        assert_eq!(c.months, (1..=12).collect());
        assert_eq!(c.day_of_week, DayOfWeek::Days(set(&[7])));
        assert_eq!(c.years, (1970..=2199).collect());

        let c = parse("cron(0/15 * * * ? *)").unwrap();
        assert_eq!(c.minutes, set(&[0, 15, 30, 45]));
        assert_eq!(c.day_of_month, DayOfMonth::Days((1..=31).collect()));
        assert_eq!(c.day_of_week, DayOfWeek::Any);

        let c = parse("cron(0/5 8-17 ? * MON-FRI *)").unwrap();
        assert_eq!(c.hours, (8..=17).collect());
        assert_eq!(c.day_of_week, DayOfWeek::Days(set(&[2, 3, 4, 5, 6])));

        let c = parse("cron(1/10 0 1,15 jan,Jul ? 2026-2030/2)").unwrap();
        assert_eq!(c.minutes, set(&[1, 11, 21, 31, 41, 51]));
        assert_eq!(c.day_of_month, DayOfMonth::Days(set(&[1, 15])));
        assert_eq!(c.months, set(&[1, 7]));
        assert_eq!(c.years, set(&[2026, 2028, 2030]));
    }

    #[test]
    fn special_day_forms() {
        assert_eq!(parse("cron(15 10 L * ? 2026)").unwrap().day_of_month, DayOfMonth::Last);
        assert_eq!(parse("cron(0 0 LW * ? *)").unwrap().day_of_month, DayOfMonth::LastWeekday);
        assert_eq!(parse("cron(0 0 15W * ? *)").unwrap().day_of_month, DayOfMonth::NearestWeekday(15));
        assert_eq!(parse("cron(0 9 ? * 3#2 *)").unwrap().day_of_week, DayOfWeek::Nth { day: 3, nth: 2 });
        assert_eq!(parse("cron(0 9 ? * TUE#5 *)").unwrap().day_of_week, DayOfWeek::Nth { day: 3, nth: 5 });
        assert_eq!(parse("cron(0 9 ? * 6L *)").unwrap().day_of_week, DayOfWeek::LastOfMonth(6));
        assert_eq!(parse("cron(0 9 ? * L *)").unwrap().day_of_week, DayOfWeek::Days(set(&[7])));
    }

    #[test]
    fn ranges_wrap_past_the_end_of_the_field() {
        let c = parse("cron(0 22-2 ? * FRI-MON *)").unwrap();
        assert_eq!(c.hours, set(&[22, 23, 0, 1, 2]));
        assert_eq!(c.day_of_week, DayOfWeek::Days(set(&[6, 7, 1, 2])));
    }

    #[test]
    fn field_boundaries() {
        assert!(parse("cron(59 23 31 12 ? 2199)").is_ok());
        assert!(parse("cron(0 0 1 1 ? 1970)").is_ok());
        assert!(parse("cron(0 0 ? 1 1 *)").is_ok());
        assert!(parse("cron(0 0 ? 1 7 *)").is_ok());
        for bad in [
            "cron(60 0 1 * ? *)",
            "cron(0 24 1 * ? *)",
            "cron(0 0 0 * ? *)",
            "cron(0 0 32 * ? *)",
            "cron(0 0 1 0 ? *)",
            "cron(0 0 1 13 ? *)",
            "cron(0 0 ? * 0 *)",
            "cron(0 0 ? * 8 *)",
            "cron(0 0 1 * ? 1969)",
            "cron(0 0 1 * ? 2200)",
        ] {
            assert!(matches!(parse(bad), Err(CronError::Field { .. })), "{bad}: {:?}", parse(bad));
        }
    }

    #[test]
    fn malformed_expressions_are_rejected() {
        for (bad, why) in [
            ("every day", "no wrapper"),
            ("rate(5 minutes)", "rate, not cron"),
            ("cron(0 2 ? * SAT *", "unclosed"),
            ("cron(0 2 ? * SAT)", "five fields"),
            ("cron(0 0 2 ? * SAT *)", "seven fields"),
            ("cron()", "empty"),
            ("cron(0 2 * * SAT *)", "both day fields set"),
            ("cron(0 2 1 * 1 *)", "both day fields set"),
            ("cron(0 2 ? * ? *)", "neither day field set"),
            ("cron(? 2 1 * ? *)", "? outside the day fields"),
            ("cron(*/0 * * * ? *)", "zero step"),
            ("cron(0/61 * * * ? *)", "step beyond the field"),
            ("cron(1- * * * ? *)", "half-open range"),
            ("cron(a b c d e f)", "not values"),
            ("cron(0 2 ? * FOO *)", "unknown weekday"),
            ("cron(0 2 ? * 3#6 *)", "week number beyond 5"),
            ("cron(0 2 ? * 3#1,5 *)", "# in a list"),
            ("cron(0 2 0W * ? *)", "W on day 0"),
            ("cron(0 2 ? * 8L *)", "L on weekday 8"),
            ("cron(0,,5 2 1 * ? *)", "empty list item"),
            ("cron(-1 2 1 * ? *)", "negative"),
        ] {
            assert!(parse(bad).is_err(), "{bad} ({why}) parsed: {:?}", parse(bad));
        }
    }

    /// Epoch milliseconds of a `YYYY-MM-DDTHH:MM` UTC time.
    fn at(s: &str) -> Millis {
        crate::validate::date_time(s).unwrap()
    }

    /// The fire time at or after `from`, as `YYYY-MM-DDTHH:MM`.
    fn next(cron: &str, from: &str) -> Option<String> {
        let t = parse(cron).unwrap().next_at_or_after(at(from))?;
        let c = crate::utc::Civil::from_unix(t / 1000).unwrap();
        Some(format!("{:04}-{:02}-{:02}T{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute))
    }

    #[test]
    fn next_saturday_from_a_wednesday() {
        // 2026-12-02 is a Wednesday.
        assert_eq!(next("cron(0 2 ? * SAT *)", "2026-12-02T10:00").as_deref(), Some("2026-12-05T02:00"));
        assert_eq!(next("cron(0 2 ? * SAT *)", "2026-12-05T02:00").as_deref(), Some("2026-12-05T02:00"), "at counts");
        assert_eq!(next("cron(0 2 ? * SAT *)", "2026-12-05T02:01").as_deref(), Some("2026-12-12T02:00"));
        assert_eq!(next("cron(0 2 ? * 7 *)", "2026-12-31T23:59").as_deref(), Some("2027-01-02T02:00"), "over a year");
    }

    #[test]
    fn a_time_inside_a_minute_counts_from_the_next_minute() {
        let c = parse("cron(* * * * ? *)").unwrap();
        let t = at("2026-06-01T10:00");
        assert_eq!(c.next_at_or_after(t), Some(t));
        assert_eq!(c.next_at_or_after(t + 1), Some(t + MINUTE));
        assert_eq!(c.next_at_or_after(t + MINUTE - 1), Some(t + MINUTE));
        assert_eq!(c.next_at_or_after(t - 1), Some(t));
    }

    #[test]
    fn hours_and_minutes_roll_over() {
        let every = "cron(0/15 8-17 ? * MON-FRI *)";
        assert_eq!(next(every, "2026-12-02T10:16").as_deref(), Some("2026-12-02T10:30"));
        assert_eq!(next(every, "2026-12-02T17:46").as_deref(), Some("2026-12-03T08:00"));
        assert_eq!(next(every, "2026-12-04T17:46").as_deref(), Some("2026-12-07T08:00"), "Friday evening → Monday");
        assert_eq!(next("cron(30 22-2 * * ? *)", "2026-12-02T23:31").as_deref(), Some("2026-12-03T00:30"));
        assert_eq!(next("cron(59 23 31 12 ? *)", "2026-01-01T00:00").as_deref(), Some("2026-12-31T23:59"));
    }

    #[test]
    fn month_ends_and_leap_days() {
        assert_eq!(next("cron(0 0 31 * ? *)", "2026-04-01T00:00").as_deref(), Some("2026-05-31T00:00"), "April has 30");
        assert_eq!(next("cron(0 0 L * ? *)", "2026-02-01T00:00").as_deref(), Some("2026-02-28T00:00"));
        assert_eq!(next("cron(0 0 L * ? *)", "2028-02-01T00:00").as_deref(), Some("2028-02-29T00:00"));
        assert_eq!(next("cron(0 0 29 2 ? *)", "2026-03-01T00:00").as_deref(), Some("2028-02-29T00:00"));
        assert_eq!(next("cron(0 0 29 FEB ? *)", "2028-02-29T00:01").as_deref(), Some("2032-02-29T00:00"));
    }

    #[test]
    fn weekday_forms() {
        // 2026-05-31 is a Sunday, 2026-08-01 a Saturday, 2026-10-31 a Saturday.
        assert_eq!(next("cron(0 0 LW * ? *)", "2026-05-01T00:00").as_deref(), Some("2026-05-29T00:00"));
        assert_eq!(next("cron(0 0 LW * ? *)", "2026-10-01T00:00").as_deref(), Some("2026-10-30T00:00"));
        assert_eq!(next("cron(0 0 LW * ? *)", "2026-12-01T00:00").as_deref(), Some("2026-12-31T00:00"));
        assert_eq!(
            next("cron(0 0 1W * ? *)", "2026-07-15T00:00").as_deref(),
            Some("2026-08-03T00:00"),
            "Sat 1st → Mon 3rd"
        );
        assert_eq!(
            next("cron(0 0 31W * ? *)", "2026-05-15T00:00").as_deref(),
            Some("2026-05-29T00:00"),
            "Sun 31st → Fri"
        );
        assert_eq!(
            next("cron(0 0 15W * ? *)", "2026-08-01T00:00").as_deref(),
            Some("2026-08-14T00:00"),
            "Sat 15th → Fri"
        );
        assert_eq!(
            next("cron(0 0 16W * ? *)", "2026-08-01T00:00").as_deref(),
            Some("2026-08-17T00:00"),
            "Sun 16th → Mon"
        );
        assert_eq!(
            next("cron(0 0 2W * ? *)", "2026-12-01T00:00").as_deref(),
            Some("2026-12-02T00:00"),
            "a weekday stays"
        );
        assert_eq!(
            next("cron(0 0 31W * ? *)", "2026-06-01T00:00").as_deref(),
            Some("2026-07-31T00:00"),
            "June has no 31st"
        );
        assert_eq!(next("cron(0 9 ? * 3#2 *)", "2026-12-01T00:00").as_deref(), Some("2026-12-08T09:00"), "2nd Tuesday");
        assert_eq!(next("cron(0 9 ? * 3#2 *)", "2026-12-08T09:01").as_deref(), Some("2027-01-12T09:00"));
        assert_eq!(
            next("cron(0 9 ? * TUE#5 *)", "2026-10-01T00:00").as_deref(),
            Some("2026-12-29T09:00"),
            "5th Tuesdays"
        );
        assert_eq!(next("cron(0 9 ? * 6L *)", "2026-12-01T00:00").as_deref(), Some("2026-12-25T09:00"), "last Friday");
        assert_eq!(next("cron(0 9 ? * 1L *)", "2026-05-01T00:00").as_deref(), Some("2026-05-31T09:00"), "last Sunday");
        assert_eq!(next("cron(0 9 ? * L *)", "2026-12-01T00:00").as_deref(), Some("2026-12-05T09:00"), "L = Saturday");
        assert_eq!(next("cron(0 9 ? * FRI-MON *)", "2026-12-02T00:00").as_deref(), Some("2026-12-04T09:00"));
    }

    #[test]
    fn years_bound_the_search() {
        assert_eq!(next("cron(0 0 1 1 ? 2028)", "2026-12-02T00:00").as_deref(), Some("2028-01-01T00:00"));
        assert_eq!(next("cron(0 0 1 1 ? 2026)", "2026-12-02T00:00"), None, "the year is over");
        assert_eq!(next("cron(0 0 1 * ? 2031)", "2026-12-02T00:00").as_deref(), Some("2031-01-01T00:00"));
        assert_eq!(next("cron(0 0 1 * ? 2032)", "2026-12-02T00:00"), None, "more than five years ahead");
        assert_eq!(next("cron(0 0 29 2 ? 2100-2199)", "2026-12-02T00:00"), None);
        assert_eq!(next("cron(0 0 * * ? *)", "2199-12-31T00:01"), None, "after the last year");
        assert_eq!(next("cron(30 23 31 12 ? *)", "2199-12-31T00:01").as_deref(), Some("2199-12-31T23:30"));
    }

    #[test]
    fn a_year_of_fire_times_is_cheap() {
        let c = parse("cron(0 2 ? * SAT *)").unwrap();
        let mut t = at("2026-12-02T10:00");
        let mut seen = 0;
        while let Some(next) = c.next_at_or_after(t) {
            assert!(next >= t);
            seen += 1;
            t = next + 1;
            if seen == 52 {
                break;
            }
        }
        assert_eq!(seen, 52);
        assert_eq!(t - 1, at("2027-11-27T02:00"));
    }

    /// Every fire time over ten days, found minute by minute with a matcher written apart from
    /// `fires_on` (weekday from days since 1970-01-01, a Thursday), equals the chain of
    /// `next_at_or_after` calls.
    #[test]
    fn next_agrees_with_a_minute_by_minute_scan() {
        fn brute(c: &CronExpression, minute: i64) -> bool {
            let t = crate::utc::Civil::from_unix(minute * 60).unwrap();
            let weekday = ((minute / 1440 + 4) % 7 + 1) as u16;
            let day = match (&c.day_of_month, &c.day_of_week) {
                (DayOfMonth::Days(d), DayOfWeek::Any) => d.contains(&u16::from(t.day)),
                (DayOfMonth::Any, DayOfWeek::Days(d)) => d.contains(&weekday),
                _ => unreachable!("plain lists only"),
            };
            day && c.minutes.contains(&u16::from(t.minute))
                && c.hours.contains(&u16::from(t.hour))
                && c.months.contains(&u16::from(t.month))
                && c.years.contains(&(t.year as u16))
        }
        for cron in [
            "cron(0 2 ? * SAT *)",
            "cron(0/15 8-17 ? * MON-FRI *)",
            "cron(7,59 22-1 * * ? *)",
            "cron(30 12 1,15,31 * ? *)",
            "cron(0 0 ? * SUN,WED 2026)",
            "cron(*/20 * 28-3 FEB,MAR ? *)",
        ] {
            let c = parse(cron).unwrap();
            for from in ["2026-02-20T13:37", "2026-12-27T00:00", "2028-02-25T23:59"] {
                let start = at(from) / MINUTE;
                let expected: Vec<Millis> =
                    (start..start + 10 * 1440).filter(|m| brute(&c, *m)).map(|m| m * MINUTE).collect();
                let mut found = vec![];
                let mut t = start * MINUTE;
                while let Some(next) = c.next_at_or_after(t).filter(|n| *n < (start + 10 * 1440) * MINUTE) {
                    found.push(next);
                    t = next + 1;
                }
                assert_eq!(found, expected, "{cron} from {from}");
            }
        }
    }
}
