//! What the simulated fleet has done so far: counters every device bumps (lock-free), and the
//! sampled timeline of executions by status that the chart and the summary are drawn from.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use serde::Serialize;

/// Most samples kept: past it every other one is dropped and the interval doubles, so a long
/// run's timeline stays bounded.
pub const MAX_SAMPLES: usize = 2_000;
/// Most distinct error kinds counted by name (further ones are counted as `other`).
const MAX_ERROR_KINDS: usize = 64;

/// Counters of the whole fleet. Gauges (`connected`, `in_progress`) go up and down.
#[derive(Debug, Default)]
pub struct Stats {
    pub connected: AtomicI64,
    pub connects: AtomicU64,
    pub connect_errors: AtomicU64,
    pub disconnects: AtomicU64,
    pub in_progress: AtomicI64,
    pub succeeded: AtomicU64,
    pub failed: AtomicU64,
    pub rejected: AtomicU64,
    /// Offers of an execution the device had already finished (see `Summary::stale_offers`).
    pub stale_offers: AtomicU64,
    /// Answers on `/rejected` topics (update or `$next/get`), by `code`.
    errors: Mutex<BTreeMap<String, u64>>,
}

/// One point of the timeline.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Sample {
    /// Since the simulator started.
    pub t_ms: u64,
    pub connected: i64,
    pub in_progress: i64,
    pub succeeded: u64,
    pub failed: u64,
    pub rejected: u64,
}

impl Sample {
    pub fn terminal(&self) -> u64 {
        self.succeeded + self.failed + self.rejected
    }
}

impl Stats {
    pub fn add(counter: &AtomicU64) {
        counter.fetch_add(1, Ordering::Relaxed);
    }

    pub fn error(&self, kind: &str) {
        if let Ok(mut errors) = self.errors.lock() {
            let key = if errors.len() < MAX_ERROR_KINDS || errors.contains_key(kind) { kind } else { "other" };
            *errors.entry(key.to_string()).or_default() += 1;
        }
    }

    pub fn errors(&self) -> BTreeMap<String, u64> {
        self.errors.lock().map(|e| e.clone()).unwrap_or_default()
    }

    pub fn sample(&self, t: Duration) -> Sample {
        let get = |c: &AtomicU64| c.load(Ordering::Relaxed);
        Sample {
            t_ms: u64::try_from(t.as_millis()).unwrap_or(u64::MAX),
            connected: self.connected.load(Ordering::Relaxed),
            in_progress: self.in_progress.load(Ordering::Relaxed),
            succeeded: get(&self.succeeded),
            failed: get(&self.failed),
            rejected: get(&self.rejected),
        }
    }
}

/// The timeline: samples at a fixed interval that doubles whenever [`MAX_SAMPLES`] is reached.
#[derive(Debug)]
pub struct Timeline {
    pub start: Instant,
    interval: Duration,
    samples: Vec<Sample>,
}

impl Timeline {
    pub fn new(start: Instant, interval: Duration) -> Self {
        Timeline { start, interval, samples: Vec::new() }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    pub fn push(&mut self, s: Sample) {
        self.samples.push(s);
        if self.samples.len() >= MAX_SAMPLES {
            let mut i = 0;
            self.samples.retain(|_| {
                i += 1;
                i % 2 == 1
            });
            self.interval *= 2;
        }
    }

    pub fn samples(&self) -> &[Sample] {
        &self.samples
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_timeline_stays_bounded() {
        let mut t = Timeline::new(Instant::now(), Duration::from_millis(100));
        for i in 0..10 * MAX_SAMPLES as u64 {
            t.push(Sample { t_ms: i, connected: 0, in_progress: 0, succeeded: i, failed: 0, rejected: 0 });
        }
        assert!(t.samples().len() < MAX_SAMPLES);
        assert!(t.interval() > Duration::from_millis(100));
        assert_eq!(t.samples()[0].t_ms, 0);
    }

    #[test]
    fn error_kinds_are_bounded() {
        let s = Stats::default();
        for i in 0..200 {
            s.error(&format!("E{i}"));
        }
        s.error("E0");
        let e = s.errors();
        assert!(e.len() <= MAX_ERROR_KINDS + 1);
        assert_eq!(e["E0"], 2);
        assert!(e["other"] > 0);
    }
}
