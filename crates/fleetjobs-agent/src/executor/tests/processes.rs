use std::time::{Duration, Instant};

use super::harness::{detail, executor, step, Harness};
use crate::executor::preflight;
use crate::executor_api::StepOutcome;
use crate::plan::{Action, Plan, RunOptions};

fn run_handler(name: &str, args: &[&str], options: RunOptions) -> Action {
    Action::RunHandler { handler: name.into(), args: args.iter().map(|s| s.to_string()).collect(), path: None, options }
}

fn sh(script: &str, options: RunOptions) -> Action {
    Action::RunCommand { argv: vec!["/bin/sh".into(), "-c".into(), script.into()], options }
}

fn with_stdout() -> RunOptions {
    RunOptions { include_stdout: true, allow_stderr: true, ..RunOptions::default() }
}

#[tokio::test]
async fn handler_success_gets_arguments_and_job_environment() {
    let h = Harness::new();
    h.handler("greet.sh", r#"echo "user=[$1] arg=[$2] job=$FLEETJOBS_JOB_ID doc=$FLEETJOBS_JOB_DOCUMENT""#);
    let outcome = h.run(&executor(), &step(run_handler("greet.sh", &["", "hi there"], with_stdout())), None).await;
    assert_eq!(
        outcome,
        StepOutcome::Succeeded {
            details: vec![
                ("exitCode".into(), "0".into()),
                ("stdout".into(), r#"user=[] arg=[hi there] job=job-1 doc={"operation":"test"}"#.into())
            ]
        }
    );
}

#[tokio::test]
async fn stdout_is_reported_only_when_asked() {
    let h = Harness::new();
    let outcome = h.run(&executor(), &step(sh("echo secret", RunOptions::default())), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("exitCode".into(), "0".into())] });
}

#[tokio::test]
async fn non_zero_exit_fails_with_the_code() {
    let h = Harness::new();
    h.handler("fail.sh", "echo 'bad input' >&2; exit 3");
    let outcome = h.run(&executor(), &step(run_handler("fail.sh", &[""], with_stdout())), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert_eq!(reason, "exited with status 3");
    assert_eq!(detail(&outcome, "exitCode"), Some("3"));
    assert_eq!(detail(&outcome, "stderr"), Some("bad input"));
    let outcome = h.run(&executor(), &step(sh("kill -KILL $$", RunOptions::default())), None).await;
    assert!(matches!(outcome, StepOutcome::Failed { ref reason, .. } if reason == "killed by signal 9"), "{outcome:?}");
}

#[tokio::test]
async fn stderr_fails_the_step_only_when_not_allowed() {
    let h = Harness::new();
    let script = "echo warning >&2; echo ok";
    let strict = RunOptions { allow_stderr: false, ..RunOptions::default() };
    let outcome = h.run(&executor(), &step(sh(script, strict)), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("stderr"), "{reason}");
    assert_eq!(detail(&outcome, "exitCode"), Some("0"));
    assert_eq!(detail(&outcome, "stderr"), Some("warning"));

    let outcome = h.run(&executor(), &step(sh(script, with_stdout())), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(detail(&outcome, "stderr"), Some("warning"));
    assert_eq!(detail(&outcome, "stdout"), Some("ok"));
    // a quiet step passes even when stderr is not allowed
    let strict = RunOptions { allow_stderr: false, ..RunOptions::default() };
    assert!(matches!(h.run(&executor(), &step(sh("true", strict)), None).await, StepOutcome::Succeeded { .. }));
}

/// Runs `sh -c 'sleep 100 & sleep 100'`-like, recording both pids.
fn group_script(h: &Harness) -> (Action, std::path::PathBuf) {
    let pids = h.path("pids");
    let script =
        format!("sleep 100 & echo $! > {0}.tmp; echo $$ >> {0}.tmp; mv {0}.tmp {0}; sleep 100", pids.display());
    (sh(&script, RunOptions::default()), pids)
}

fn read_pids(path: &std::path::Path) -> Vec<i32> {
    std::fs::read_to_string(path).unwrap().split_whitespace().map(|p| p.parse().unwrap()).collect()
}

#[tokio::test]
async fn timeout_kills_the_whole_process_group() {
    let h = Harness::new();
    let (action, pids) = group_script(&h);
    let mut s = step(action);
    s.timeout = Some(Duration::from_millis(500));
    let started = Instant::now();
    assert_eq!(h.run(&executor(), &s, None).await, StepOutcome::TimedOut);
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    let pids = read_pids(&pids);
    assert_eq!(pids.len(), 2);
    for pid in pids {
        assert!(super::harness::is_gone(pid), "pid {pid} survived the timeout");
    }
}

#[tokio::test]
async fn default_timeout_applies_when_the_step_has_none() {
    let mut h = Harness::new();
    h.default_timeout = Duration::from_millis(300);
    assert_eq!(h.run(&executor(), &step(sh("sleep 30", RunOptions::default())), None).await, StepOutcome::TimedOut);
}

#[tokio::test]
async fn cancel_kills_the_whole_process_group() {
    let h = Harness::new();
    let (action, pids) = group_script(&h);
    let s = step(action);
    let exec = executor();
    let (outcome, ()) = tokio::join!(h.run(&exec, &s, None), async {
        assert!(super::harness::eventually(Duration::from_secs(5), || pids.exists()).await);
        h.cancel_after(Duration::from_millis(50)).await;
    });
    assert_eq!(outcome, StepOutcome::Canceled);
    for pid in read_pids(&pids) {
        assert!(super::harness::is_gone(pid), "pid {pid} survived the cancel");
    }
}

#[tokio::test]
async fn a_group_ignoring_sigterm_gets_sigkill_after_the_grace_period() {
    let h = Harness::new();
    let marker = h.path("started");
    let script = format!("trap '' TERM; sleep 100 & touch {}; wait", marker.display());
    let mut s = step(sh(&script, RunOptions::default()));
    s.timeout = Some(Duration::from_millis(300));
    let started = Instant::now();
    assert_eq!(h.run(&executor(), &s, None).await, StepOutcome::TimedOut);
    let took = started.elapsed();
    assert!(took >= Duration::from_millis(1200) && took < Duration::from_secs(4), "{took:?}");
    assert!(marker.exists());
}

#[tokio::test]
async fn a_background_child_holding_the_pipes_does_not_hang_the_step() {
    let h = Harness::new();
    let pid_file = h.path("bg");
    let script = format!("sleep 3 & echo $! > {}; echo done", pid_file.display());
    let started = Instant::now();
    let outcome = h.run(&executor(), &step(sh(&script, with_stdout())), None).await;
    assert!(started.elapsed() < Duration::from_secs(2));
    assert_eq!(detail(&outcome, "stdout"), Some("done"));
    let pid: i32 = std::fs::read_to_string(&pid_file).unwrap().trim().parse().unwrap();
    kill_pid(pid);
}

fn kill_pid(pid: i32) {
    let _ = std::process::Command::new("kill").arg(pid.to_string()).status();
}

#[tokio::test]
async fn large_output_on_both_streams_is_read_concurrently_and_bounded() {
    let h = Harness::new();
    let script = "head -c 3000000 /dev/zero | tr '\\0' e >&2 & head -c 3000000 /dev/zero | tr '\\0' o; wait; echo END";
    let started = Instant::now();
    let outcome = h.run(&executor(), &step(sh(script, with_stdout())), None).await;
    assert!(started.elapsed() < Duration::from_secs(10));
    let stdout = detail(&outcome, "stdout").unwrap();
    assert_eq!(stdout.chars().count(), 1024);
    assert!(stdout.ends_with("oooEND"), "{}", &stdout[1000..]);
    assert_eq!(detail(&outcome, "stderr").unwrap().len(), 1024);
}

#[tokio::test]
async fn handler_names_and_paths_cannot_escape() {
    let h = Harness::new();
    let exec = executor();
    for (name, path) in [("../escape.sh", None), ("/bin/sh", None), ("h.sh", Some("../elsewhere"))] {
        let action = Action::RunHandler {
            handler: name.into(),
            args: vec![],
            path: path.map(Into::into),
            options: RunOptions::default(),
        };
        let outcome = h.run(&exec, &step(action), None).await;
        let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
        assert!(reason.contains("not allowed"), "{reason}");
    }
}

#[tokio::test]
async fn handler_must_exist_and_be_executable() {
    let h = Harness::new();
    let exec = executor();
    let outcome = h.run(&exec, &step(run_handler("missing.sh", &[""], RunOptions::default())), None).await;
    assert!(matches!(&outcome, StepOutcome::Failed { reason, .. } if reason.contains("no handler")), "{outcome:?}");
    std::fs::write(h.handler_dir.join("plain.sh"), "echo hi").unwrap();
    let outcome = h.run(&exec, &step(run_handler("plain.sh", &[""], RunOptions::default())), None).await;
    assert!(matches!(&outcome, StepOutcome::Failed { reason, .. } if reason.contains("not executable")), "{outcome:?}");
}

#[tokio::test]
async fn handler_in_an_explicit_directory() {
    let h = Harness::new();
    let dir = h.path("custom");
    super::harness::write_script(&dir.join("do.sh"), "echo custom");
    let action = Action::RunHandler { handler: "do.sh".into(), args: vec![], path: Some(dir), options: with_stdout() };
    assert_eq!(detail(&h.run(&executor(), &step(action), None).await, "stdout"), Some("custom"));
}

#[tokio::test]
async fn custom_job_without_a_handler_is_a_noop_and_runs_its_handler_when_installed() {
    let h = Harness::new();
    let exec = executor();
    let custom = step(run_handler("customJob", &[""], with_stdout()));
    assert_eq!(h.run(&exec, &custom, None).await, StepOutcome::Succeeded { details: vec![] });
    h.handler("customJob", "echo handled");
    assert_eq!(detail(&h.run(&exec, &custom, None).await, "stdout"), Some("handled"));
    assert_eq!(h.run(&exec, &step(Action::Noop), None).await, StepOutcome::Succeeded { details: vec![] });
}

#[tokio::test]
async fn run_as_user_switches_only_as_root() {
    let h = Harness::new();
    let options = RunOptions { run_as_user: Some("nobody".into()), ..with_stdout() };
    let outcome = h.run(&executor(), &step(sh("id -u", options)), None).await;
    if super::super::sys::effective_uid() == 0 {
        let nobody = super::super::sys::lookup_user("nobody").unwrap().unwrap();
        assert_eq!(detail(&outcome, "stdout"), Some(nobody.uid.to_string().as_str()));
    } else {
        assert!(matches!(&outcome, StepOutcome::Failed { reason, .. } if reason.contains("not root")), "{outcome:?}");
    }
    let options = RunOptions { run_as_user: Some("no-such-user-x".into()), ..RunOptions::default() };
    let outcome = h.run(&executor(), &step(sh("true", options)), None).await;
    assert!(matches!(&outcome, StepOutcome::Failed { reason, .. } if reason.contains("no such user")), "{outcome:?}");
}

#[tokio::test]
async fn extra_environment_and_missing_programs() {
    let h = Harness::new();
    let mut options = with_stdout();
    options.env.insert("GREETING".into(), "hello".into());
    assert_eq!(detail(&h.run(&executor(), &step(sh("echo $GREETING", options)), None).await, "stdout"), Some("hello"));
    let action = Action::RunCommand { argv: vec!["/nonexistent/program".into()], options: RunOptions::default() };
    let outcome = h.run(&executor(), &step(action), None).await;
    assert!(matches!(&outcome, StepOutcome::Failed { reason, .. } if reason.contains("cannot run")), "{outcome:?}");
}

#[test]
fn preflight_rejects_missing_handlers_but_not_custom_job() {
    let h = Harness::new();
    let plan = |name: &str| Plan {
        operation: name.into(),
        steps: vec![step(run_handler(name, &[""], RunOptions::default()))],
        final_step: None,
    };
    assert_eq!(preflight(&plan("customJob"), &h.handler_dir), Ok(()));
    let err = preflight(&plan("frobnicate"), &h.handler_dir).unwrap_err();
    assert!(err.0.contains("frobnicate"), "{err}");
    h.handler("frobnicate", "true");
    assert_eq!(preflight(&plan("frobnicate"), &h.handler_dir), Ok(()));
    assert!(preflight(&plan("../x"), &h.handler_dir).is_err());
    let mut with_final = plan("frobnicate");
    with_final.final_step = Some(step(run_handler("cleanup.sh", &[""], RunOptions::default())));
    assert!(preflight(&with_final, &h.handler_dir).unwrap_err().0.contains("cleanup.sh"));
    let native =
        Plan { operation: "reboot".into(), steps: vec![step(Action::Reboot { delay_minutes: 0 })], final_step: None };
    assert_eq!(preflight(&native, &h.handler_dir), Ok(()));
}
