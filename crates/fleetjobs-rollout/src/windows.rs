//! Maintenance windows (`schedulingConfig.maintenanceWindows`, aws-iot-jobs.md §7.6): a job rolls
//! out only while one of its windows is open. Each window opens at every fire time of its
//! `cron(...)` expression and stays open `durationInMinutes`; windows may overlap, and a window
//! that opens exactly when another closes continues it.
//!
//! A job without windows is never held back by them: [`is_open`] is true and
//! [`WindowState::Open`] has no end.

use fleetjobs_core::cron::CronExpression;
use fleetjobs_core::job_config::MaintenanceWindow;
use fleetjobs_core::utc::Civil;
use fleetjobs_core::{ApiResult, Millis};

use crate::MINUTE;

/// How many window starts `Job.scheduledJobRollouts` lists.
pub const SCHEDULED_ROLLOUTS: usize = 7;

/// How far ahead [`state`] follows back-to-back windows to find where an open stretch ends.
/// Past it the stretch is reported as ending there: a wake-up to look again, not a change, and
/// the bound keeps windows that never close (`cron(* * * * ? *)`) from looping.
const MERGE_HORIZON: Millis = 7 * 24 * 60 * MINUTE;

/// One window, parsed once.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Window {
    schedule: CronExpression,
    duration: Millis,
}

impl Window {
    /// The start of this window's occurrence that covers `now`, if one does.
    fn open_since(&self, now: Millis) -> Option<Millis> {
        // The occurrence covering `now` started in (now − duration, now].
        self.schedule.next_at_or_after(now - self.duration + 1).filter(|s| *s <= now)
    }
}

/// A job's maintenance windows, parsed from `schedulingConfig.maintenanceWindows`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Windows {
    windows: Vec<Window>,
}

impl Windows {
    /// Parses every window's `cron(...)` (the same check CreateJob made, so a stored job
    /// always parses).
    pub fn new(windows: &[MaintenanceWindow]) -> ApiResult<Windows> {
        let windows = windows
            .iter()
            .map(|w| Ok(Window { schedule: w.schedule()?, duration: Millis::from(w.duration_in_minutes) * MINUTE }))
            .collect::<ApiResult<_>>()?;
        Ok(Windows { windows })
    }

    pub fn is_empty(&self) -> bool {
        self.windows.is_empty()
    }
}

/// Whether rollout may proceed now, and until when that holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WindowState {
    /// Open; `until` is when the open stretch ends (`None`: no windows, never closes).
    Open { until: Option<Millis> },
    /// Closed; `opens` is the next opening (`None`: no window opens within cron's search bound).
    Closed { opens: Option<Millis> },
}

/// The windows' state at `now`, with the next instant it changes.
pub fn state(windows: &Windows, now: Millis) -> WindowState {
    if windows.is_empty() {
        return WindowState::Open { until: None };
    }
    let Some(mut until) = windows.windows.iter().filter_map(|w| w.open_since(now).map(|s| s + w.duration)).max() else {
        let opens = windows.windows.iter().filter_map(|w| w.schedule.next_at_or_after(now)).min();
        return WindowState::Closed { opens };
    };
    // Follow windows that open before (or as) the stretch closes: each round moves `until`
    // forward by at least a minute, so the horizon bounds the loop.
    while until < now + MERGE_HORIZON {
        let later = windows
            .windows
            .iter()
            .filter_map(|w| w.open_since(until).map(|s| s + w.duration))
            .max()
            .filter(|end| *end > until);
        match later {
            Some(end) => until = end,
            None => break,
        }
    }
    WindowState::Open { until: Some(until) }
}

/// Whether the windows let a rollout proceed at `now`.
pub fn is_open(windows: &Windows, now: Millis) -> bool {
    windows.windows.is_empty() || windows.windows.iter().any(|w| w.open_since(now).is_some())
}

/// The first instant at or after `now` at which the windows are open.
pub fn next_open(windows: &Windows, now: Millis) -> Option<Millis> {
    if is_open(windows, now) {
        return Some(now);
    }
    windows.windows.iter().filter_map(|w| w.schedule.next_at_or_after(now)).min()
}

/// The next `n` window starts at or after `now`, all windows merged, in order, each instant
/// once.
pub fn next_starts(windows: &Windows, now: Millis, n: usize) -> Vec<Millis> {
    let mut cursors: Vec<(Option<Millis>, &Window)> =
        windows.windows.iter().map(|w| (w.schedule.next_at_or_after(now), w)).collect();
    let mut out = Vec::with_capacity(n);
    while out.len() < n {
        let Some(first) = cursors.iter().filter_map(|(c, _)| *c).min() else { break };
        out.push(first);
        // Advance every window starting at `first`, so two windows opening together count once.
        for (cursor, w) in &mut cursors {
            if *cursor == Some(first) {
                *cursor = w.schedule.next_at_or_after(first + 1);
            }
        }
    }
    out
}

/// A window start as `Job.scheduledJobRollouts[].startTime` shows it: botocore types it
/// `StringDateTime`, the `YYYY-MM-DDTHH:MM` (UTC) format of `schedulingConfig.startTime`.
pub fn start_time(at: Millis) -> Option<String> {
    let c = Civil::from_unix(at.div_euclid(1000))?;
    Some(format!("{:04}-{:02}-{:02}T{:02}:{:02}", c.year, c.month, c.day, c.hour, c.minute))
}

/// `Job.scheduledJobRollouts`: the next seven window starts, formatted.
pub fn scheduled_job_rollouts(windows: &Windows, now: Millis) -> Vec<String> {
    next_starts(windows, now, SCHEDULED_ROLLOUTS).into_iter().filter_map(start_time).collect()
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    pub(crate) fn at(s: &str) -> Millis {
        fleetjobs_core::validate::date_time(s).unwrap()
    }

    pub(crate) fn windows(list: &[(&str, i32)]) -> Windows {
        let list: Vec<MaintenanceWindow> = list
            .iter()
            .map(|(cron, minutes)| MaintenanceWindow { start_time: cron.to_string(), duration_in_minutes: *minutes })
            .collect();
        Windows::new(&list).unwrap()
    }

    /// Saturdays 02:00–06:00.
    fn saturday() -> Windows {
        windows(&[("cron(0 2 ? * SAT *)", 240)])
    }

    #[test]
    fn open_from_start_to_start_plus_duration() {
        let w = saturday();
        // 2026-12-05 is a Saturday.
        assert!(!is_open(&w, at("2026-12-05T01:59")));
        assert!(!is_open(&w, at("2026-12-05T02:00") - 1));
        assert!(is_open(&w, at("2026-12-05T02:00")));
        assert!(is_open(&w, at("2026-12-05T05:59")));
        assert!(is_open(&w, at("2026-12-05T06:00") - 1));
        assert!(!is_open(&w, at("2026-12-05T06:00")), "closed at start + duration");
        assert!(!is_open(&w, at("2026-12-02T03:00")), "a Wednesday");
    }

    #[test]
    fn next_open_is_now_inside_a_window_else_the_next_start() {
        let w = saturday();
        assert_eq!(next_open(&w, at("2026-12-02T10:00")), Some(at("2026-12-05T02:00")));
        assert_eq!(next_open(&w, at("2026-12-05T03:00")), Some(at("2026-12-05T03:00")));
        assert_eq!(next_open(&w, at("2026-12-05T06:00")), Some(at("2026-12-12T02:00")));
        assert_eq!(next_open(&w, at("2026-12-05T06:00") + 1), Some(at("2026-12-12T02:00")), "mid-minute");
    }

    #[test]
    fn no_windows_never_hold_a_rollout() {
        let w = Windows::default();
        assert!(is_open(&w, 0));
        assert_eq!(next_open(&w, 5), Some(5));
        assert_eq!(state(&w, 5), WindowState::Open { until: None });
        assert!(next_starts(&w, 0, 7).is_empty());
        assert!(scheduled_job_rollouts(&w, 0).is_empty());
    }

    #[test]
    fn state_gives_the_next_change() {
        let w = saturday();
        assert_eq!(state(&w, at("2026-12-02T10:00")), WindowState::Closed { opens: Some(at("2026-12-05T02:00")) });
        assert_eq!(state(&w, at("2026-12-05T02:00")), WindowState::Open { until: Some(at("2026-12-05T06:00")) });
        assert_eq!(state(&w, at("2026-12-05T06:00")), WindowState::Closed { opens: Some(at("2026-12-12T02:00")) });
        let past = windows(&[("cron(0 2 ? * SAT 2026)", 60)]);
        assert_eq!(state(&past, at("2026-12-27T00:00")), WindowState::Closed { opens: None });
    }

    #[test]
    fn overlapping_and_back_to_back_windows_merge() {
        // 01:00–03:00 and 02:00–04:00 overlap; 04:00–05:00 continues them; 06:00 is apart.
        let w = windows(&[("cron(0 1 * * ? *)", 120), ("cron(0 2 * * ? *)", 120), ("cron(0 4 * * ? *)", 60)]);
        assert_eq!(state(&w, at("2026-12-02T01:30")), WindowState::Open { until: Some(at("2026-12-02T05:00")) });
        assert_eq!(state(&w, at("2026-12-02T04:30")), WindowState::Open { until: Some(at("2026-12-02T05:00")) });
        assert_eq!(state(&w, at("2026-12-02T05:00")), WindowState::Closed { opens: Some(at("2026-12-03T01:00")) });
        // A window that never closes is reported until the horizon, for a later look.
        let always = windows(&[("cron(* * * * ? *)", 1)]);
        let now = at("2026-12-02T00:00");
        assert_eq!(state(&always, now), WindowState::Open { until: Some(now + MERGE_HORIZON) });
    }

    #[test]
    fn next_seven_starts_merge_windows_and_format_as_aws_does() {
        let w = windows(&[("cron(0 2 ? * SAT *)", 240), ("cron(30 22 ? * WED *)", 60), ("cron(0 2 ? * 7 *)", 30)]);
        let now = at("2026-12-02T10:00");
        assert_eq!(
            scheduled_job_rollouts(&w, now),
            [
                "2026-12-02T22:30",
                "2026-12-05T02:00",
                "2026-12-09T22:30",
                "2026-12-12T02:00",
                "2026-12-16T22:30",
                "2026-12-19T02:00",
                "2026-12-23T22:30"
            ]
        );
        assert_eq!(next_starts(&w, at("2026-12-05T02:00"), 1), [at("2026-12-05T02:00")], "a start now counts");
        assert_eq!(start_time(at("2027-01-09T02:00")).as_deref(), Some("2027-01-09T02:00"));
    }

    #[test]
    fn a_week_of_windows_minute_by_minute_is_fast() {
        // Every weekday 09:00–17:00 and Sunday 00:00–00:30: walk a week minute by minute.
        let w = windows(&[("cron(0 9 ? * MON-FRI *)", 480), ("cron(0 0 ? * SUN *)", 30)]);
        let start = at("2026-11-30T00:00");
        let started = std::time::Instant::now();
        let open = (0..7 * 24 * 60).filter(|m| is_open(&w, start + m * MINUTE)).count();
        assert_eq!(open, 5 * 8 * 60 + 30);
        // Debug builds on a shared machine: generous, but catches a per-call scan of years.
        assert!(started.elapsed() < std::time::Duration::from_secs(2), "{:?}", started.elapsed());
    }
}
