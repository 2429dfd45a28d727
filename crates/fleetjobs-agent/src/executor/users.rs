//! `runAsUser`: switch to another user with setuid/setgid, which only root can do.
//!
//! - not set, or the agent's own user: run as the agent;
//! - another user while the agent runs as root: the child gets that user's uid and primary
//!   gid (supplementary groups are dropped) and its `HOME`, `USER` and `LOGNAME`;
//! - another user while the agent is not root: the step fails with a clear reason (no
//!   `sudo -n` guessing as the Device Client does).

use tokio::process::Command;

use super::sys::{self, Account};

#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub(super) enum RunAsError {
    #[error("runAsUser {0:?}: no such user")]
    NoSuchUser(String),
    #[error("runAsUser {user:?}: cannot look the user up: {reason}")]
    Lookup { user: String, reason: String },
    #[error("runAsUser {user:?}: the agent runs as uid {uid}, not root, so it cannot switch user")]
    NotRoot { user: String, uid: u32 },
}

/// Make `cmd` run as `user` (see the module doc).
pub(super) fn apply(cmd: &mut Command, user: Option<&str>) -> Result<(), RunAsError> {
    let Some(user) = user else { return Ok(()) };
    let account = sys::lookup_user(user)
        .map_err(|e| RunAsError::Lookup { user: user.to_owned(), reason: e.to_string() })?
        .ok_or_else(|| RunAsError::NoSuchUser(user.to_owned()))?;
    let uid = sys::effective_uid();
    if account.uid == uid {
        return Ok(());
    }
    if uid != 0 {
        return Err(RunAsError::NotRoot { user: user.to_owned(), uid });
    }
    switch(cmd, &account);
    Ok(())
}

fn switch(cmd: &mut Command, account: &Account) {
    cmd.uid(account.uid)
        .gid(account.gid)
        .env("HOME", &account.home)
        .env("USER", &account.name)
        .env("LOGNAME", &account.name);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unknown_user_is_refused() {
        let mut cmd = Command::new("true");
        assert_eq!(
            apply(&mut cmd, Some("no-such-user-fleetjobs")),
            Err(RunAsError::NoSuchUser("no-such-user-fleetjobs".into()))
        );
    }

    #[test]
    fn own_user_and_none_are_fine() {
        let mut cmd = Command::new("true");
        assert_eq!(apply(&mut cmd, None), Ok(()));
        let uid = sys::effective_uid();
        if let Some(me) = (uid == 0).then_some("root") {
            assert_eq!(apply(&mut cmd, Some(me)), Ok(()));
        }
    }

    #[test]
    fn switching_needs_root() {
        let mut cmd = Command::new("true");
        let result = apply(&mut cmd, Some("nobody"));
        if sys::effective_uid() == 0 {
            assert_eq!(result, Ok(()));
        } else {
            assert!(matches!(result, Err(RunAsError::NotRoot { .. })));
        }
    }
}
