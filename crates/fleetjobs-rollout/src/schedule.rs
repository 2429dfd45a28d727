//! A job's phase under `schedulingConfig` (aws-iot-jobs.md §7.6): `SCHEDULED` until `startTime`,
//! then rolling out (within its maintenance windows, if any) until `endTime`, when
//! `endBehavior` applies. [`Schedule::next_change`] is when the timer loop should look again.

use fleetjobs_core::job_config::{JobEndBehavior, SchedulingConfig};
use fleetjobs_core::validate::date_time;
use fleetjobs_core::{ApiError, ApiResult, Millis};

use crate::windows::{self, WindowState, Windows};

/// Where a job stands in its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Phase {
    /// Before `startTime`: the job is `SCHEDULED` and creates nothing.
    Scheduled { until: Millis },
    /// Between `startTime` (or creation) and `endTime`: executions may be created while a
    /// maintenance window is open ([`Schedule::may_create`]).
    Rollout,
    /// `endTime` has passed; the engine applies `behavior` once.
    Ended { behavior: JobEndBehavior },
}

/// A job's `schedulingConfig`, parsed once.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Schedule {
    start: Option<Millis>,
    end: Option<Millis>,
    end_behavior: Option<JobEndBehavior>,
    windows: Windows,
}

impl Schedule {
    /// The schedule of a job; `None` (no `schedulingConfig`) rolls out at once, forever.
    pub fn new(config: Option<&SchedulingConfig>) -> ApiResult<Schedule> {
        let Some(c) = config else { return Ok(Schedule::default()) };
        let time = |member: &str, v: &Option<String>| -> ApiResult<Option<Millis>> {
            v.as_deref()
                .map(|s| {
                    date_time(s).ok_or_else(|| {
                        ApiError::invalid(format!(
                            "schedulingConfig.{member} '{s}' is not a date-time like 2025-06-01T10:00"
                        ))
                    })
                })
                .transpose()
        };
        Ok(Schedule {
            start: time("startTime", &c.start_time)?,
            end: time("endTime", &c.end_time)?,
            end_behavior: c.end_behavior,
            windows: Windows::new(c.maintenance_windows.as_deref().unwrap_or_default())?,
        })
    }

    pub fn windows(&self) -> &Windows {
        &self.windows
    }

    /// The phase at `now`. Without `endBehavior`, `endTime` stops the rollout (STOP_ROLLOUT):
    /// AWS documents no default, and stopping is the only behaviour that cancels nothing the
    /// caller did not ask to cancel.
    pub fn phase(&self, now: Millis) -> Phase {
        match (self.start, self.end) {
            (Some(start), _) if now < start => Phase::Scheduled { until: start },
            (_, Some(end)) if now >= end => {
                Phase::Ended { behavior: self.end_behavior.unwrap_or(JobEndBehavior::StopRollout) }
            }
            _ => Phase::Rollout,
        }
    }

    /// Whether executions may be created at `now`: rolling out and inside a window.
    pub fn may_create(&self, now: Millis) -> bool {
        self.phase(now) == Phase::Rollout && windows::is_open(&self.windows, now)
    }

    /// The next instant after `now` at which [`phase`](Self::phase) or
    /// [`may_create`](Self::may_create) may change; `None` when nothing will.
    pub fn next_change(&self, now: Millis) -> Option<Millis> {
        match self.phase(now) {
            Phase::Scheduled { until } => Some(until),
            Phase::Ended { .. } => None,
            Phase::Rollout => {
                let window = match windows::state(&self.windows, now) {
                    WindowState::Open { until } => until,
                    WindowState::Closed { opens } => opens,
                };
                [window, self.end].into_iter().flatten().min()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::windows::tests::at;
    use fleetjobs_core::job_config::MaintenanceWindow;

    fn config(start: Option<&str>, end: Option<&str>, behavior: Option<JobEndBehavior>) -> SchedulingConfig {
        SchedulingConfig {
            start_time: start.map(str::to_string),
            end_time: end.map(str::to_string),
            end_behavior: behavior,
            maintenance_windows: None,
        }
    }

    #[test]
    fn no_config_rolls_out_at_once_forever() {
        let s = Schedule::new(None).unwrap();
        assert_eq!(s.phase(0), Phase::Rollout);
        assert!(s.may_create(0));
        assert_eq!(s.next_change(0), None);
    }

    #[test]
    fn scheduled_then_rollout_then_ended() {
        let c = config(Some("2026-12-02T10:00"), Some("2026-12-09T10:00"), Some(JobEndBehavior::Cancel));
        let s = Schedule::new(Some(&c)).unwrap();
        let (start, end) = (at("2026-12-02T10:00"), at("2026-12-09T10:00"));
        assert_eq!(s.phase(start - 1), Phase::Scheduled { until: start });
        assert!(!s.may_create(start - 1));
        assert_eq!(s.next_change(start - 1), Some(start));
        assert_eq!(s.phase(start), Phase::Rollout);
        assert!(s.may_create(start));
        assert_eq!(s.next_change(start), Some(end));
        assert_eq!(s.phase(end - 1), Phase::Rollout);
        assert_eq!(s.phase(end), Phase::Ended { behavior: JobEndBehavior::Cancel });
        assert!(!s.may_create(end));
        assert_eq!(s.next_change(end), None);
    }

    #[test]
    fn end_without_behavior_stops_the_rollout_and_start_alone_never_ends() {
        let s = Schedule::new(Some(&config(None, Some("2026-12-09T10:00"), None))).unwrap();
        assert_eq!(s.phase(0), Phase::Rollout);
        assert_eq!(s.phase(at("2026-12-09T10:00")), Phase::Ended { behavior: JobEndBehavior::StopRollout });
        let s = Schedule::new(Some(&config(Some("2026-12-02T10:00"), None, None))).unwrap();
        assert_eq!(s.phase(at("2030-01-01T00:00")), Phase::Rollout);
        assert_eq!(s.next_change(at("2030-01-01T00:00")), None);
    }

    #[test]
    fn windows_gate_creation_and_bound_the_next_change() {
        let mut c = config(Some("2026-12-02T10:00"), Some("2026-12-12T04:00"), Some(JobEndBehavior::ForceCancel));
        c.maintenance_windows =
            Some(vec![MaintenanceWindow { start_time: "cron(0 2 ? * SAT *)".into(), duration_in_minutes: 240 }]);
        let s = Schedule::new(Some(&c)).unwrap();
        // Walk the timer loop from creation: each wake-up is the next change.
        let mut now = at("2026-12-01T09:00");
        let mut seen = vec![];
        while let Some(next) = s.next_change(now) {
            assert!(next > now);
            now = next;
            seen.push((windows::start_time(now).unwrap(), s.phase(now), s.may_create(now)));
        }
        let ended = Phase::Ended { behavior: JobEndBehavior::ForceCancel };
        assert_eq!(
            seen,
            [
                ("2026-12-02T10:00".to_string(), Phase::Rollout, false),
                ("2026-12-05T02:00".to_string(), Phase::Rollout, true),
                ("2026-12-05T06:00".to_string(), Phase::Rollout, false),
                ("2026-12-12T02:00".to_string(), Phase::Rollout, true),
                ("2026-12-12T04:00".to_string(), ended, false),
            ]
        );
    }

    #[test]
    fn a_bad_stored_time_is_an_error_not_a_panic() {
        assert!(Schedule::new(Some(&config(Some("soon"), None, None))).is_err());
        let mut c = config(None, None, None);
        c.maintenance_windows = Some(vec![MaintenanceWindow { start_time: "weekly".into(), duration_in_minutes: 1 }]);
        assert!(Schedule::new(Some(&c)).is_err());
    }
}
