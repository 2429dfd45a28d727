//! What a job's rollout would look like, ahead of time: the batches of executions it would
//! create and when, under the same rules the engine applies (schedule, maintenance windows,
//! rate), for a `fleetjobs rollout-preview` verb. Devices are assumed to succeed the instant
//! they are notified, so a succeeded-things criterion grows the rate as fast as it can: the
//! preview is the quickest rollout the configs allow.

use fleetjobs_core::job_config::{JobConfigs, JobEndBehavior};
use fleetjobs_core::{ApiResult, Millis};

use crate::rate::{self, Progress, Rate, RateState};
use crate::schedule::{Phase, Schedule};
use crate::windows::{self, WindowState};

/// Executions created together.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Batch {
    pub at: Millis,
    pub count: i64,
    /// The rate per minute the batch's last execution was created at (`None`: no rollout
    /// config, no limit). An exponential rate that crosses a threshold within the batch's minute
    /// shows the raised rate, the one that let the batch grow.
    pub per_minute: Option<i64>,
}

/// A maintenance window stretch the rollout created executions in: from its first batch to the
/// stretch's close (`None`: the job has no windows).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WindowUsed {
    pub first_batch: Millis,
    pub closes: Option<Millis>,
}

/// Why a rollout would leave targets without executions.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `endTime` came first, with its `endBehavior`.
    Ended { at: Millis, behavior: JobEndBehavior },
    /// No maintenance window opens again (within cron's five-year search).
    NoWindowOpens { at: Millis },
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Preview {
    pub batches: Vec<Batch>,
    pub windows: Vec<WindowUsed>,
    /// Targets that would get no execution, and why.
    pub not_created: i64,
    pub stop: Option<Stop>,
}

/// The rollout of a job with `configs` over `targets` things, created at `start`.
pub fn timeline(configs: &JobConfigs, targets: usize, start: Millis) -> ApiResult<Preview> {
    let schedule = Schedule::new(configs.scheduling_config.as_ref())?;
    let rollout = configs.job_executions_rollout_config.as_ref();
    let targets = i64::try_from(targets).unwrap_or(i64::MAX);
    let mut preview = Preview { batches: vec![], windows: vec![], not_created: 0, stop: None };
    let (mut state, mut created, mut now) = (RateState::default(), 0, start);
    // Each round either creates at least one execution or moves `now` to the next schedule or
    // window change, of which there are finitely many before the targets run out.
    while created < targets {
        match schedule.phase(now) {
            Phase::Ended { behavior } => {
                preview.stop = Some(Stop::Ended { at: now, behavior });
                break;
            }
            Phase::Scheduled { until } => {
                now = until;
                continue;
            }
            Phase::Rollout => {}
        }
        let closes = match windows::state(schedule.windows(), now) {
            WindowState::Open { until } => until,
            WindowState::Closed { opens: Some(opens) } => {
                now = opens;
                continue;
            }
            WindowState::Closed { opens: None } => {
                preview.stop = Some(Stop::NoWindowOpens { at: now });
                break;
            }
        };
        let progress = Progress { notified: created, succeeded: created };
        let allowed = rate::allowance(rollout, &state, progress, targets - created, now);
        if allowed.count > 0 {
            let last = created + allowed.count - 1;
            let per_minute = match rate::rate(rollout, Progress { notified: last, succeeded: last }) {
                Rate::Unlimited => None,
                Rate::PerMinute(r) => Some(r),
            };
            preview.batches.push(Batch { at: now, count: allowed.count, per_minute });
            state.record(allowed.count, now);
            created += allowed.count;
            // A batch starts a new stretch unless the previous batch's stretch is still open
            // (no windows is one stretch); a stretch seen again may reach further now.
            match preview.windows.last_mut() {
                Some(w) if w.closes.is_none_or(|c| c > now) => w.closes = closes,
                _ => preview.windows.push(WindowUsed { first_batch: now, closes }),
            }
        }
        match [allowed.next_at, schedule.next_change(now)].into_iter().flatten().min() {
            Some(next) => now = next,
            None => break,
        }
    }
    preview.not_created = targets - created;
    Ok(preview)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rate::tests::{exponential, fixed};
    use crate::windows::tests::at;
    use crate::MINUTE;
    use fleetjobs_core::job_config::{MaintenanceWindow, RateIncreaseCriteria, SchedulingConfig};

    fn total(p: &Preview) -> i64 {
        p.batches.iter().map(|b| b.count).sum()
    }

    #[test]
    fn no_configs_is_one_batch_now() {
        let p = timeline(&JobConfigs::default(), 10_000, 7).unwrap();
        assert_eq!(p.batches, [Batch { at: 7, count: 10_000, per_minute: None }]);
        assert_eq!(p.windows, [WindowUsed { first_batch: 7, closes: None }]);
        assert_eq!((p.not_created, p.stop), (0, None));
        assert!(timeline(&JobConfigs::default(), 0, 7).unwrap().batches.is_empty());
    }

    #[test]
    fn a_fixed_rate_is_a_batch_a_minute() {
        let configs = JobConfigs { job_executions_rollout_config: Some(fixed(1000)), ..Default::default() };
        let p = timeline(&configs, 2500, 0).unwrap();
        let at = |m: i64, count| Batch { at: m * MINUTE, count, per_minute: Some(1000) };
        assert_eq!(p.batches, [at(0, 1000), at(1, 1000), at(2, 500)]);
        assert_eq!(p.windows, [WindowUsed { first_batch: 0, closes: None }], "no windows: one stretch");
    }

    #[test]
    fn an_exponential_rate_grows_per_the_documented_example() {
        let rollout = exponential(Some(1000), 50, 2.0, RateIncreaseCriteria::NumberOfNotifiedThings(1000));
        let configs = JobConfigs { job_executions_rollout_config: Some(rollout), ..Default::default() };
        let p = timeline(&configs, 5000, 0).unwrap();
        assert_eq!(total(&p), 5000);
        // 50 a minute, 100 from 1000 notified, 200 from 2000, 400 from 3000, 800 from 4000. The
        // minute that reaches a threshold goes on at the new rate: the 20th creates 50 to reach
        // 1000 and 50 more at 100 a minute.
        let counts: Vec<i64> = p.batches.iter().map(|b| b.count).collect();
        let mut expected = vec![50; 19];
        expected.extend([100; 10]);
        expected.extend([200; 5]);
        expected.extend([400, 400, 800, 450]);
        assert_eq!(counts, expected);
        assert!(p.batches.windows(2).all(|b| b[1].at - b[0].at == MINUTE));
        // Each batch shows the rate that made it: the 20th is the first at 100 a minute, the
        // last (450 of the remaining) was made at 800, not at the 1000 that 5000 would reach.
        let rates: Vec<Option<i64>> = p.batches.iter().map(|b| b.per_minute).collect();
        let mut expected = vec![Some(50); 19];
        expected.extend([Some(100); 10]);
        expected.extend([Some(200); 5]);
        expected.extend([Some(400), Some(400), Some(800), Some(800)]);
        assert_eq!(rates, expected);
        // Succeeded things, assumed to succeed at once, grow the rate the same way.
        let rollout = exponential(Some(1000), 50, 2.0, RateIncreaseCriteria::NumberOfSucceededThings(1000));
        let configs = JobConfigs { job_executions_rollout_config: Some(rollout), ..Default::default() };
        assert_eq!(timeline(&configs, 5000, 0).unwrap().batches[20].count, 100);
    }

    fn scheduled(end: Option<&str>, behavior: Option<JobEndBehavior>) -> JobConfigs {
        JobConfigs {
            job_executions_rollout_config: Some(fixed(10)),
            scheduling_config: Some(SchedulingConfig {
                start_time: Some("2026-12-02T10:00".into()),
                end_time: end.map(str::to_string),
                end_behavior: behavior,
                maintenance_windows: Some(vec![MaintenanceWindow {
                    start_time: "cron(0 2 ? * SAT *)".into(),
                    duration_in_minutes: 120,
                }]),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn windows_split_a_scheduled_rollout() {
        // 10 a minute, 120 minutes each Saturday: 1200 the first, 800 the second.
        let p = timeline(&scheduled(None, None), 2000, at("2026-12-01T09:00")).unwrap();
        assert_eq!(total(&p), 2000);
        assert_eq!(p.batches.len(), 200);
        assert_eq!(p.batches[0], Batch { at: at("2026-12-05T02:00"), count: 10, per_minute: Some(10) });
        assert_eq!(p.batches[119], Batch { at: at("2026-12-05T03:59"), count: 10, per_minute: Some(10) });
        assert_eq!(p.batches[120], Batch { at: at("2026-12-12T02:00"), count: 10, per_minute: Some(10) });
        assert_eq!(p.batches[199].at, at("2026-12-12T03:19"));
        assert_eq!(
            p.windows,
            [
                WindowUsed { first_batch: at("2026-12-05T02:00"), closes: Some(at("2026-12-05T04:00")) },
                WindowUsed { first_batch: at("2026-12-12T02:00"), closes: Some(at("2026-12-12T04:00")) },
            ]
        );
        assert_eq!((p.not_created, p.stop), (0, None));
    }

    #[test]
    fn end_time_stops_what_is_left() {
        let configs = scheduled(Some("2026-12-12T03:00"), Some(JobEndBehavior::Cancel));
        let p = timeline(&configs, 2000, at("2026-12-01T09:00")).unwrap();
        assert_eq!(total(&p), 1200 + 600);
        assert_eq!(p.not_created, 200);
        assert_eq!(p.stop, Some(Stop::Ended { at: at("2026-12-12T03:00"), behavior: JobEndBehavior::Cancel }));
    }

    #[test]
    fn windows_that_never_open_again_stop_the_rollout() {
        let mut configs = scheduled(None, None);
        if let Some(s) = configs.scheduling_config.as_mut() {
            s.maintenance_windows =
                Some(vec![MaintenanceWindow { start_time: "cron(0 2 ? * SAT 2026)".into(), duration_in_minutes: 1 }]);
        }
        let p = timeline(&configs, 100, at("2026-12-01T09:00")).unwrap();
        // Four Saturdays left in December 2026, one minute each.
        assert_eq!(total(&p), 40);
        assert_eq!(p.windows.len(), 4);
        assert_eq!(p.not_created, 60);
        assert_eq!(p.stop, Some(Stop::NoWindowOpens { at: at("2026-12-26T02:01") }));
    }
}
