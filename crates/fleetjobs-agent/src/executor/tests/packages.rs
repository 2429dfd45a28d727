use std::time::Duration;

use super::harness::{detail, eventually, executor, is_gone, step, Harness};
use crate::executor::{PackageRecord, PackageRegistry};
use crate::executor_api::StepOutcome;
use crate::plan::Action;

/// Register a package whose launch command forks a grandchild and records both pids.
async fn forking_package(h: &Harness) -> std::path::PathBuf {
    let dir = h.path("pkg");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("app.sh"), "sleep 100 &\necho $! > pids\necho $$ >> pids\nwait\n").unwrap();
    let record = PackageRecord {
        package_name: "app".into(),
        working_directory: dir.clone(),
        launch_command: Some("sh app.sh".into()),
        auto_start: false,
        files: vec!["app.sh".into()],
        running: None,
    };
    PackageRegistry::new(&h.state_dir).put(&record).await.unwrap();
    dir.join("pids")
}

fn pids(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path).unwrap_or_default().split_whitespace().map(|p| p.parse().unwrap()).collect()
}

fn op(action: Action) -> crate::plan::Step {
    step(action)
}

#[tokio::test]
async fn stop_kills_the_package_and_its_grandchildren() {
    let h = Harness::new();
    let pid_file = forking_package(&h).await;
    let exec = executor();
    let outcome = h.run(&exec, &op(Action::StartPackage { package: "app".into() }), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("state".into(), "package started".into())] });
    assert!(eventually(Duration::from_secs(2), || pids(&pid_file).len() == 2).await);
    let pids = pids(&pid_file);
    assert!(pids.iter().all(|&p| !is_gone(p)));

    // starting again is idempotent
    let outcome = h.run(&exec, &op(Action::StartPackage { package: "app".into() }), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }));

    // a new executor (agent restarted) can still stop it, grandchild included
    let outcome = h.run(&executor(), &op(Action::StopPackage { package: "app".into() }), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("state".into(), "package stopped".into())] });
    for pid in pids {
        assert!(eventually(Duration::from_secs(2), || is_gone(pid)).await, "pid {pid} survived stop");
    }
    assert_eq!(PackageRegistry::new(&h.state_dir).get("app").unwrap().unwrap().running, None);
}

#[tokio::test]
async fn restart_replaces_the_running_instance() {
    let h = Harness::new();
    let pid_file = forking_package(&h).await;
    let exec = executor();
    h.run(&exec, &op(Action::StartPackage { package: "app".into() }), None).await;
    assert!(eventually(Duration::from_secs(2), || pids(&pid_file).len() == 2).await);
    let before = pids(&pid_file);
    std::fs::remove_file(&pid_file).unwrap();
    let outcome = h.run(&exec, &op(Action::RestartPackage { package: "app".into() }), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("state".into(), "package started".into())] });
    assert!(before.iter().all(|&p| is_gone(p)));
    assert!(eventually(Duration::from_secs(2), || pids(&pid_file).len() == 2).await);
    h.run(&exec, &op(Action::StopPackage { package: "app".into() }), None).await;
}

#[tokio::test]
async fn unknown_packages_and_unstable_starts_fail_with_jobs_agent_codes() {
    let h = Harness::new();
    let exec = executor();
    let outcome = h.run(&exec, &op(Action::StartPackage { package: "ghost".into() }), None).await;
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_INVALID_PACKAGE_NAME"));
    let record = PackageRecord {
        package_name: "crashy".into(),
        working_directory: h.path(""),
        launch_command: Some("exit 4".into()),
        auto_start: true,
        files: vec![],
        running: None,
    };
    PackageRegistry::new(&h.state_dir).put(&record).await.unwrap();
    let outcome = h.run(&exec, &op(Action::StartPackage { package: "crashy".into() }), None).await;
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_UNABLE_TO_START_PACKAGE"));
    assert!(detail(&outcome, "errorMessage").unwrap().contains("exited with status 4"), "{outcome:?}");
    // exiting 0 within the window counts as started (jobs-agent.js semantics)
    let record = PackageRecord { package_name: "oneshot".into(), launch_command: Some("true".into()), ..record };
    PackageRegistry::new(&h.state_dir).put(&record).await.unwrap();
    let outcome = h.run(&exec, &op(Action::StartPackage { package: "oneshot".into() }), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    // stopping something that is not running is fine
    let outcome = h.run(&exec, &op(Action::StopPackage { package: "oneshot".into() }), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
}
