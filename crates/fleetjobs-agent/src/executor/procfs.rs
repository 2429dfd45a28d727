//! What `/proc` says about processes: state, process group, start time. Used to tell whether
//! a process group still has live (non-zombie) members, and whether a recorded pid is still
//! the process we started.

use std::fs;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct ProcStat {
    pub state: char,
    pub pgrp: i32,
    /// Clock ticks after boot (field 22 of `/proc/<pid>/stat`).
    pub start_time: u64,
}

impl ProcStat {
    /// Zombies (`Z`) and dead (`X`) entries are gone as far as we care.
    pub fn is_live(&self) -> bool {
        !matches!(self.state, 'Z' | 'X')
    }
}

pub(super) fn stat(pid: i32) -> Option<ProcStat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parse `/proc/<pid>/stat`; the command name may contain spaces and parentheses, so the
/// fields are counted from the last `)`.
fn parse_stat(text: &str) -> Option<ProcStat> {
    let rest = &text[text.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    Some(ProcStat {
        state: fields.first()?.chars().next()?,
        pgrp: fields.get(2)?.parse().ok()?,
        start_time: fields.get(19)?.parse().ok()?,
    })
}

/// The live (non-zombie) processes whose process group is `pgid`.
pub(super) fn group_members(pgid: i32) -> Vec<i32> {
    let Ok(entries) = fs::read_dir("/proc") else { return Vec::new() };
    entries
        .filter_map(|e| e.ok()?.file_name().to_str()?.parse::<i32>().ok())
        .filter(|&pid| stat(pid).is_some_and(|s| s.pgrp == pgid && s.is_live()))
        .collect()
}

pub(super) fn group_alive(pgid: i32) -> bool {
    !group_members(pgid).is_empty()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_stat_with_odd_command_names() {
        let line = "1234 (my (odd) cmd) S 1 1230 1230 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10";
        let s = parse_stat(line).unwrap();
        assert_eq!(s, ProcStat { state: 'S', pgrp: 1230, start_time: 98765 });
    }

    #[test]
    fn own_process_is_live() {
        let me = std::process::id() as i32;
        let s = stat(me).unwrap();
        assert!(s.is_live());
        assert!(s.start_time > 0);
        assert!(group_members(s.pgrp).contains(&me));
    }
}
