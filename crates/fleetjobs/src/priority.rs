//! Scheduling priority of the control plane's threads (the HTTP runtime's and the store's
//! writer): a lower nice value than device work, so that a CPU-bound server still answers
//! API calls promptly.
//!
//! Linux keeps the nice value per thread, so `setpriority(PRIO_PROCESS, tid, nice)` changes
//! only the calling thread. Lowering it below 0 needs `CAP_SYS_NICE` (root has it) or an
//! `RLIMIT_NICE` that allows it; without either the call fails, the server says so once and
//! runs at the default priority (the own runtime alone still keeps API calls from queueing
//! behind device tasks).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

/// The nice value the control plane's threads ask for (`0`: leave them as they are).
#[derive(Debug, Clone)]
pub struct ControlPlanePriority {
    nice: i32,
    /// Set once a thread failed: one warning for the process, not one per thread.
    warned: Arc<AtomicBool>,
}

impl ControlPlanePriority {
    pub fn new(nice: i32) -> Self {
        ControlPlanePriority { nice, warned: Arc::new(AtomicBool::new(false)) }
    }

    /// Apply the nice value to the calling thread (call it first thing on each thread).
    pub fn apply_to_current_thread(&self) {
        if self.nice == 0 {
            return;
        }
        if let Err(e) = set_current_thread_nice(self.nice) {
            if !self.warned.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    nice = self.nice,
                    error = %e,
                    "could not raise the control plane's thread priority; API calls may wait \
                     behind device work on a busy machine (grant CAP_SYS_NICE, or start with \
                     --control-plane-nice 0 to not ask)"
                );
            }
        }
    }
}

#[cfg(target_os = "linux")]
#[allow(unsafe_code)] // two libc calls, argued below; std has no per-thread priority API
fn set_current_thread_nice(nice: i32) -> std::io::Result<()> {
    // SAFETY: gettid has no preconditions; setpriority reads its three integer arguments only.
    // On Linux PRIO_PROCESS with a thread id addresses that one thread.
    let done = unsafe {
        let tid = libc::gettid();
        libc::setpriority(libc::PRIO_PROCESS, tid as libc::id_t, nice)
    };
    if done == 0 {
        Ok(())
    } else {
        Err(std::io::Error::last_os_error())
    }
}

/// Elsewhere `PRIO_PROCESS` would address the whole process, device work included.
#[cfg(not(target_os = "linux"))]
fn set_current_thread_nice(_nice: i32) -> std::io::Result<()> {
    Err(std::io::Error::new(std::io::ErrorKind::Unsupported, "per-thread priority is Linux only"))
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;

    #[allow(unsafe_code)] // reading back what the module set
    fn current_nice() -> i32 {
        // SAFETY: as above; errno is cleared first because -1 is also a valid nice value.
        unsafe {
            *libc::__errno_location() = 0;
            libc::getpriority(libc::PRIO_PROCESS, libc::gettid() as libc::id_t)
        }
    }

    #[test]
    fn changes_the_calling_thread_only() {
        let before = current_nice();
        // Raising the nice value (lowering the priority) is allowed without privileges.
        let target = (before + 3).min(19);
        let on_thread = std::thread::spawn(move || {
            ControlPlanePriority::new(target).apply_to_current_thread();
            current_nice()
        })
        .join()
        .unwrap();
        assert_eq!(on_thread, target);
        assert_eq!(current_nice(), before);
    }
}
