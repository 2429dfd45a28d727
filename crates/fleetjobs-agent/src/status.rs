//! `fleetjobs-agent status`: what the agent is doing, read from its state directory.
//!
//! Two sources: the durable journal (`journal.json`: current job, steps, outbox, history,
//! recent entries) and `runtime.json`, a best-effort snapshot the running agent rewrites when
//! its connection or progress changes (not fsynced: losing it loses nothing).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use crate::executor::{installed_packages, PackageRecord};
use crate::journal::{self, now_secs, JournalError, JournalState, StepState};

pub const RUNTIME_FILE: &str = "runtime.json";

#[derive(Debug, thiserror::Error)]
pub enum StatusError {
    #[error(transparent)]
    Journal(#[from] JournalError),
    #[error("cannot write {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

/// The running agent's volatile state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeStatus {
    pub pid: u32,
    pub started_at: u64,
    pub thing_name: String,
    pub endpoint: String,
    pub connected: bool,
    #[serde(default)]
    pub protocol: Option<String>,
    #[serde(default)]
    pub last_connected_at: Option<u64>,
    #[serde(default)]
    pub last_disconnect: Option<String>,
    #[serde(default)]
    pub last_poll_at: Option<u64>,
    /// The running step's latest progress, as sent in statusDetails.
    #[serde(default)]
    pub progress: Option<String>,
}

impl RuntimeStatus {
    /// Replace `runtime.json` (atomic rename; no fsync).
    pub fn save(&self, state_dir: &Path) -> Result<(), StatusError> {
        let path = state_dir.join(RUNTIME_FILE);
        let tmp = state_dir.join(format!("{RUNTIME_FILE}.tmp"));
        let bytes = serde_json::to_vec_pretty(self).expect("runtime status serializes");
        std::fs::write(&tmp, bytes)
            .and_then(|()| std::fs::rename(&tmp, &path))
            .map_err(|source| StatusError::Write { path, source })
    }
}

/// Everything `status` shows.
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StatusReport {
    pub state_dir: PathBuf,
    pub runtime: Option<RuntimeStatus>,
    pub journal: Option<JournalState>,
    /// Packages installed by `install` jobs.
    pub packages: Vec<PackageRecord>,
}

pub fn collect(state_dir: &Path) -> Result<StatusReport, StatusError> {
    let runtime = std::fs::read(state_dir.join(RUNTIME_FILE)).ok().and_then(|b| serde_json::from_slice(&b).ok());
    Ok(StatusReport {
        state_dir: state_dir.to_owned(),
        runtime,
        journal: journal::read_snapshot(state_dir)?,
        packages: installed_packages(state_dir).unwrap_or_default(),
    })
}

fn ago(t: u64) -> String {
    let d = now_secs().saturating_sub(t);
    match d {
        0..=119 => format!("{d}s ago"),
        120..=7199 => format!("{}m ago", d / 60),
        _ => format!("{}h ago", d / 3600),
    }
}

/// Human-readable report.
pub fn render(report: &StatusReport) -> String {
    let mut out = String::new();
    let w = &mut out;
    let _ = writeln!(w, "state dir: {}", report.state_dir.display());
    match &report.runtime {
        None => {
            let _ = writeln!(w, "agent: no runtime.json (never started here)");
        }
        Some(r) => {
            let alive = Path::new(&format!("/proc/{}", r.pid)).exists();
            let _ = writeln!(
                w,
                "agent: pid {} ({}), thing {}, endpoint {}, started {}",
                r.pid,
                if alive { "running" } else { "not running" },
                r.thing_name,
                r.endpoint,
                ago(r.started_at)
            );
            let conn = if !alive {
                "none (the agent is not running)".to_owned()
            } else if r.connected {
                format!(
                    "connected ({}) since {}",
                    r.protocol.as_deref().unwrap_or("?"),
                    r.last_connected_at.map(ago).unwrap_or_default()
                )
            } else {
                format!("offline ({})", r.last_disconnect.as_deref().unwrap_or("not connected yet"))
            };
            let _ = writeln!(w, "connection: {conn}");
            if let Some(t) = r.last_poll_at {
                let _ = writeln!(w, "last $next/get: {}", ago(t));
            }
        }
    }
    for p in &report.packages {
        let running = p.running.as_ref().map(|_| ", running").unwrap_or_default();
        let _ = writeln!(w, "package: {} in {}{running}", p.package_name, p.working_directory.display());
    }
    let Some(j) = &report.journal else {
        let _ = writeln!(w, "journal: empty");
        return out;
    };
    match &j.current {
        None => {
            let _ = writeln!(w, "current job: none");
        }
        Some(c) => {
            let n = c.steps.len();
            let at = c.next_step().map(|i| format!("step {}/{n}", i + 1)).unwrap_or_else(|| "finishing".into());
            let _ = writeln!(w, "current job: {} ({}), {at}, started {}", c.key, c.plan.operation, ago(c.started_at));
            for (i, s) in c.steps.iter().enumerate() {
                let mut line = format!("  {}/{n} {:<24} {:?}", i + 1, s.name, s.state);
                if s.attempts > 1 {
                    let _ = write!(line, " (attempt {})", s.attempts);
                }
                if let Some(r) = &s.reason {
                    let _ = write!(line, ": {r}");
                }
                if s.state == StepState::Running {
                    if let Some(p) = report.runtime.as_ref().and_then(|r| r.progress.as_ref()) {
                        let _ = write!(line, " [{p}]");
                    }
                }
                let _ = writeln!(w, "{line}");
            }
        }
    }
    let _ = writeln!(w, "pending updates (not yet acknowledged): {}", j.outbox.len());
    for e in &j.outbox {
        let _ = writeln!(w, "  #{} {} {} {}", e.seq, e.key, e.status, ago(e.created_at));
    }
    if !j.history.is_empty() {
        let _ = writeln!(w, "finished jobs:");
        for f in j.history.iter().rev() {
            let reason = f.reason.as_deref().map(|r| format!(": {r}")).unwrap_or_default();
            let _ = writeln!(w, "  {} {}{reason} ({})", f.key, f.outcome, ago(f.finished_at));
        }
    }
    if !j.log.is_empty() {
        let _ = writeln!(w, "recent journal entries:");
        for e in j.log.iter().rev().take(15) {
            let _ = writeln!(w, "  {:>8}  {}", ago(e.at), e.message);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::details::Details;
    use crate::execution_status::ExecutionStatus;
    use crate::journal::{ExecKey, Journal, Update};

    #[test]
    fn report_shows_job_steps_outbox_and_history() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::open(dir.path()).unwrap();
        let key = ExecKey::bare("job-1", 1);
        let first = Update {
            status: ExecutionStatus::InProgress,
            details: Details::new(),
            step_timeout_minutes: None,
            coalesce: false,
        };
        j.begin(key.clone(), serde_json::json!({}), crate::journal::tests::plan(2), Some(1), first).unwrap();
        j.step_started(&key, 0, None).unwrap();
        j.reject(&ExecKey::bare("bad", 1), None, Details::new().with("reason", "nope")).unwrap();
        RuntimeStatus {
            pid: std::process::id(),
            connected: true,
            protocol: Some("MQTT 5".into()),
            ..Default::default()
        }
        .save(dir.path())
        .unwrap();
        let text = render(&collect(dir.path()).unwrap());
        assert!(text.contains("current job: job-1#1 (test), step 1/2"), "{text}");
        assert!(text.contains("1/2 s0"), "{text}");
        assert!(text.contains("pending updates (not yet acknowledged): 2"), "{text}");
        assert!(text.contains("bad#1 REJECTED: nope"), "{text}");
        assert!(text.contains("connected (MQTT 5)"), "{text}");
        let json = serde_json::to_value(collect(dir.path()).unwrap()).unwrap();
        assert_eq!(json["journal"]["current"]["key"]["jobId"], "job-1");
    }

    #[test]
    fn empty_state_dir() {
        let dir = tempfile::tempdir().unwrap();
        let text = render(&collect(dir.path()).unwrap());
        assert!(text.contains("journal: empty"));
    }
}
