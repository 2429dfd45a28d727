//! HTTP(S) downloads that survive bad networks: connect and read timeouts, retries with
//! jittered exponential backoff, `Range` resume from a partial file, a streaming sha256 over
//! the whole file, durable checkpoints.
//!
//! The bytes go to a partial file. Every `checkpoint_every_bytes` or `checkpoint_every`
//! (whichever comes first), and before each retry, the partial file is fsynced and the
//! caller's `checkpoint(bytes, total)` is called, so after a crash the download resumes from
//! the last checkpoint: the partial file is cut back to that many bytes, those bytes are
//! hashed again, and the rest is asked for with `Range: bytes=N-`. The server must answer
//! `206` with a `Content-Range` starting at `N`; a `200` (no range support) or any other
//! range restarts from byte 0. A `416` whose `Content-Range: bytes */N` says the file is
//! already complete finishes the download.
//!
//! A retry is made for network errors, timeouts, a body shorter than announced, `408`,
//! `425`, `429` and `5xx`; other statuses fail at once. The retry budget is
//! `attempts` failures in a row; a failure after progress starts a fresh budget.
//!
//! The caller renames the partial file into place after [`fetch`] returns (the file is
//! fsynced by then). On a checksum mismatch the partial file is deleted.

use std::error::Error as _;
use std::io;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{CONTENT_RANGE, RANGE};
use sha2::{Digest as _, Sha256};
use tokio::fs::{self, File, OpenOptions};
use tokio::io::{AsyncReadExt as _, AsyncSeekExt as _, AsyncWriteExt as _};
use tokio::sync::watch;
use tokio::time::{sleep, timeout, Instant};

use super::process::canceled;
use super::DownloadConfig;
use crate::executor_api::Progress;

/// What to download, and where.
pub(super) struct Fetch<'a> {
    pub url: &'a str,
    pub partial: &'a Path,
    /// Expected sha256, lower-case hex.
    pub sha256: Option<&'a str>,
    /// Bytes of `partial` made durable by an earlier run (its last checkpoint).
    pub resume_from: Option<u64>,
}

/// The caller's side: durable checkpoints, progress, cancellation.
pub(super) struct Hooks<'a> {
    pub checkpoint: &'a (dyn Fn(u64, Option<u64>) + Send + Sync),
    pub progress: &'a (dyn Fn(Progress) + Send + Sync),
    pub cancel: watch::Receiver<bool>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Fetched {
    pub bytes: u64,
    pub sha256: String,
}

#[derive(Debug, thiserror::Error)]
pub(super) enum FetchError {
    #[error("canceled")]
    Canceled,
    #[error("HTTP status {0}")]
    Status(u16),
    #[error("checksum mismatch: expected sha256 {expected}, got {actual}")]
    Checksum { expected: String, actual: String },
    #[error("local file error: {0}")]
    Io(#[from] io::Error),
    #[error("failed {attempts} times in a row, last: {last}")]
    Exhausted { attempts: u32, last: String },
}

enum AttemptError {
    Fatal(FetchError),
    Retry(String),
}

impl From<io::Error> for AttemptError {
    fn from(e: io::Error) -> Self {
        AttemptError::Fatal(FetchError::Io(e))
    }
}

/// Download `job.url` into `job.partial` (see the module doc).
pub(super) async fn fetch(
    http: &reqwest::Client,
    cfg: &DownloadConfig,
    job: Fetch<'_>,
    hooks: Hooks<'_>,
) -> Result<Fetched, FetchError> {
    if let Some(dir) = job.partial.parent().filter(|d| !d.as_os_str().is_empty()) {
        fs::create_dir_all(dir).await?;
    }
    let mut partial = Partial::open(job.partial, job.resume_from).await?;
    let mut failures = 0u32;
    loop {
        let before = partial.bytes;
        match attempt(http, cfg, job.url, &mut partial, &hooks).await {
            Ok(()) => break,
            Err(AttemptError::Fatal(e)) => return Err(e),
            Err(AttemptError::Retry(reason)) => {
                partial.persist(&hooks).await?;
                failures = if partial.bytes > before { 1 } else { failures + 1 };
                if failures >= cfg.attempts.max(1) {
                    return Err(FetchError::Exhausted { attempts: failures, last: reason });
                }
                tracing::warn!(url = job.url, %reason, failures, "download interrupted, retrying");
                tokio::select! {
                    () = sleep(backoff(cfg, failures)) => {}
                    () = canceled(hooks.cancel.clone()) => return Err(FetchError::Canceled),
                }
            }
        }
    }
    partial.finish(job.sha256, &hooks).await
}

/// One request: ask for the rest of the file and append what arrives.
async fn attempt(
    http: &reqwest::Client,
    cfg: &DownloadConfig,
    url: &str,
    partial: &mut Partial<'_>,
    hooks: &Hooks<'_>,
) -> Result<(), AttemptError> {
    let mut request = http.get(url);
    if partial.bytes > 0 {
        request = request.header(RANGE, format!("bytes={}-", partial.bytes));
    }
    let response = tokio::select! {
        r = timeout(cfg.connect_timeout + cfg.read_timeout, request.send()) => r,
        () = canceled(hooks.cancel.clone()) => return Err(AttemptError::Fatal(FetchError::Canceled)),
    };
    let mut response = match response {
        Err(_) => return Err(AttemptError::Retry("timed out waiting for the response".into())),
        Ok(Err(e)) => return Err(AttemptError::Retry(error_chain(&e))),
        Ok(Ok(r)) => r,
    };
    let status = response.status().as_u16();
    match status {
        206 => match content_range(&response) {
            Some((start, total)) if start == partial.bytes => partial.total = total,
            _ => {
                partial.restart().await?;
                return Err(AttemptError::Retry("206 with an unexpected Content-Range; restarting".into()));
            }
        },
        200 => {
            if partial.bytes > 0 {
                tracing::info!(url, "server ignored the Range request; restarting from byte 0");
                partial.restart().await?;
            }
            partial.total = response.content_length();
        }
        416 if partial.bytes > 0 => {
            if unsatisfied_range_total(&response) == Some(partial.bytes) {
                partial.total = Some(partial.bytes);
                return Ok(());
            }
            partial.restart().await?;
            return Err(AttemptError::Retry("416 Range Not Satisfiable; restarting".into()));
        }
        408 | 425 | 429 | 500..=599 => return Err(AttemptError::Retry(format!("HTTP status {status}"))),
        _ => return Err(AttemptError::Fatal(FetchError::Status(status))),
    }
    loop {
        let next = tokio::select! {
            r = timeout(cfg.read_timeout, response.chunk()) => r,
            () = canceled(hooks.cancel.clone()) => return Err(AttemptError::Fatal(FetchError::Canceled)),
        };
        match next {
            Err(_) => return Err(AttemptError::Retry(format!("no data for {:?}", cfg.read_timeout))),
            Ok(Err(e)) => return Err(AttemptError::Retry(error_chain(&e))),
            Ok(Ok(None)) => break,
            Ok(Ok(Some(chunk))) => {
                partial.append(&chunk).await?;
                partial.persist_if_due(cfg, hooks).await?;
            }
        }
    }
    match partial.total {
        Some(total) if partial.bytes < total => {
            Err(AttemptError::Retry(format!("connection closed after {} of {total} bytes", partial.bytes)))
        }
        Some(total) if partial.bytes > total => {
            partial.restart().await?;
            Err(AttemptError::Retry(format!("received more than the {total} bytes announced; restarting")))
        }
        _ => Ok(()),
    }
}

/// The partial file, its running sha256, and when it was last made durable.
struct Partial<'a> {
    path: &'a Path,
    file: File,
    bytes: u64,
    total: Option<u64>,
    hasher: Sha256,
    synced_bytes: u64,
    synced_at: Instant,
}

impl<'a> Partial<'a> {
    /// Open `path`, keep its first `resume_from` bytes (when it has them) and hash them.
    async fn open(path: &'a Path, resume_from: Option<u64>) -> io::Result<Self> {
        let mut file = OpenOptions::new().create(true).read(true).write(true).truncate(false).open(path).await?;
        let len = file.metadata().await?.len();
        let keep = resume_from.filter(|&b| b <= len).unwrap_or(0);
        file.set_len(keep).await?;
        file.seek(io::SeekFrom::Start(0)).await?;
        let mut hasher = Sha256::new();
        let mut buf = vec![0u8; 64 * 1024];
        let mut prefix = (&mut file).take(keep);
        loop {
            let n = prefix.read(&mut buf).await?;
            if n == 0 {
                break;
            }
            hasher.update(&buf[..n]);
        }
        file.seek(io::SeekFrom::Start(keep)).await?;
        Ok(Self { path, file, bytes: keep, total: None, hasher, synced_bytes: keep, synced_at: Instant::now() })
    }

    async fn restart(&mut self) -> io::Result<()> {
        self.file.set_len(0).await?;
        self.file.seek(io::SeekFrom::Start(0)).await?;
        self.hasher = Sha256::new();
        self.bytes = 0;
        self.total = None;
        self.synced_bytes = 0;
        Ok(())
    }

    async fn append(&mut self, data: &[u8]) -> io::Result<()> {
        self.file.write_all(data).await?;
        self.hasher.update(data);
        self.bytes += data.len() as u64;
        Ok(())
    }

    async fn persist_if_due(&mut self, cfg: &DownloadConfig, hooks: &Hooks<'_>) -> io::Result<()> {
        if self.bytes - self.synced_bytes >= cfg.checkpoint_every_bytes
            || self.synced_at.elapsed() >= cfg.checkpoint_every
        {
            self.persist(hooks).await?;
        }
        Ok(())
    }

    /// fsync, then record the checkpoint and report progress.
    async fn persist(&mut self, hooks: &Hooks<'_>) -> io::Result<()> {
        self.file.flush().await?;
        self.file.sync_data().await?;
        self.synced_bytes = self.bytes;
        self.synced_at = Instant::now();
        (hooks.checkpoint)(self.bytes, self.total);
        (hooks.progress)(self.progress());
        Ok(())
    }

    fn progress(&self) -> Progress {
        Progress {
            percent: self.total.filter(|&t| t > 0).map(|t| (self.bytes.min(t) * 100 / t) as u8),
            bytes: Some(self.bytes),
            total: self.total,
            message: None,
        }
    }

    /// fsync and check the digest; a mismatch deletes the file.
    async fn finish(mut self, expected: Option<&str>, hooks: &Hooks<'_>) -> Result<Fetched, FetchError> {
        self.file.flush().await?;
        self.file.sync_all().await?;
        let actual = hex::encode(self.hasher.finalize_reset());
        if let Some(expected) = expected.filter(|e| !e.eq_ignore_ascii_case(&actual)) {
            drop(self.file);
            fs::remove_file(self.path).await?;
            return Err(FetchError::Checksum { expected: expected.to_owned(), actual });
        }
        self.total = Some(self.bytes);
        (hooks.progress)(self.progress());
        Ok(Fetched { bytes: self.bytes, sha256: actual })
    }
}

/// `Content-Range: bytes START-END/TOTAL` (TOTAL may be `*`) → (START, TOTAL).
fn content_range(response: &reqwest::Response) -> Option<(u64, Option<u64>)> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    let (range, total) = value.trim().strip_prefix("bytes ")?.split_once('/')?;
    let (start, _end) = range.split_once('-')?;
    Some((start.trim().parse().ok()?, total.trim().parse().ok()))
}

/// `Content-Range: bytes */TOTAL` of a 416 answer → TOTAL.
fn unsatisfied_range_total(response: &reqwest::Response) -> Option<u64> {
    let value = response.headers().get(CONTENT_RANGE)?.to_str().ok()?;
    value.trim().strip_prefix("bytes */")?.trim().parse().ok()
}

/// Exponential from `backoff_initial`, capped at `backoff_max`, times a random 0.5–1.0.
fn backoff(cfg: &DownloadConfig, failures: u32) -> Duration {
    let factor = 1u32 << failures.saturating_sub(1).min(16);
    cfg.backoff_initial.saturating_mul(factor).min(cfg.backoff_max).mul_f64(rand::random_range(0.5..=1.0))
}

/// An error with its causes, `a: b: c`.
fn error_chain(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}
