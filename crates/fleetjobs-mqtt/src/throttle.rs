//! Log throttling: a condition that a client can cause at will (connections over the cap,
//! retained messages over the bound) is logged at most once per interval, with a count.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tokio::time::Instant;

/// At most one log line per [`LogThrottle::INTERVAL`].
#[derive(Debug, Default)]
pub(crate) struct LogThrottle {
    last: Mutex<Option<Instant>>,
    suppressed: AtomicU64,
}

impl LogThrottle {
    pub const INTERVAL: Duration = Duration::from_secs(10);

    /// `Some(n)` if the caller should log now, `n` being how many occurrences were not logged
    /// since the last line; `None` if it should stay silent.
    pub fn check(&self) -> Option<u64> {
        let now = Instant::now();
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.is_some_and(|last| now.duration_since(last) < Self::INTERVAL) {
            self.suppressed.fetch_add(1, Ordering::Relaxed);
            return None;
        }
        *last = Some(now);
        Some(self.suppressed.swap(0, Ordering::Relaxed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn logs_once_per_interval_with_the_count_of_the_rest() {
        let throttle = LogThrottle::default();
        assert_eq!(throttle.check(), Some(0));
        assert_eq!(throttle.check(), None);
        assert_eq!(throttle.check(), None);
        tokio::time::sleep(LogThrottle::INTERVAL).await;
        assert_eq!(throttle.check(), Some(2));
        assert_eq!(throttle.check(), None);
    }
}
