use std::time::Duration;

use super::harness::{config, detail, executor, step, Harness};
use crate::executor::{Executor, PackageRecord, PackageRegistry};
use crate::executor_api::{StepCheckpoint, StepOutcome};
use crate::plan::Action;

/// A reboot command that counts its invocations in a file.
fn counting_command(h: &Harness, name: &str) -> (Vec<String>, std::path::PathBuf) {
    let count = h.path(name);
    (vec!["/bin/sh".into(), "-c".into(), format!("echo x >> {}", count.display())], count)
}

fn runs(path: &std::path::Path) -> usize {
    std::fs::read_to_string(path).map(|s| s.lines().count()).unwrap_or(0)
}

fn reboot() -> crate::plan::Step {
    step(Action::Reboot { delay_minutes: 0 })
}

#[tokio::test]
async fn reboot_records_the_boot_id_first_then_reboots() {
    let mut h = Harness::new();
    let (command, count) = counting_command(&h, "reboots");
    h.reboot_command = command;
    h.boot_id = "boot-A".into();
    let exec = executor();
    assert_eq!(h.run(&exec, &reboot(), None).await, StepOutcome::RebootPending);
    assert_eq!(h.last_checkpoint(), Some(StepCheckpoint::RebootIssued { boot_id: "boot-A".into() }));
    assert_eq!(runs(&count), 1);

    // the loop asks again before the reboot happened: nothing new is issued
    let issued = h.last_checkpoint().unwrap();
    assert_eq!(h.run(&exec, &reboot(), Some(&issued)).await, StepOutcome::RebootPending);
    assert_eq!(runs(&count), 1);

    // the agent restarted without a reboot (same boot id): the reboot is issued again
    assert_eq!(h.run(&Executor::new(config()).unwrap(), &reboot(), Some(&issued)).await, StepOutcome::RebootPending);
    assert_eq!(runs(&count), 2);

    // after the reboot: a new boot id, the step is done and nothing runs
    h.boot_id = "boot-B".into();
    let outcome = h.run(&Executor::new(config()).unwrap(), &reboot(), Some(&issued)).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("step".into(), "rebooted".into())] });
    assert_eq!(runs(&count), 2);
}

#[tokio::test]
async fn a_failing_reboot_command_fails_the_step() {
    let mut h = Harness::new();
    h.reboot_command = vec!["/bin/sh".into(), "-c".into(), "echo 'sudo: a password is required' >&2; exit 1".into()];
    let outcome = h.run(&executor(), &reboot(), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("reboot command failed"), "{reason}");
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_SYSTEM_CALL_FAILED"));
    assert_eq!(detail(&outcome, "stderr"), Some("sudo: a password is required"));
    h.reboot_command = vec![];
    assert!(matches!(h.run(&executor(), &reboot(), None).await, StepOutcome::Failed { .. }));
}

#[tokio::test]
async fn cancel_during_the_reboot_delay_issues_nothing() {
    let mut h = Harness::new();
    let (command, count) = counting_command(&h, "reboots");
    h.reboot_command = command;
    let exec = executor();
    let s = step(Action::Reboot { delay_minutes: 1 });
    let (outcome, ()) = tokio::join!(h.run(&exec, &s, None), h.cancel_after(Duration::from_millis(100)));
    assert_eq!(outcome, StepOutcome::Canceled);
    assert_eq!(h.checkpoint_count(), 0);
    assert_eq!(runs(&count), 0);
    let message = h.progress.lock().unwrap().last().and_then(|p| p.message.clone());
    assert_eq!(message.as_deref(), Some("reboot in 1 min"));
}

#[tokio::test]
async fn shutdown_reports_success_once_issued_and_after_power_on() {
    let mut h = Harness::new();
    let (command, count) = counting_command(&h, "shutdowns");
    h.shutdown_command = command;
    let s = step(Action::Shutdown { delay_minutes: 0 });
    let initiated = StepOutcome::Succeeded { details: vec![("step".into(), "initiated".into())] };
    assert_eq!(h.run(&executor(), &s, None).await, initiated);
    assert_eq!(runs(&count), 1);
    let issued = h.last_checkpoint().unwrap();
    assert!(matches!(&issued, StepCheckpoint::Marker { value } if value["shutdownBootId"] == "boot-1"));
    h.boot_id = "boot-2".into();
    assert_eq!(h.run(&executor(), &s, Some(&issued)).await, initiated);
    assert_eq!(runs(&count), 1);
}

#[tokio::test]
async fn system_status_reports_the_jobs_agent_keys() {
    let h = Harness::new();
    let exec = executor();
    let outcome = h.run(&exec, &step(Action::SystemStatus), None).await;
    assert_eq!(detail(&outcome, "installedPackages"), Some("[]"));
    assert_eq!(detail(&outcome, "platform"), Some("linux"));
    assert_eq!(detail(&outcome, "arch"), Some(std::env::consts::ARCH));
    assert_eq!(detail(&outcome, "agentVersion"), Some(env!("CARGO_PKG_VERSION")));
    assert!(detail(&outcome, "uptime").unwrap().parse::<u64>().is_ok());
    assert!(!detail(&outcome, "kernelRelease").unwrap().is_empty());
    assert!(!detail(&outcome, "hostname").unwrap().is_empty());

    let registry = PackageRegistry::new(&h.state_dir);
    for name in ["web", "agent-plugin"] {
        let record = PackageRecord {
            package_name: name.into(),
            working_directory: h.path(name),
            launch_command: None,
            auto_start: false,
            files: vec![],
            running: None,
        };
        registry.put(&record).await.unwrap();
    }
    let outcome = h.run(&exec, &step(Action::SystemStatus), None).await;
    assert_eq!(detail(&outcome, "installedPackages"), Some("[agent-plugin, web]"));
}
