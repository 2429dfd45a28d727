//! Names that a document may use for files and packages, checked lexically: relative paths
//! made only of normal components (no `..`, no root, no NUL), and plain package names.

use std::path::{Component, Path, PathBuf};

/// `s` as a relative path that stays inside whatever directory it is joined to.
/// `./` components are dropped; `..`, absolute paths, empty names and NUL bytes are refused.
pub fn safe_relative_path(s: &str) -> Result<PathBuf, String> {
    if s.trim().is_empty() {
        return Err("empty path".into());
    }
    if s.contains('\0') {
        return Err(format!("{s:?} contains a NUL byte"));
    }
    let mut out = PathBuf::new();
    for c in Path::new(s).components() {
        match c {
            Component::Normal(part) => out.push(part),
            Component::CurDir => {}
            Component::ParentDir => return Err(format!("{s:?} contains `..`")),
            Component::RootDir | Component::Prefix(_) => return Err(format!("{s:?} is an absolute path")),
        }
    }
    if out.as_os_str().is_empty() {
        return Err(format!("{s:?} names no file"));
    }
    Ok(out)
}

/// An absolute path without `..` components (a working directory chosen by the document).
pub(super) fn safe_absolute_path(s: &str) -> Result<PathBuf, String> {
    let p = Path::new(s);
    if !p.is_absolute() {
        return Err(format!("{s:?} is not absolute"));
    }
    if s.contains('\0') || p.components().any(|c| c == Component::ParentDir) {
        return Err(format!("{s:?} contains `..` or a NUL byte"));
    }
    Ok(p.components().collect())
}

/// A package name usable as one directory name: `[A-Za-z0-9._-]{1,128}`, not `.` or `..`.
pub fn valid_package_name(name: &str) -> bool {
    (1..=128).contains(&name.len())
        && name != "."
        && name != ".."
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}
