//! The `install` step: `jobs-agent.js` semantics, made safe and resumable.
//!
//! 1. **Stage**: every file is downloaded (checksummed, resumable) into
//!    `<working_dir>/.fleetjobs-staging/` (same filesystem as its target, so the later rename
//!    is atomic). The working directory is `<state_dir>/packages/<package>` unless the
//!    document names one (absolute; a relative one is taken under that default). Progress is
//!    checkpointed as a [`StepCheckpoint::Marker`] holding the files already staged and the
//!    bytes of the one being downloaded, so a crash resumes where it was. A failed download
//!    deletes the staging directory: nothing in the working directory was touched.
//! 2. **Commit**: each existing target is renamed to `<file>.old`, each staged file renamed
//!    over its target, the directories fsynced. The package is recorded in
//!    `<state_dir>/packages.json` (also a files-only install, unlike `jobs-agent.js`).
//! 3. **Start** (with `launchCommand` and `autoStart`): the running instance is stopped (its
//!    whole process group) and the new one started; if it does not stay up for the stability
//!    window (or exit 0 within it), the `.old` files are put back, files that did not exist
//!    before are removed, the previous record is restored and the previous version started
//!    again → Failed `ERR_UNEXPECTED_PACKAGE_EXIT`.
//!
//! Details: `state` `package files installed` / `package installed and started`; failures
//! use the `jobs-agent.js` keys `errorCode` and `downloadError` / `errorMessage`.

use std::collections::BTreeSet;
use std::io;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use tokio::sync::watch;

use super::download::{fetch, Fetch, Hooks};
use super::download_step::{self, PARTIAL_SUFFIX};
use super::fsutil::{remove_dir_if_present, remove_file_if_present, rename_durably, sibling, sync_dir};
use super::package_steps::{failure as package_error, package_failure};
use super::packages::{start, stop, PackageRecord, PackageRegistry};
use super::Executor;
use crate::document::safe_relative_path;
use crate::executor_api::{Progress, StepCheckpoint, StepContext, StepOutcome};
use crate::plan::{InstallFile, InstallSpec};

const STAGING_DIR: &str = ".fleetjobs-staging";
const BACKUP_SUFFIX: &str = ".old";

/// The resumable state of an install, kept in [`StepCheckpoint::Marker`].
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct InstallMarker {
    /// Files downloaded and verified (in the staging directory, or already moved in place).
    staged: BTreeSet<String>,
    /// The file being downloaded, and its bytes on disk.
    #[serde(default)]
    downloading: Option<PartialFile>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct PartialFile {
    file_name: String,
    bytes: u64,
}

impl InstallMarker {
    fn from_resume(resume: Option<&StepCheckpoint>) -> Option<Self> {
        match resume {
            Some(StepCheckpoint::Marker { value }) => serde_json::from_value(value.clone()).ok(),
            _ => None,
        }
    }

    fn checkpoint(&self, ctx: &StepContext<'_>) {
        let value = serde_json::to_value(self).unwrap_or_default();
        (ctx.checkpoint)(StepCheckpoint::Marker { value });
    }
}

/// A file moved into place, and where its previous version went.
struct Committed {
    target: PathBuf,
    backup: Option<PathBuf>,
}

/// The package's working directory (see the module doc).
pub(super) fn working_directory(spec: &InstallSpec, state_dir: &Path) -> PathBuf {
    let default = state_dir.join("packages").join(&spec.package_name);
    match &spec.working_directory {
        Some(dir) if dir.is_absolute() => dir.clone(),
        Some(dir) => default.join(dir),
        None => default,
    }
}

pub(super) async fn install(exec: &Executor, spec: &InstallSpec, ctx: &StepContext<'_>) -> StepOutcome {
    let work_dir = working_directory(spec, ctx.state_dir);
    let staging = work_dir.join(STAGING_DIR);
    let mut marker = match InstallMarker::from_resume(ctx.resume) {
        Some(marker) => marker,
        None => {
            if let Err(e) = remove_dir_if_present(&staging).await {
                return copy_failure(e);
            }
            InstallMarker::default()
        }
    };
    if let Err(outcome) = stage_all(exec, spec, &staging, &mut marker, ctx).await {
        let _ = remove_dir_if_present(&staging).await;
        return outcome;
    }
    let registry = PackageRegistry::new(ctx.state_dir);
    let previous = match registry.get(&spec.package_name) {
        Ok(previous) => previous,
        Err(e) => return copy_failure(e),
    };
    let committed = match commit_files(spec, &work_dir, &staging).await {
        Ok(committed) => committed,
        Err((committed, e)) => {
            rollback_files(&committed).await;
            return copy_failure(e);
        }
    };
    let mut record = PackageRecord {
        package_name: spec.package_name.clone(),
        working_directory: work_dir.clone(),
        launch_command: spec.launch_command.clone(),
        auto_start: spec.auto_start,
        files: spec.files.iter().map(|f| f.file_name.clone()).collect(),
        running: previous.as_ref().and_then(|p| p.running),
    };
    if let Err(e) = registry.put(&record).await {
        rollback_files(&committed).await;
        return copy_failure(e);
    }
    let outcome = if spec.launch_command.is_some() && spec.auto_start {
        restart_package(exec, &registry, &mut record, previous, &committed, ctx).await
    } else {
        StepOutcome::Succeeded { details: vec![("state".into(), "package files installed".into())] }
    };
    let _ = remove_dir_if_present(&staging).await;
    outcome
}

/// Download every file not yet staged.
async fn stage_all(
    exec: &Executor,
    spec: &InstallSpec,
    staging: &Path,
    marker: &mut InstallMarker,
    ctx: &StepContext<'_>,
) -> Result<(), StepOutcome> {
    let count = spec.files.len();
    for (i, file) in spec.files.iter().enumerate() {
        if marker.staged.contains(&file.file_name) {
            continue;
        }
        let staged = staged_path(staging, file).map_err(copy_failure)?;
        let message = format!("downloading {} ({}/{count})", file.file_name, i + 1);
        (ctx.progress)(Progress { message: Some(message), ..Progress::default() });
        stage_one(exec, file, &staged, marker, ctx).await?;
        marker.staged.insert(file.file_name.clone());
        marker.downloading = None;
        marker.checkpoint(ctx);
    }
    Ok(())
}

async fn stage_one(
    exec: &Executor,
    file: &InstallFile,
    staged: &Path,
    marker: &InstallMarker,
    ctx: &StepContext<'_>,
) -> Result<(), StepOutcome> {
    let partial = sibling(staged, PARTIAL_SUFFIX);
    let resume_from = marker.downloading.as_ref().filter(|d| d.file_name == file.file_name).map(|d| d.bytes);
    let checkpoint = |bytes: u64, _total: Option<u64>| {
        let mut snapshot = marker.clone();
        snapshot.downloading = Some(PartialFile { file_name: file.file_name.clone(), bytes });
        snapshot.checkpoint(ctx);
    };
    let hooks = Hooks { checkpoint: &checkpoint, progress: ctx.progress, cancel: ctx.cancel.clone() };
    let job = Fetch { url: &file.url, partial: &partial, sha256: file.sha256.as_deref(), resume_from };
    match fetch(&exec.http, &exec.config.download, job, hooks).await {
        Ok(_) => rename_durably(&partial, staged).await.map_err(copy_failure),
        Err(e) => Err(download_step::failure(&e, &file.file_name)),
    }
}

fn staged_path(staging: &Path, file: &InstallFile) -> io::Result<PathBuf> {
    safe_relative_path(&file.file_name)
        .map(|rel| staging.join(rel))
        .map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, format!("fileName {e}")))
}

/// Move the staged files into place, backing up existing ones. A file already moved by an
/// interrupted earlier run (staged, but no longer in the staging directory) counts as
/// committed. On error, returns what was committed so far.
async fn commit_files(
    spec: &InstallSpec,
    work_dir: &Path,
    staging: &Path,
) -> Result<Vec<Committed>, (Vec<Committed>, io::Error)> {
    let mut committed = Vec::new();
    let mut dirs = BTreeSet::new();
    for file in &spec.files {
        match commit_one(file, work_dir, staging).await {
            Ok(done) => {
                dirs.extend(done.target.parent().map(Path::to_path_buf));
                committed.push(done);
            }
            Err(e) => return Err((committed, e)),
        }
    }
    for dir in dirs {
        if let Err(e) = sync_dir(&dir).await {
            return Err((committed, e));
        }
    }
    Ok(committed)
}

async fn commit_one(file: &InstallFile, work_dir: &Path, staging: &Path) -> io::Result<Committed> {
    let staged = staged_path(staging, file)?;
    let target = staged_path(work_dir, file)?;
    let backup = sibling(&target, BACKUP_SUFFIX);
    if !exists(&staged).await {
        let backup = exists(&backup).await.then_some(backup);
        return Ok(Committed { target, backup });
    }
    if let Some(parent) = target.parent() {
        tokio::fs::create_dir_all(parent).await?;
    }
    let had_previous = exists(&target).await;
    if had_previous {
        tokio::fs::rename(&target, &backup).await?;
    }
    tokio::fs::rename(&staged, &target).await?;
    Ok(Committed { target, backup: had_previous.then_some(backup) })
}

async fn exists(path: &Path) -> bool {
    tokio::fs::symlink_metadata(path).await.is_ok()
}

/// Put the previous versions back (best effort, newest first).
async fn rollback_files(committed: &[Committed]) {
    for c in committed.iter().rev() {
        let result = match &c.backup {
            Some(backup) => rename_durably(backup, &c.target).await,
            None => remove_file_if_present(&c.target).await,
        };
        if let Err(e) = result {
            tracing::error!(file = %c.target.display(), error = %e, "install rollback failed");
        }
    }
}

/// Stop the running instance, start the new one; roll everything back when it fails.
async fn restart_package(
    exec: &Executor,
    registry: &PackageRegistry,
    record: &mut PackageRecord,
    previous: Option<PackageRecord>,
    committed: &[Committed],
    ctx: &StepContext<'_>,
) -> StepOutcome {
    let control = exec.package_control();
    (ctx.progress)(Progress { message: Some("restarting package".into()), ..Progress::default() });
    if let Err(e) = stop(registry, record, control).await {
        rollback(exec, registry, record, previous, committed, ctx).await;
        return package_error("ERR_UNABLE_TO_STOP_PACKAGE", e);
    }
    match start(registry, record, &exec.package_log_dir(ctx.state_dir), control, ctx.cancel.clone()).await {
        Ok(_) => StepOutcome::Succeeded { details: vec![("state".into(), "package installed and started".into())] },
        Err(e) => {
            rollback(exec, registry, record, previous, committed, ctx).await;
            package_error("ERR_UNEXPECTED_PACKAGE_EXIT", e)
        }
    }
}

/// Undo an install whose package did not start: stop what is left of the new instance, put
/// the files and the record back, and start the previous version if it was running or
/// starts automatically.
async fn rollback(
    exec: &Executor,
    registry: &PackageRegistry,
    record: &mut PackageRecord,
    previous: Option<PackageRecord>,
    committed: &[Committed],
    ctx: &StepContext<'_>,
) {
    let control = exec.package_control();
    let _ = stop(registry, record, control).await;
    rollback_files(committed).await;
    let Some(mut previous) = previous else {
        let _ = registry.remove(&record.package_name).await;
        return;
    };
    let was_running = previous.running.take().is_some();
    let restored = registry.put(&previous).await;
    if restored.is_ok() && previous.launch_command.is_some() && (was_running || previous.auto_start) {
        let (_keep, never) = watch::channel(false);
        if let Err(e) = start(registry, &mut previous, &exec.package_log_dir(ctx.state_dir), control, never).await {
            tracing::error!(package = %previous.package_name, error = %e, "restarting the previous version failed");
        }
    }
}

fn copy_failure(e: io::Error) -> StepOutcome {
    package_failure("ERR_FILE_COPY_FAILED", format!("installing files failed: {e}"))
}
