//! The engine's one timer loop: it asks the state what is due and applies it through the
//! commit pipeline like any operation: job execution timeouts (the job's in-progress timer and
//! the device's step timer → TIMED_OUT, with its event and notifications), and the rollouts
//! (a schedule's start and end, maintenance windows, the rollout rate).

use std::sync::Arc;
use std::time::Duration;

use fleetjobs_core::execution;
use fleetjobs_core::{ApiError, Millis};

use crate::Engine;

/// How long the loop sleeps at most between two looks: a deadline set meanwhile (a new step
/// timer) is noticed within this, and AWS itself may time out up to a minute late.
const MAX_SLEEP: Millis = 1_000;

impl Engine {
    /// Apply every timer due at the engine's `now`; returns how many executions timed out.
    pub async fn fire_due_timers(&self) -> Result<usize, ApiError> {
        let now = self.now();
        let due = self.lock()?.due_timers(now);
        if due.is_empty() {
            return Ok(0);
        }
        self.write(|txn| {
            let mut fired = 0;
            for key in due {
                // Read again under this transaction: the device may have finished meanwhile.
                let Some(mut e) = txn.s.executions.get(&key).cloned() else { continue };
                if txn.s.deadline_of(&key).is_some_and(|d| d <= txn.now) && execution::time_out(&mut e, txn.now) {
                    txn.put_execution(e);
                    fired += 1;
                }
            }
            Ok(fired)
        })
        .await
    }

    /// The timer loop; it runs until its task is aborted (at shutdown).
    pub async fn run_timers(self: Arc<Self>) {
        loop {
            let now = self.now();
            let next = self.lock().ok().and_then(|s| {
                let rollouts = s.rollouts_due(now).1;
                [s.next_deadline(), rollouts].into_iter().flatten().min()
            });
            let wait = next.map_or(MAX_SLEEP, |d| (d - now).clamp(0, MAX_SLEEP));
            if wait > 0 {
                tokio::time::sleep(Duration::from_millis(wait as u64)).await;
            }
            // While the store refuses writes, what is due stays due and applies once it recovers.
            if let Err(e) = self.fire_due_timers().await {
                tracing::debug!(error = %e.message, "timers not applied");
            }
            if let Err(e) = self.advance_due_rollouts().await {
                tracing::debug!(error = %e.message, "rollouts not advanced");
            }
        }
    }
}
