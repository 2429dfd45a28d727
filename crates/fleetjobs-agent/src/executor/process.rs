//! Child processes in a process group of their own: run one to its end with a timeout and
//! cancellation (both kill the WHOLE group: SIGTERM, then SIGKILL after a grace period, then
//! reap), reading stdout and stderr concurrently into bounded tails.
//!
//! After a normal exit, members of the group that are still running (a handler that
//! started a daemon) are left alone; output is read for at most [`DRAIN`] more, so a
//! background process holding the pipes cannot hang the step.

use std::io;
use std::process::{ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::process::{Child, Command};
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::{sleep, timeout, timeout_at, Instant};

use super::output::{drain, SharedTail, Tail};
use super::{procfs, sys};

/// How long output is still read after the process exited.
pub(super) const DRAIN: Duration = Duration::from_millis(500);
/// How long to wait for a group to disappear after SIGKILL.
const AFTER_KILL: Duration = Duration::from_secs(5);
const POLL: Duration = Duration::from_millis(20);

#[derive(Debug, Clone, Copy)]
pub(super) struct Limits {
    pub timeout: Duration,
    /// SIGTERM → SIGKILL.
    pub grace: Duration,
    /// Bytes kept of each output stream.
    pub tail_bytes: usize,
}

#[derive(Debug)]
pub(super) enum Ending {
    Exited(ExitStatus),
    TimedOut,
    Canceled,
}

#[derive(Debug)]
pub(super) struct Finished {
    pub ending: Ending,
    pub stdout: Tail,
    pub stderr: Tail,
}

/// A command for `argv` in a new process group, stdin from `/dev/null`.
pub(super) fn group_command(argv: &[String]) -> io::Result<Command> {
    let (program, args) =
        argv.split_first().ok_or_else(|| io::Error::new(io::ErrorKind::InvalidInput, "empty command"))?;
    let mut cmd = Command::new(program);
    cmd.args(args).stdin(Stdio::null()).process_group(0).kill_on_drop(false);
    Ok(cmd)
}

/// Resolves when `cancel` becomes `true`; never when its sender is gone.
pub(super) async fn canceled(mut cancel: watch::Receiver<bool>) {
    if cancel.wait_for(|c| *c).await.is_err() {
        std::future::pending::<()>().await;
    }
}

enum Wake {
    Exited(io::Result<ExitStatus>),
    TimedOut,
    Canceled,
}

/// Spawn `cmd` and run it to its end: exit, timeout or cancel.
pub(super) async fn run(mut cmd: Command, limits: Limits, cancel: watch::Receiver<bool>) -> io::Result<Finished> {
    cmd.stdout(Stdio::piped()).stderr(Stdio::piped());
    let mut child = cmd.spawn()?;
    let pgid = leader_pgid(&child)?;
    let stdout: SharedTail = Arc::new(Mutex::new(Tail::new(limits.tail_bytes)));
    let stderr: SharedTail = Arc::new(Mutex::new(Tail::new(limits.tail_bytes)));
    let readers = [
        child.stdout.take().map(|r| tokio::spawn(drain(r, stdout.clone()))),
        child.stderr.take().map(|r| tokio::spawn(drain(r, stderr.clone()))),
    ];
    let wake = tokio::select! {
        status = child.wait() => Wake::Exited(status),
        () = sleep(limits.timeout) => Wake::TimedOut,
        () = canceled(cancel) => Wake::Canceled,
    };
    let ending = match wake {
        Wake::Exited(status) => Ending::Exited(status?),
        Wake::TimedOut => {
            kill_group(pgid, Some(&mut child), limits.grace).await;
            Ending::TimedOut
        }
        Wake::Canceled => {
            kill_group(pgid, Some(&mut child), limits.grace).await;
            Ending::Canceled
        }
    };
    let drain_until = Instant::now() + DRAIN;
    for reader in readers.into_iter().flatten() {
        finish_reader(reader, drain_until).await;
    }
    let take = |t: &SharedTail| t.lock().unwrap_or_else(|e| e.into_inner()).clone();
    Ok(Finished { ending, stdout: take(&stdout), stderr: take(&stderr) })
}

/// The process group of a child spawned by [`group_command`]: its own pid.
pub(super) fn leader_pgid(child: &Child) -> io::Result<i32> {
    child
        .id()
        .and_then(|id| i32::try_from(id).ok())
        .ok_or_else(|| io::Error::other("the child exited before its pid was read"))
}

async fn finish_reader(mut reader: JoinHandle<()>, until: Instant) {
    if timeout_at(until, &mut reader).await.is_err() {
        reader.abort();
    }
}

/// Stop every process of group `pgid`: SIGTERM, up to `grace` for the group to go, then
/// SIGKILL. Reaps `leader` when it is our child. Returns `true` when the group is gone.
pub(super) async fn kill_group(pgid: i32, mut leader: Option<&mut Child>, grace: Duration) -> bool {
    if sys::signal_group(pgid, libc::SIGTERM).is_err() {
        return !procfs::group_alive(pgid);
    }
    let mut gone = wait_group_gone(pgid, leader.as_deref_mut(), grace).await;
    if !gone {
        let _ = sys::signal_group(pgid, libc::SIGKILL);
        gone = wait_group_gone(pgid, leader.as_deref_mut(), AFTER_KILL).await;
    }
    if let Some(child) = leader {
        let _ = timeout(AFTER_KILL, child.wait()).await;
    }
    gone
}

/// Poll until no live process is left in group `pgid`, reaping `leader` on the way.
async fn wait_group_gone(pgid: i32, mut leader: Option<&mut Child>, limit: Duration) -> bool {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(child) = leader.as_deref_mut() {
            let _ = child.try_wait();
        }
        if !procfs::group_alive(pgid) {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        sleep(POLL).await;
    }
}
