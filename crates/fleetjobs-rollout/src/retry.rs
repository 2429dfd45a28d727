//! Whether a terminal execution gets another attempt under `jobExecutionsRetryConfig`
//! (aws-iot-jobs.md §7.5).
//!
//! FAILED is retried under a FAILED criterion, TIMED_OUT under a TIMED_OUT one, and either under
//! ALL; REJECTED (the device refused the job) and every other status never are. Each
//! criterion is a budget: a type with its own criterion spends that one, a type without spends
//! ALL's, which its types share. Whatever the criteria, an execution has at most
//! [`MAX_RETRIES`] retries in all.

use fleetjobs_core::job_config::{RetryConfig, RetryCriteria, RetryFailureType, MAX_RETRIES};
use fleetjobs_core::model::JobExecutionStatus;

/// Retries an execution has had so far, by the status that caused each.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Attempts {
    pub failed: i32,
    pub timed_out: i32,
}

impl Attempts {
    pub fn total(&self) -> i32 {
        self.failed + self.timed_out
    }
}

/// The criterion whose budget a failure type spends: its own, else ALL.
fn criterion(config: &RetryConfig, failure: RetryFailureType) -> Option<&RetryCriteria> {
    let own = config.criteria_list.iter().find(|c| c.failure_type == failure);
    own.or_else(|| config.criteria_list.iter().find(|c| c.failure_type == RetryFailureType::All))
}

/// The `retryAttempt` of the next attempt (1 for the first retry), or `None` when the execution
/// that ended in `terminal` is not retried.
pub fn decide(config: &RetryConfig, terminal: JobExecutionStatus, so_far: Attempts) -> Option<i32> {
    let failure = match terminal {
        JobExecutionStatus::Failed => RetryFailureType::Failed,
        JobExecutionStatus::TimedOut => RetryFailureType::TimedOut,
        _ => return None,
    };
    let budget = criterion(config, failure)?;
    // What this budget has paid for: every retry of a type that spends it.
    let spent: i32 = [(RetryFailureType::Failed, so_far.failed), (RetryFailureType::TimedOut, so_far.timed_out)]
        .into_iter()
        .filter(|(t, _)| criterion(config, *t).map(|c| c.failure_type) == Some(budget.failure_type))
        .map(|(_, n)| n)
        .sum();
    (spent < budget.number_of_retries && so_far.total() < MAX_RETRIES).then_some(so_far.total() + 1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use JobExecutionStatus::*;
    use RetryFailureType as T;

    fn config(list: &[(RetryFailureType, i32)]) -> RetryConfig {
        RetryConfig {
            criteria_list: list
                .iter()
                .map(|(t, n)| RetryCriteria { failure_type: *t, number_of_retries: *n })
                .collect(),
        }
    }

    fn tried(failed: i32, timed_out: i32) -> Attempts {
        Attempts { failed, timed_out }
    }

    #[test]
    fn each_type_spends_its_own_budget() {
        let c = config(&[(T::Failed, 3), (T::TimedOut, 2)]);
        assert_eq!(decide(&c, Failed, tried(0, 0)), Some(1));
        assert_eq!(decide(&c, Failed, tried(2, 2)), Some(5));
        assert_eq!(decide(&c, Failed, tried(3, 0)), None, "FAILED budget spent");
        assert_eq!(decide(&c, TimedOut, tried(3, 1)), Some(5), "TIMED_OUT budget left");
        assert_eq!(decide(&c, TimedOut, tried(0, 2)), None);
    }

    #[test]
    fn a_type_without_a_criterion_is_not_retried() {
        let c = config(&[(T::Failed, 3)]);
        assert_eq!(decide(&c, TimedOut, tried(0, 0)), None);
        let c = config(&[(T::TimedOut, 3)]);
        assert_eq!(decide(&c, Failed, tried(0, 0)), None);
    }

    #[test]
    fn all_covers_both_types_with_one_budget() {
        let c = config(&[(T::All, 3)]);
        assert_eq!(decide(&c, Failed, tried(0, 0)), Some(1));
        assert_eq!(decide(&c, TimedOut, tried(1, 1)), Some(3));
        assert_eq!(decide(&c, Failed, tried(1, 2)), None, "3 retries of either kind");
        // A type with its own criterion spends that; ALL covers the other.
        let c = config(&[(T::Failed, 1), (T::All, 2)]);
        assert_eq!(decide(&c, Failed, tried(1, 0)), None);
        assert_eq!(decide(&c, TimedOut, tried(1, 0)), Some(2), "FAILED retries do not spend ALL");
        assert_eq!(decide(&c, TimedOut, tried(1, 2)), None);
    }

    #[test]
    fn rejected_and_other_statuses_are_never_retried() {
        let c = config(&[(T::All, 10)]);
        for s in [Rejected, Succeeded, Canceled, Removed, Queued, InProgress] {
            assert_eq!(decide(&c, s, tried(0, 0)), None, "{s:?}");
        }
    }

    #[test]
    fn zero_retries_and_the_overall_cap() {
        assert_eq!(decide(&config(&[(T::Failed, 0)]), Failed, tried(0, 0)), None, "UpdateJob lowered it to 0");
        // Budgets are checked ≤ 10 together at creation; the cap holds even for a stored
        // config that would allow more.
        let c = config(&[(T::Failed, 10), (T::TimedOut, 10)]);
        assert_eq!(decide(&c, Failed, tried(5, 4)), Some(10));
        assert_eq!(decide(&c, Failed, tried(5, 5)), None);
        assert_eq!(decide(&config(&[(T::All, 10)]), TimedOut, tried(0, 9)), Some(10));
        assert_eq!(decide(&config(&[(T::All, 10)]), TimedOut, tried(0, 10)), None);
    }
}
