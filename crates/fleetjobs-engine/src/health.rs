//! The store's failures as the engine sees them: which epoch of memory holds refused changes,
//! whether writes are being refused right now, and logging each outage once.
//!
//! A commit can fail (disk full, I/O error). The engine applied that batch's changes to memory
//! before the store refused them, and later batches of the same epoch may build on them; the
//! store refuses those too. So a failure marks the epoch: the next lock of the state re-reads
//! it from the store and starts a new epoch. While commits keep failing, writes are refused at
//! once with a retryable error, except one per [`PROBE_INTERVAL`], which finds out whether
//! space has come back.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Mutex;

use fleetjobs_core::{ApiError, ErrorCode, Millis};
use fleetjobs_store::StoreError;

/// While the store refuses writes, at most one write per interval is tried.
pub const PROBE_INTERVAL: Millis = 1_000;

/// The answer to a write the store did not take: retryable, as AWS's 503 is for SDKs.
pub fn unavailable(cause: &str) -> ApiError {
    ApiError::new(
        ErrorCode::ServiceUnavailable,
        format!("The service cannot store changes right now ({cause}); nothing was changed. Retry later."),
    )
}

#[derive(Default)]
pub struct Health {
    /// The newest epoch one of whose batches failed (0: none).
    failed_epoch: AtomicU64,
    /// Whether `outage` is set: the one check on every write while all is well.
    degraded: AtomicBool,
    /// Set while the store refuses commits: the last attempt, and why.
    outage: Mutex<Option<Outage>>,
}

struct Outage {
    last_attempt: Millis,
    cause: String,
}

impl Health {
    pub fn failed_epoch(&self) -> u64 {
        self.failed_epoch.load(Ordering::SeqCst)
    }

    fn outage(&self) -> std::sync::MutexGuard<'_, Option<Outage>> {
        self.outage.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Called before a write applies anything: `Err` while the store is known to refuse
    /// commits, except for one probe write per interval.
    pub fn check_writable(&self, now: Millis) -> Result<(), ApiError> {
        if !self.degraded.load(Ordering::Acquire) {
            return Ok(());
        }
        let mut outage = self.outage();
        match outage.as_mut() {
            Some(o) if now - o.last_attempt < PROBE_INTERVAL => Err(unavailable(&o.cause)),
            Some(o) => {
                o.last_attempt = now;
                Ok(())
            }
            None => Ok(()),
        }
    }

    /// The store's verdict on one batch of `epoch`, as the caller's answer. Logs when an
    /// outage starts and when it ends, not for every refused write in between.
    pub fn settle(&self, epoch: u64, result: Result<(), StoreError>, now: Millis) -> Result<(), ApiError> {
        match result {
            Ok(()) => {
                if self.degraded.load(Ordering::Acquire) {
                    if let Some(o) = self.outage().take() {
                        tracing::info!(cause = %o.cause, "the store accepts writes again");
                    }
                    self.degraded.store(false, Ordering::Release);
                }
                Ok(())
            }
            Err(StoreError::Aborted) => {
                self.failed_epoch.fetch_max(epoch, Ordering::SeqCst);
                Err(unavailable("an earlier write in flight was refused"))
            }
            Err(e) => {
                self.failed_epoch.fetch_max(epoch, Ordering::SeqCst);
                let cause = e.to_string();
                let mut outage = self.outage();
                if outage.is_none() {
                    tracing::error!(error = %cause, "the store refused a commit; refusing writes until it accepts them again");
                }
                *outage = Some(Outage { last_attempt: now, cause: cause.clone() });
                self.degraded.store(true, Ordering::Release);
                Err(unavailable(&cause))
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failure_marks_its_epoch_and_refuses_writes_until_a_probe_succeeds() {
        let h = Health::default();
        assert!(h.check_writable(0).is_ok());
        let err = h.settle(3, Err(StoreError::Full("database or disk is full".into())), 100).unwrap_err();
        assert_eq!(err.code, ErrorCode::ServiceUnavailable);
        assert!(err.message.contains("disk is full"), "{}", err.message);
        assert_eq!(h.failed_epoch(), 3);
        assert!(h.check_writable(100 + PROBE_INTERVAL - 1).is_err(), "refused within the interval");
        assert!(h.check_writable(100 + PROBE_INTERVAL).is_ok(), "one probe per interval");
        assert!(h.check_writable(100 + PROBE_INTERVAL + 1).is_err(), "only one");
        assert!(h.settle(4, Ok(()), 2_000).is_ok());
        assert!(h.check_writable(2_001).is_ok(), "writable again after a commit succeeded");
        assert_eq!(h.failed_epoch(), 3, "the failed epoch stays marked");
    }

    #[test]
    fn aborted_batches_mark_their_epoch_without_starting_an_outage() {
        let h = Health::default();
        assert!(h.settle(2, Err(StoreError::Aborted), 0).is_err());
        assert_eq!(h.failed_epoch(), 2);
        assert!(h.check_writable(0).is_ok());
    }
}
