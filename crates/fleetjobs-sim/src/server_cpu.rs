//! The server's CPU time, read from `/proc/PID/stat` (utime + stime) when the simulator runs
//! on the same Linux machine: what a phase cost the server, independent of how busy the
//! machine was (unlike wall time on shared cores).

use std::path::Path;

/// Linux reports utime and stime in clock ticks of `USER_HZ`, 100 on every mainstream
/// architecture.
const TICKS_PER_SEC: f64 = 100.0;

/// utime + stime of `pid` in milliseconds; `None` if unreadable (not Linux, no such process).
pub fn cpu_ms(pid: u32) -> Option<f64> {
    parse_stat(&std::fs::read_to_string(Path::new("/proc").join(pid.to_string()).join("stat")).ok()?)
}

/// Fields 14 and 15 of a `/proc/PID/stat` line; the command name (field 2) may hold spaces and
/// parentheses, so fields are counted after its last `)`.
fn parse_stat(stat: &str) -> Option<f64> {
    let rest = &stat[stat.rfind(')')? + 1..];
    let mut fields = rest.split_whitespace().skip(11);
    let utime: f64 = fields.next()?.parse().ok()?;
    let stime: f64 = fields.next()?.parse().ok()?;
    Some((utime + stime) * 1000.0 / TICKS_PER_SEC)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_utime_and_stime_after_the_command_name() {
        let stat = "1234 (fleet jobs) (x) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 8 0 1 0 0";
        assert_eq!(parse_stat(stat), Some(3000.0));
        assert_eq!(parse_stat("garbage"), None);
        assert!(cpu_ms(std::process::id()).is_some());
    }
}
