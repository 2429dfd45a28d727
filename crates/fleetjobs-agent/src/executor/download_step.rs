//! The `Download` step: fetch a URL to a path, resumable from the journal, then rename it
//! into place atomically.
//!
//! - A relative `path` is placed under `<state_dir>/downloads/`; an existing directory gets
//!   the URL's last path segment as the file name (as `wget -P` would).
//! - The bytes go to `<path>.fleetjobs-partial`, checkpointed as
//!   [`StepCheckpoint::Download`]. A resume is used when its partial file is ours and its URL
//!   names the same resource (the query string may differ: a fresh presigned URL).
//! - On success the file is fsynced, renamed over `path`, and the directory fsynced.
//!   Details: `fileName`, `bytes`, `sha256`.
//! - Failures carry the `jobs-agent.js` keys `errorCode` (`ERR_DOWNLOAD_FAILED`),
//!   `downloadError` and, for HTTP errors, `statusCode`. The partial file is deleted, except
//!   after `401`/`403` (a presigned URL that expired: the agent may fetch a fresh document
//!   and resume).

use std::path::{Path, PathBuf};

use super::download::{fetch, Fetch, FetchError, Hooks};
use super::fsutil::{remove_file_if_present, rename_durably, sibling};
use super::Executor;
use crate::executor_api::{StepCheckpoint, StepContext, StepOutcome};

pub(super) const PARTIAL_SUFFIX: &str = ".fleetjobs-partial";

pub(super) async fn download(
    exec: &Executor,
    url: &str,
    path: &Path,
    sha256: Option<&str>,
    ctx: &StepContext<'_>,
) -> StepOutcome {
    let target = target_path(path, url, ctx.state_dir);
    let partial = sibling(&target, PARTIAL_SUFFIX);
    let partial_text = partial.to_string_lossy().into_owned();
    let resume_from = match ctx.resume {
        Some(StepCheckpoint::Download { url: was, partial: p, bytes, .. })
            if *p == partial_text && same_resource(was, url) =>
        {
            Some(*bytes)
        }
        _ => None,
    };
    let checkpoint = |bytes: u64, total: Option<u64>| {
        (ctx.checkpoint)(StepCheckpoint::Download { url: url.to_owned(), partial: partial_text.clone(), bytes, total })
    };
    let hooks = Hooks { checkpoint: &checkpoint, progress: ctx.progress, cancel: ctx.cancel.clone() };
    let job = Fetch { url, partial: &partial, sha256, resume_from };
    let file_name = target.to_string_lossy().into_owned();
    match fetch(&exec.http, &exec.config.download, job, hooks).await {
        Ok(fetched) => match rename_durably(&partial, &target).await {
            Ok(()) => StepOutcome::Succeeded {
                details: vec![
                    ("fileName".into(), file_name),
                    ("bytes".into(), fetched.bytes.to_string()),
                    ("sha256".into(), fetched.sha256),
                ],
            },
            Err(e) => failure(&FetchError::Io(e), &file_name),
        },
        Err(e) => {
            if !keeps_partial(&e) {
                let _ = remove_file_if_present(&partial).await;
            }
            failure(&e, &file_name)
        }
    }
}

/// Where the file goes (see the module doc).
pub(super) fn target_path(path: &Path, url: &str, state_dir: &Path) -> PathBuf {
    let path = if path.is_absolute() { path.to_path_buf() } else { state_dir.join("downloads").join(path) };
    if path.is_dir() {
        path.join(url_file_name(url))
    } else {
        path
    }
}

/// The last path segment of `url`, when it is a plain file name.
fn url_file_name(url: &str) -> String {
    let without_query = url.split(['?', '#']).next().unwrap_or_default();
    let name = without_query.rsplit('/').next().unwrap_or_default();
    if name.is_empty() || name == "." || name == ".." {
        "download".to_owned()
    } else {
        name.to_owned()
    }
}

/// The same resource: equal up to the query string.
fn same_resource(a: &str, b: &str) -> bool {
    let base = |u: &str| u.split(['?', '#']).next().unwrap_or_default().to_owned();
    base(a) == base(b)
}

fn keeps_partial(e: &FetchError) -> bool {
    matches!(e, FetchError::Status(401 | 403))
}

/// The outcome of a failed download of `file_name`.
pub(super) fn failure(e: &FetchError, file_name: &str) -> StepOutcome {
    if matches!(e, FetchError::Canceled) {
        return StepOutcome::Canceled;
    }
    let mut details = vec![("errorCode".to_owned(), "ERR_DOWNLOAD_FAILED".to_owned())];
    let download_error = match e {
        FetchError::Checksum { .. } => "Error: Checksum mismatch".to_owned(),
        other => format!("Error: {other}"),
    };
    details.push(("downloadError".into(), download_error));
    if let FetchError::Status(status) = e {
        details.push(("statusCode".into(), status.to_string()));
    }
    details.push(("fileName".into(), file_name.to_owned()));
    StepOutcome::Failed { reason: format!("download of {file_name} failed: {e}"), details }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn relative_targets_go_under_the_state_dir() {
        let state = Path::new("/var/lib/fleetjobs");
        assert_eq!(target_path(Path::new("a/b.bin"), "http://x/y", state), state.join("downloads/a/b.bin"));
        assert_eq!(target_path(Path::new("/opt/x.bin"), "http://x/y", state), Path::new("/opt/x.bin"));
    }

    #[test]
    fn directories_get_the_url_file_name() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(
            target_path(dir.path(), "https://h/p/fw.bin?X-Amz-Signature=1", dir.path()),
            dir.path().join("fw.bin")
        );
        assert_eq!(target_path(dir.path(), "https://h/", dir.path()), dir.path().join("download"));
    }

    #[test]
    fn presigned_urls_of_one_object_are_the_same_resource() {
        assert!(same_resource("https://b.s3/k?X-Amz-Date=1", "https://b.s3/k?X-Amz-Date=2"));
        assert!(!same_resource("https://b.s3/k1", "https://b.s3/k2"));
    }
}
