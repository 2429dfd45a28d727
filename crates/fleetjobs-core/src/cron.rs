//! AWS `cron(...)` schedule expressions (the EventBridge syntax job maintenance windows use):
//! six fields `Minutes Hours Day-of-month Month Day-of-week Year`, parsed into the values each
//! field admits.
//!
//! Written here rather than taken from a cron crate because AWS's dialect differs from the
//! POSIX/Quartz ones those implement: a mandatory Year field (1970..2199), weekdays numbered
//! 1 = SUN .. 7 = SAT, and exactly one of the two day fields must be `?`.

use std::collections::BTreeSet;
use std::str::FromStr;

use thiserror::Error;

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
}
