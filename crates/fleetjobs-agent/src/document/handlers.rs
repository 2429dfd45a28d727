//! Handler steps, shared by the Device Client schema and `operation` documents: where the
//! handler lives, how it is called, and which stock Device Client handlers become native
//! actions.

use std::path::{Path, PathBuf};

use super::de::is_http_url;
use super::error;
use super::paths::{safe_absolute_path, safe_relative_path};
use crate::plan::{Action, DocumentError, RunOptions};

/// The Device Client's keyword for "the handler directory".
const DEFAULT_PATH: &str = "default";

/// Check a handler name and its `path`: `"default"`, `""` or absent → `None` (the agent's
/// handler directory); otherwise a directory without `..` components.
pub(super) fn handler_location(
    handler: &str,
    path: Option<&str>,
    where_: &str,
) -> Result<Option<PathBuf>, DocumentError> {
    safe_relative_path(handler).map_err(|e| error(format!("`{where_}` handler {e}")))?;
    match path.map(str::trim) {
        None | Some("") | Some(DEFAULT_PATH) => Ok(None),
        Some(p) if Path::new(p).is_absolute() => {
            safe_absolute_path(p).map(Some).map_err(|e| error(format!("`{where_}` path {e}")))
        }
        Some(p) => safe_relative_path(p).map(Some).map_err(|e| error(format!("`{where_}` path {e}"))),
    }
}

/// The action for a handler call: a native action for the stock `reboot.sh` and
/// `download-file.sh <url> <path>`, else a [`Action::RunHandler`] whose arguments are
/// `<runAsUser or ""> <args…>` (the Device Client's calling convention).
pub(super) fn handler_action(
    handler: &str,
    path: Option<PathBuf>,
    run_as_user: Option<&str>,
    args: Vec<String>,
    options: RunOptions,
) -> Result<Action, DocumentError> {
    if let Some(native) = native_action(handler, &args)? {
        return Ok(native);
    }
    let mut argv = Vec::with_capacity(args.len() + 1);
    argv.push(run_as_user.unwrap_or_default().to_owned());
    argv.extend(args);
    Ok(Action::RunHandler { handler: handler.to_owned(), args: argv, path, options })
}

fn native_action(handler: &str, args: &[String]) -> Result<Option<Action>, DocumentError> {
    let file_name = Path::new(handler).file_name().and_then(|n| n.to_str()).unwrap_or(handler);
    match (file_name, args) {
        ("reboot.sh", _) => Ok(Some(Action::Reboot { delay_minutes: 0 })),
        ("download-file.sh", [url, dest]) if is_http_url(url) => {
            Ok(Some(Action::Download { url: url.trim().to_owned(), path: download_path(dest)?, sha256: None }))
        }
        _ => Ok(None),
    }
}

/// Where a download goes: an absolute path, or a relative one (placed by the executor under
/// the agent's state directory).
pub(super) fn download_path(dest: &str) -> Result<PathBuf, DocumentError> {
    let dest = dest.trim();
    let checked = if Path::new(dest).is_absolute() { safe_absolute_path(dest) } else { safe_relative_path(dest) };
    checked.map_err(|e| error(format!("download destination {e}")))
}
