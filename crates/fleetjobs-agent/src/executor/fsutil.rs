//! Durable file operations: fsync of a directory, atomic rename, atomic whole-file write.

use std::io;
use std::path::{Path, PathBuf};

use tokio::fs;
use tokio::io::AsyncWriteExt as _;

/// fsync `dir` so that renames and creations in it survive a power loss.
pub(super) async fn sync_dir(dir: &Path) -> io::Result<()> {
    fs::File::open(dir).await?.sync_all().await
}

fn parent_of(path: &Path) -> &Path {
    path.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new("."))
}

/// Rename `from` to `to` (same filesystem) and fsync the destination directory.
pub(super) async fn rename_durably(from: &Path, to: &Path) -> io::Result<()> {
    fs::rename(from, to).await?;
    sync_dir(parent_of(to)).await
}

/// Replace `path` with `bytes` atomically: write a temporary file beside it, fsync, rename.
pub(super) async fn write_atomic(path: &Path, bytes: &[u8]) -> io::Result<()> {
    let dir = parent_of(path);
    fs::create_dir_all(dir).await?;
    let tmp = sibling(path, ".tmp");
    let mut file = fs::File::create(&tmp).await?;
    file.write_all(bytes).await?;
    file.sync_all().await?;
    drop(file);
    rename_durably(&tmp, path).await
}

/// `path` with `suffix` appended to its file name.
pub(super) fn sibling(path: &Path, suffix: &str) -> PathBuf {
    let mut name = path.file_name().map(|n| n.to_os_string()).unwrap_or_default();
    name.push(suffix);
    path.with_file_name(name)
}

/// Remove a file; a file that is not there is fine.
pub(super) async fn remove_file_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_file(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}

/// Remove a directory tree; one that is not there is fine.
pub(super) async fn remove_dir_if_present(path: &Path) -> io::Result<()> {
    match fs::remove_dir_all(path).await {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(e),
        _ => Ok(()),
    }
}
