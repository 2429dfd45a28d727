//! Whether a job's `abortConfig` cancels it (aws-iot-jobs.md §7.3): once at least
//! `minNumberOfExecutedThings` executions are terminal, a criterion matches when the executions
//! of its failure type make up at least `thresholdPercentage` of the terminal ones. Criteria
//! are checked in order and the first that matches aborts the job (a non-forced cancel).
//!
//! Terminal means every status but QUEUED and IN_PROGRESS, as the spec and `is_terminal` say:
//! CANCELED and REMOVED executions count as completed too, and deleting executions changes the
//! computation, as AWS documents.
//!
//! AWS fills the job's `reasonCode` and `comment` on an abort but does not document the strings
//! (§2.1 CancelJob). Fleetjobs uses [`REASON_CODE`] and a comment naming the criterion and the
//! counts, so an operator can tell an abort from a CancelJob and see why.

use fleetjobs_core::events::ExecutionCounts;
use fleetjobs_core::job_config::{AbortConfig, AbortFailureType};
use fleetjobs_core::model::JobExecutionStatus;

/// The `reasonCode` of a job canceled by its abort config (matches `[\p{Upper}\p{Digit}_]+`).
pub const REASON_CODE: &str = "ABORT_CRITERIA_MET";

/// An abort decision: the criterion that matched and what the job records.
#[derive(Debug, Clone, PartialEq)]
pub struct Abort {
    pub failure_type: AbortFailureType,
    /// The criterion's `thresholdPercentage`.
    pub threshold: f64,
    pub reason_code: &'static str,
    pub comment: String,
}

/// The statuses a failure type counts; ALL is the three failing outcomes.
fn counted(failure: AbortFailureType) -> &'static [JobExecutionStatus] {
    use JobExecutionStatus::*;
    match failure {
        AbortFailureType::Failed => &[Failed],
        AbortFailureType::Rejected => &[Rejected],
        AbortFailureType::TimedOut => &[TimedOut],
        AbortFailureType::All => &[Failed, Rejected, TimedOut],
    }
}

/// The first criterion of `config` the counts meet, if any. O(criteria): the counts are the
/// job's running totals, whatever its size.
pub fn evaluate(config: &AbortConfig, counts: &ExecutionCounts) -> Option<Abort> {
    let terminal: i64 = JobExecutionStatus::ALL.iter().filter(|s| s.is_terminal()).map(|s| counts.get(*s)).sum();
    config.criteria_list.iter().find_map(|c| {
        if terminal < c.min_number_of_executed_things || terminal <= 0 {
            return None;
        }
        let failures: i64 = counted(c.failure_type).iter().map(|s| counts.get(*s)).sum();
        // failures / terminal × 100 ≥ threshold, in integers: the threshold has at most two
        // decimals (`check`), so compare hundredths of a percent and never round a ratio.
        let threshold = c.threshold_percentage.get();
        let hundredths = (threshold * 100.0).round() as i128;
        if i128::from(failures) * 10_000 < hundredths * i128::from(terminal) {
            return None;
        }
        let percent = failures as f64 * 100.0 / terminal as f64;
        Some(Abort {
            failure_type: c.failure_type,
            threshold,
            reason_code: REASON_CODE,
            comment: format!(
                "Job aborted by abortConfig: {failures} of {terminal} completed executions ({percent:.2}%) are {}, \
                 at or above the {threshold}% threshold (minNumberOfExecutedThings {})",
                c.failure_type.as_str(),
                c.min_number_of_executed_things
            ),
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use fleetjobs_core::job_config::{AbortAction, AbortCriteria};
    use JobExecutionStatus::*;

    fn criterion(failure: AbortFailureType, threshold: f64, min: i64) -> AbortCriteria {
        AbortCriteria {
            failure_type: failure,
            action: AbortAction::Cancel,
            threshold_percentage: serde_json::from_str(&threshold.to_string()).unwrap(),
            min_number_of_executed_things: min,
        }
    }

    fn config(list: Vec<AbortCriteria>) -> AbortConfig {
        AbortConfig { criteria_list: list }
    }

    fn counts(list: &[(JobExecutionStatus, i64)]) -> ExecutionCounts {
        let mut c = ExecutionCounts::default();
        for (s, n) in list {
            c.add(*s, *n);
        }
        c
    }

    #[test]
    fn waits_for_the_minimum_of_terminal_executions() {
        let c = config(vec![criterion(AbortFailureType::Failed, 20.0, 100)]);
        // 99 terminal, all failed, and plenty still running: not yet.
        assert_eq!(evaluate(&c, &counts(&[(Failed, 99), (Queued, 500), (InProgress, 500)])), None);
        let a = evaluate(&c, &counts(&[(Failed, 20), (Succeeded, 80)])).unwrap();
        assert_eq!(a.failure_type, AbortFailureType::Failed);
        assert_eq!(a.reason_code, "ABORT_CRITERIA_MET");
        assert_eq!(a.threshold, 20.0);
        assert_eq!(
            a.comment,
            "Job aborted by abortConfig: 20 of 100 completed executions (20.00%) are FAILED, \
             at or above the 20% threshold (minNumberOfExecutedThings 100)"
        );
    }

    #[test]
    fn the_threshold_is_inclusive_and_exact() {
        let c = config(vec![criterion(AbortFailureType::Failed, 20.0, 1)]);
        assert!(evaluate(&c, &counts(&[(Failed, 19), (Succeeded, 81)])).is_none());
        assert!(evaluate(&c, &counts(&[(Failed, 20), (Succeeded, 80)])).is_some(), "20% ≥ 20%");
        // 33.33%: 1 of 3 is 33.333…% ≥ 33.33%, 3333 of 10000 is exactly it, 3332 is below.
        let c = config(vec![criterion(AbortFailureType::Failed, 33.33, 1)]);
        assert!(evaluate(&c, &counts(&[(Failed, 1), (Succeeded, 2)])).is_some());
        assert!(evaluate(&c, &counts(&[(Failed, 3333), (Succeeded, 6667)])).is_some());
        assert!(evaluate(&c, &counts(&[(Failed, 3332), (Succeeded, 6668)])).is_none());
        // 0% aborts as soon as the minimum is reached: the rule as written.
        let c = config(vec![criterion(AbortFailureType::Failed, 0.0, 5)]);
        assert!(evaluate(&c, &counts(&[(Succeeded, 4)])).is_none());
        assert!(evaluate(&c, &counts(&[(Succeeded, 5)])).is_some());
        let c = config(vec![criterion(AbortFailureType::Failed, 100.0, 1)]);
        assert!(evaluate(&c, &counts(&[(Failed, 9), (Succeeded, 1)])).is_none());
        assert!(evaluate(&c, &counts(&[(Failed, 10)])).is_some());
    }

    #[test]
    fn each_failure_type_counts_its_statuses_over_all_terminal_ones() {
        let mix =
            counts(&[(Failed, 10), (Rejected, 10), (TimedOut, 10), (Succeeded, 50), (Canceled, 10), (Removed, 10)]);
        // 100 terminal: 10% of each type, 30% for ALL.
        for (failure, pct) in [
            (AbortFailureType::Failed, 10.0),
            (AbortFailureType::Rejected, 10.0),
            (AbortFailureType::TimedOut, 10.0),
            (AbortFailureType::All, 30.0),
        ] {
            assert!(evaluate(&config(vec![criterion(failure, pct, 100)]), &mix).is_some(), "{failure:?} {pct}");
            assert!(evaluate(&config(vec![criterion(failure, pct + 0.01, 100)]), &mix).is_none(), "{failure:?}");
        }
        assert!(evaluate(&config(vec![criterion(AbortFailureType::All, 1.0, 101)]), &mix).is_none());
    }

    #[test]
    fn the_first_matching_criterion_in_order_wins() {
        let mix = counts(&[(Failed, 30), (TimedOut, 60), (Succeeded, 10)]);
        let c = config(vec![
            criterion(AbortFailureType::Rejected, 1.0, 1),
            criterion(AbortFailureType::TimedOut, 50.0, 100),
            criterion(AbortFailureType::Failed, 20.0, 100),
        ]);
        assert_eq!(evaluate(&c, &mix).map(|a| a.failure_type), Some(AbortFailureType::TimedOut));
        let c = config(vec![
            criterion(AbortFailureType::Failed, 20.0, 100),
            criterion(AbortFailureType::TimedOut, 50.0, 100),
        ]);
        assert_eq!(evaluate(&c, &mix).map(|a| a.failure_type), Some(AbortFailureType::Failed));
    }

    #[test]
    fn nothing_terminal_never_aborts() {
        let c = config(vec![criterion(AbortFailureType::All, 0.0, 1)]);
        assert!(evaluate(&c, &ExecutionCounts::default()).is_none());
        assert!(evaluate(&c, &counts(&[(Queued, 5), (InProgress, 5)])).is_none());
    }
}
