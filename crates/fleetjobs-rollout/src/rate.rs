//! How many executions a job may create now under `jobExecutionsRolloutConfig`
//! (aws-iot-jobs.md §7.2).
//!
//! - No rollout config: everything at once. AWS's effective default is about 1000 per minute;
//!   a self-hosted fleet has no shared service to protect, and the spec allows creating all
//!   executions immediately, so Fleetjobs does.
//! - `maximumPerMinute` alone: that many per minute. A config without it (only
//!   `exponentialRate`, or `{}`) is capped at AWS's documented default, 1000.
//! - `exponentialRate`: `baseRatePerMinute`, multiplied by `incrementFactor` each time the
//!   cumulative count of notified (or succeeded) things reaches a multiple of the criterion,
//!   never above the cap. The rate applies from the moment a threshold is reached, so the
//!   minute that reaches it goes on at the new rate.
//!
//! Minutes are fixed windows anchored at the first creation after the previous window ended:
//! at most the rate is created in any window. The window is [`RateState`], two integers the
//! engine stores with the job, so a restart neither resets nor double-spends a minute.

use fleetjobs_core::job_config::{RateIncreaseCriteria, RolloutConfig};
use fleetjobs_core::Millis;

use crate::MINUTE;

/// AWS's `maximumPerMinute` when a rollout config leaves it unset.
pub const DEFAULT_MAXIMUM_PER_MINUTE: i64 = 1000;

/// The current minute window: when it opened and how many executions it created. The default
/// (nothing created) is a job that has created nothing yet.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RateState {
    pub window_start: Millis,
    pub created_in_window: i64,
}

/// The job's cumulative counts that drive an exponential rate.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Executions created so far (each one notifies its thing).
    pub notified: i64,
    /// Executions that ended SUCCEEDED.
    pub succeeded: i64,
}

/// A rate of creation.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rate {
    Unlimited,
    PerMinute(i64),
}

/// What may be created now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allowance {
    /// How many executions to create now (at most `remaining`).
    pub count: i64,
    /// When more become allowed, if any remain after `count`: the end of the minute window.
    /// (Under a succeeded-things criterion more may be allowed sooner, when executions succeed;
    /// the engine asks again on those.)
    pub next_at: Option<Millis>,
}

/// The rate at `progress`.
pub fn rate(config: Option<&RolloutConfig>, progress: Progress) -> Rate {
    let Some(config) = config else { return Rate::Unlimited };
    let cap = config.maximum_per_minute.map_or(DEFAULT_MAXIMUM_PER_MINUTE, i64::from);
    let Some(e) = &config.exponential_rate else { return Rate::PerMinute(cap) };
    let (every, count) = match e.rate_increase_criteria {
        RateIncreaseCriteria::NumberOfNotifiedThings(n) => (n, progress.notified),
        RateIncreaseCriteria::NumberOfSucceededThings(n) => (n, progress.succeeded),
    };
    let increases = count / every.max(1);
    let factor = e.increment_factor.get();
    let mut r = f64::from(e.base_rate_per_minute);
    // Stops at the cap, so at most ~75 rounds (1.1^75 > 1000) whatever the counts; a factor
    // that would not grow (not possible after `check`) stops at once.
    for _ in 0..increases {
        if r >= cap as f64 || factor.is_nan() || factor <= 1.0 {
            break;
        }
        r *= factor;
    }
    // Each rate is a whole number of executions; the epsilon keeps 50 × 1.1 × … from landing
    // a hair below an integer it equals.
    Rate::PerMinute(((r + 1e-9).floor() as i64).min(cap))
}

/// How many of the `remaining` executions may be created at `now`.
pub fn allowance(
    config: Option<&RolloutConfig>,
    state: &RateState,
    progress: Progress,
    remaining: i64,
    now: Millis,
) -> Allowance {
    if remaining <= 0 {
        return Allowance { count: 0, next_at: None };
    }
    let active = state.created_in_window > 0 && now < state.window_start + MINUTE;
    let (used, window_end) =
        if active { (state.created_in_window, state.window_start + MINUTE) } else { (0, now + MINUTE) };
    let notified_criterion = match config.and_then(|c| c.exponential_rate.as_ref()).map(|e| e.rate_increase_criteria) {
        Some(RateIncreaseCriteria::NumberOfNotifiedThings(n)) => Some(n.max(1)),
        _ => None,
    };
    let mut count = 0;
    // Creating executions notifies things, which can raise the rate within this very minute:
    // grant up to the next threshold, recompute the rate, and go on (at most a rate's worth of
    // rounds).
    while count < remaining {
        let at = Progress { notified: progress.notified + count, ..progress };
        let room = match rate(config, at) {
            Rate::Unlimited => remaining - count,
            Rate::PerMinute(r) => r - used - count,
        };
        if room <= 0 {
            break;
        }
        let to_threshold = notified_criterion.map_or(i64::MAX, |n| n - at.notified.rem_euclid(n));
        count += room.min(remaining - count).min(to_threshold);
    }
    Allowance { count, next_at: (count < remaining).then_some(window_end) }
}

impl RateState {
    /// Records `created` executions at `now`, opening a new window if the last one ended.
    pub fn record(&mut self, created: i64, now: Millis) {
        if created <= 0 {
            return;
        }
        if self.created_in_window > 0 && now < self.window_start + MINUTE {
            self.created_in_window += created;
        } else {
            *self = RateState { window_start: now, created_in_window: created };
        }
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use fleetjobs_core::job_config::ExponentialRate;

    pub(crate) fn fixed(max: i32) -> RolloutConfig {
        RolloutConfig { maximum_per_minute: Some(max), exponential_rate: None }
    }

    pub(crate) fn exponential(
        max: Option<i32>,
        base: i32,
        factor: f64,
        criteria: RateIncreaseCriteria,
    ) -> RolloutConfig {
        let factor = serde_json::from_str(&factor.to_string()).unwrap();
        RolloutConfig {
            maximum_per_minute: max,
            exponential_rate: Some(ExponentialRate {
                base_rate_per_minute: base,
                increment_factor: factor,
                rate_increase_criteria: criteria,
            }),
        }
    }

    fn notified(n: i64) -> Progress {
        Progress { notified: n, succeeded: 0 }
    }

    #[test]
    fn no_config_creates_everything_at_once() {
        let a = allowance(None, &RateState::default(), Progress::default(), 1_000_000, 5);
        assert_eq!(a, Allowance { count: 1_000_000, next_at: None });
        assert_eq!(rate(None, Progress::default()), Rate::Unlimited);
        assert_eq!(allowance(None, &RateState::default(), Progress::default(), 0, 5).count, 0);
    }

    #[test]
    fn an_empty_config_is_aws_default_rate() {
        let c = RolloutConfig { maximum_per_minute: None, exponential_rate: None };
        assert_eq!(rate(Some(&c), Progress::default()), Rate::PerMinute(1000));
    }

    #[test]
    fn a_fixed_rate_spends_minute_windows() {
        let c = fixed(10);
        let mut s = RateState::default();
        let t = 1_000_000;
        let a = allowance(Some(&c), &s, Progress::default(), 25, t);
        assert_eq!(a, Allowance { count: 10, next_at: Some(t + MINUTE) });
        s.record(4, t);
        assert_eq!(allowance(Some(&c), &s, notified(4), 21, t + 1), Allowance { count: 6, next_at: Some(t + MINUTE) });
        s.record(6, t + 1);
        assert_eq!(s, RateState { window_start: t, created_in_window: 10 });
        let a = allowance(Some(&c), &s, notified(10), 15, t + MINUTE - 1);
        assert_eq!(a, Allowance { count: 0, next_at: Some(t + MINUTE) }, "spent until the window ends");
        let a = allowance(Some(&c), &s, notified(10), 15, t + MINUTE);
        assert_eq!(a, Allowance { count: 10, next_at: Some(t + 2 * MINUTE) });
        s.record(10, t + MINUTE);
        assert_eq!(s, RateState { window_start: t + MINUTE, created_in_window: 10 });
        let a = allowance(Some(&c), &s, notified(20), 5, t + 3 * MINUTE);
        assert_eq!(a, Allowance { count: 5, next_at: None }, "the last ones");
        s.record(0, t + 5 * MINUTE);
        assert_eq!(s.window_start, t + MINUTE, "recording nothing opens no window");
    }

    #[test]
    fn the_documented_exponential_example() {
        // base 50, factor 2, criterion 1000 notified → 50/100/200/400 at 0/1000/2000/3000.
        let c = exponential(Some(1000), 50, 2.0, RateIncreaseCriteria::NumberOfNotifiedThings(1000));
        let rates: Vec<Rate> =
            [0, 999, 1000, 1999, 2000, 3000, 4000, 5000, 60_000].map(|n| rate(Some(&c), notified(n))).into();
        let per = Rate::PerMinute;
        assert_eq!(rates, [per(50), per(50), per(100), per(100), per(200), per(400), per(800), per(1000), per(1000)]);
    }

    #[test]
    fn exponential_rates_are_capped_and_whole() {
        let c = exponential(Some(300), 50, 2.0, RateIncreaseCriteria::NumberOfSucceededThings(10));
        assert_eq!(rate(Some(&c), Progress { notified: 0, succeeded: 9 }), Rate::PerMinute(50));
        assert_eq!(rate(Some(&c), Progress { notified: 10_000, succeeded: 20 }), Rate::PerMinute(200));
        assert_eq!(rate(Some(&c), Progress { notified: 0, succeeded: 30 }), Rate::PerMinute(300));
        assert_eq!(rate(Some(&c), Progress { notified: 0, succeeded: i64::MAX }), Rate::PerMinute(300));
        let c = exponential(None, 10, 1.1, RateIncreaseCriteria::NumberOfNotifiedThings(1));
        let rates: Vec<Rate> = (0..6).map(|n| rate(Some(&c), notified(n))).collect();
        let per = Rate::PerMinute;
        assert_eq!(rates, [per(10), per(11), per(12), per(13), per(14), per(16)]);
        assert_eq!(rate(Some(&c), notified(1_000_000)), per(1000), "the default cap");
        let c = exponential(Some(20), 50, 2.0, RateIncreaseCriteria::NumberOfNotifiedThings(1));
        assert_eq!(rate(Some(&c), notified(0)), per(20), "the cap bounds the base too");
    }

    #[test]
    fn a_threshold_crossed_within_a_minute_raises_that_minutes_allowance() {
        let c = exponential(Some(1000), 50, 2.0, RateIncreaseCriteria::NumberOfNotifiedThings(1000));
        // 990 notified: 10 more at 50/min reach 1000, then the rate is 100/min.
        let a = allowance(Some(&c), &RateState::default(), notified(990), 5000, 0);
        assert_eq!(a, Allowance { count: 100, next_at: Some(MINUTE) });
        // Succeeded things do not move within a call.
        let c = exponential(Some(1000), 50, 2.0, RateIncreaseCriteria::NumberOfSucceededThings(10));
        let a = allowance(Some(&c), &RateState::default(), notified(990), 5000, 0);
        assert_eq!(a.count, 50);
    }

    #[test]
    fn a_rollout_on_a_fake_clock() {
        let c = fixed(1000);
        let (mut s, mut now, mut created) = (RateState::default(), 0, 0);
        let mut batches = vec![];
        while created < 2500 {
            let a = allowance(Some(&c), &s, notified(created), 2500 - created, now);
            if a.count > 0 {
                batches.push((now, a.count));
                s.record(a.count, now);
                created += a.count;
            }
            match a.next_at {
                Some(next) => now = next,
                None => break,
            }
        }
        assert_eq!(batches, [(0, 1000), (MINUTE, 1000), (2 * MINUTE, 500)]);
    }
}
