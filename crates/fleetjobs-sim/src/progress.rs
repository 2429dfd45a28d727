//! The live display on stderr: on a terminal one line rewritten in place (connected, in
//! progress, succeeded, failed, rejected, executions finished per second); otherwise a plain
//! line every few seconds, for logs.

use std::io::Write;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::stats::Sample;

/// Plain lines are at most this frequent.
const PLAIN_EVERY: Duration = Duration::from_secs(2);
/// The terminal line is redrawn at most this often.
const TTY_EVERY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ProgressMode {
    /// One line, redrawn.
    Tty,
    /// Periodic lines.
    Plain,
    /// Nothing but the phase lines.
    Quiet,
}

#[derive(Debug)]
struct Last {
    shown: Option<Instant>,
    terminal: u64,
    at: Instant,
    /// The current line is a redrawn one (needs a newline before a phase line).
    dirty: bool,
}

pub struct Progress {
    mode: ProgressMode,
    things: usize,
    last: Mutex<Last>,
}

/// The status line of a sample; `rate` is executions finished per second.
pub fn status_line(s: &Sample, things: usize, rate: f64) -> String {
    format!(
        "connected {}/{things}  in progress {}  succeeded {}  failed {}  rejected {}  {:.0} executions/s",
        s.connected, s.in_progress, s.succeeded, s.failed, s.rejected, rate
    )
}

impl Progress {
    pub fn new(mode: ProgressMode, things: usize) -> Self {
        let last = Last { shown: None, terminal: 0, at: Instant::now(), dirty: false };
        Progress { mode, things, last: Mutex::new(last) }
    }

    fn write(&self, last: &mut Last, text: &str, redraw: bool) {
        let mut err = std::io::stderr().lock();
        let _ = match (redraw, last.dirty) {
            (true, _) => write!(err, "\r\x1b[2K{text}"),
            (false, true) => writeln!(err, "\n{text}"),
            (false, false) => writeln!(err, "{text}"),
        };
        let _ = err.flush();
        last.dirty = redraw;
    }

    /// A phase line (always shown).
    pub fn line(&self, text: &str) {
        if let Ok(mut last) = self.last.lock() {
            self.write(&mut last, text, false);
        }
    }

    /// The devices' state, shown if due.
    pub fn devices(&self, s: &Sample) {
        let every = match self.mode {
            ProgressMode::Tty => TTY_EVERY,
            ProgressMode::Plain => PLAIN_EVERY,
            ProgressMode::Quiet => return,
        };
        let Ok(mut last) = self.last.lock() else { return };
        let now = Instant::now();
        if last.shown.is_some_and(|t| now.duration_since(t) < every) {
            return;
        }
        let elapsed = now.duration_since(last.at).as_secs_f64();
        let rate = if elapsed > 0.0 { s.terminal().saturating_sub(last.terminal) as f64 / elapsed } else { 0.0 };
        (last.shown, last.terminal, last.at) = (Some(now), s.terminal(), now);
        let text = status_line(s, self.things, rate);
        self.write(&mut last, &text, self.mode == ProgressMode::Tty);
    }

    /// Provisioning progress until the returned task is aborted.
    pub fn tick_provisioning(self: Arc<Self>, done: Arc<AtomicUsize>) -> tokio::task::JoinHandle<()> {
        tokio::spawn(async move {
            let every = if self.mode == ProgressMode::Tty { TTY_EVERY } else { PLAIN_EVERY };
            loop {
                tokio::time::sleep(every).await;
                let text = format!("provisioning: {}/{} things", done.load(Ordering::Relaxed), self.things);
                match self.mode {
                    ProgressMode::Quiet => {}
                    mode => {
                        if let Ok(mut last) = self.last.lock() {
                            self.write(&mut last, &text, mode == ProgressMode::Tty);
                        }
                    }
                }
            }
        })
    }

    /// End a redrawn line.
    pub fn finish(&self) {
        if let Ok(mut last) = self.last.lock() {
            if last.dirty {
                eprintln!();
                last.dirty = false;
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_status_line_names_every_count() {
        let s = Sample { t_ms: 0, connected: 9, in_progress: 2, succeeded: 5, failed: 1, rejected: 1 };
        assert_eq!(
            status_line(&s, 10, 12.4),
            "connected 9/10  in progress 2  succeeded 5  failed 1  rejected 1  12 executions/s"
        );
    }
}
