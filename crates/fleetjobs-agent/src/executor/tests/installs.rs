use std::path::Path;
use std::time::Duration;

use super::harness::{content, detail, eventually, executor, is_gone, sha256_hex, step, Harness};
use super::http::{Fault, Route, TestServer};
use crate::executor::{installed_packages, PackageRegistry};
use crate::executor_api::{StepCheckpoint, StepOutcome};
use crate::plan::{Action, InstallFile, InstallSpec};

fn file(name: &str, url: String, sha256: Option<String>) -> InstallFile {
    InstallFile { file_name: name.into(), url, sha256 }
}

fn install(files: Vec<InstallFile>) -> InstallSpec {
    InstallSpec { package_name: "app".into(), files, working_directory: None, launch_command: None, auto_start: false }
}

fn serve(server: &TestServer, path: &str, body: &[u8]) -> (String, Option<String>) {
    (server.route(path, Route { body: body.to_vec(), ranges: true, ..Route::default() }), Some(sha256_hex(body)))
}

fn app_dir(h: &Harness) -> std::path::PathBuf {
    h.state_dir.join("packages/app")
}

#[tokio::test]
async fn install_with_checksums_puts_files_in_place_and_records_the_package() {
    let server = TestServer::start().await;
    let (bin_url, bin_sum) = serve(&server, "/app.bin", &content(70_000));
    let (cfg_url, cfg_sum) = serve(&server, "/app.conf", b"port=8080\n");
    let h = Harness::new();
    let spec = install(vec![file("app.bin", bin_url, bin_sum), file("etc/app.conf", cfg_url, cfg_sum)]);
    let outcome = h.run(&executor(), &step(Action::Install(spec)), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("state".into(), "package files installed".into())] });
    assert_eq!(std::fs::read(app_dir(&h).join("app.bin")).unwrap(), content(70_000));
    assert_eq!(std::fs::read(app_dir(&h).join("etc/app.conf")).unwrap(), b"port=8080\n");
    assert!(!app_dir(&h).join(".fleetjobs-staging").exists());
    let packages = installed_packages(&h.state_dir).unwrap();
    assert_eq!(packages.len(), 1);
    assert_eq!(packages[0].package_name, "app");
    assert_eq!(packages[0].working_directory, app_dir(&h));
    assert_eq!(packages[0].files, ["app.bin", "etc/app.conf"]);
    assert!(matches!(h.last_checkpoint(), Some(StepCheckpoint::Marker { .. })));
}

#[tokio::test]
async fn an_update_keeps_the_previous_files_as_old() {
    let server = TestServer::start().await;
    let (url, sum) = serve(&server, "/v2", b"version 2");
    let h = Harness::new();
    std::fs::create_dir_all(app_dir(&h)).unwrap();
    std::fs::write(app_dir(&h).join("app.bin"), "version 1").unwrap();
    let outcome = h.run(&executor(), &step(Action::Install(install(vec![file("app.bin", url, sum)]))), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read_to_string(app_dir(&h).join("app.bin")).unwrap(), "version 2");
    assert_eq!(std::fs::read_to_string(app_dir(&h).join("app.bin.old")).unwrap(), "version 1");
}

#[tokio::test]
async fn a_wrong_checksum_installs_nothing_and_leaves_old_files_untouched() {
    let server = TestServer::start().await;
    let (good_url, good_sum) = serve(&server, "/good", b"new good file");
    let (bad_url, _) = serve(&server, "/bad", b"tampered");
    let h = Harness::new();
    let dir = app_dir(&h);
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("good.bin"), "old good").unwrap();
    std::fs::write(dir.join("bad.bin"), "old bad").unwrap();
    let spec = install(vec![file("good.bin", good_url, good_sum), file("bad.bin", bad_url, Some(sha256_hex(b"x")))]);
    let outcome = h.run(&executor(), &step(Action::Install(spec)), None).await;
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_DOWNLOAD_FAILED"));
    assert_eq!(detail(&outcome, "downloadError"), Some("Error: Checksum mismatch"));
    assert_eq!(detail(&outcome, "fileName"), Some("bad.bin"));
    assert_eq!(std::fs::read_to_string(dir.join("good.bin")).unwrap(), "old good");
    assert_eq!(std::fs::read_to_string(dir.join("bad.bin")).unwrap(), "old bad");
    let mut left: Vec<_> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().file_name()).collect();
    left.sort();
    assert_eq!(left, ["bad.bin", "good.bin"]);
    assert!(installed_packages(&h.state_dir).unwrap().is_empty());
}

#[tokio::test]
async fn an_interrupted_install_resumes_without_fetching_staged_files_again() {
    let server = TestServer::start().await;
    let first = content(5_000);
    let second = content(90_000);
    let (first_url, first_sum) = serve(&server, "/first", &first);
    let second_url =
        server.route("/second", Route { body: second.clone(), ranges: true, faults: vec![Fault::StallAfter(40_000)] });
    let h = Harness::new();
    let spec =
        install(vec![file("first", first_url, first_sum), file("second", second_url, Some(sha256_hex(&second)))]);
    let s = step(Action::Install(spec));
    let exec = executor();
    let checkpoint = {
        let run = h.run(&exec, &s, None);
        tokio::select! {
            outcome = run => panic!("install ended: {outcome:?}"),
            _ = async {
                let downloading_second = || matches!(h.last_checkpoint(),
                    Some(StepCheckpoint::Marker { ref value }) if value["downloading"]["fileName"] == "second");
                assert!(eventually(Duration::from_secs(5), downloading_second).await);
                tokio::time::sleep(Duration::from_millis(300)).await;
            } => {}
        }
        h.last_checkpoint().unwrap()
    };
    let StepCheckpoint::Marker { ref value } = checkpoint else { panic!() };
    let bytes = value["downloading"]["bytes"].as_u64().unwrap();
    assert_eq!(value["staged"], serde_json::json!(["first"]));

    let outcome = h.run(&executor(), &s, Some(&checkpoint)).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(app_dir(&h).join("first")).unwrap(), first);
    assert_eq!(std::fs::read(app_dir(&h).join("second")).unwrap(), second);
    assert_eq!(server.requests_for("/first").len(), 1);
    let log = server.requests_for("/second");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].range, Some(format!("bytes={bytes}-")));
}

fn launching(mut spec: InstallSpec, command: &str) -> InstallSpec {
    spec.launch_command = Some(command.into());
    spec.auto_start = true;
    spec
}

fn running_pid(state_dir: &Path) -> Option<i32> {
    PackageRegistry::new(state_dir).get("app").unwrap()?.running.map(|r| r.pid)
}

#[tokio::test]
async fn install_and_start_then_a_failing_update_rolls_back_and_restarts_the_old_version() {
    let server = TestServer::start().await;
    let (v1_url, v1_sum) = serve(&server, "/v1", b"sleep 100 & wait\n");
    let (v2_url, v2_sum) = serve(&server, "/v2", b"echo broken >&2; exit 3\n");
    let h = Harness::new();
    let exec = executor();

    let v1 = launching(install(vec![file("app.sh", v1_url, v1_sum)]), "sh app.sh");
    let outcome = h.run(&exec, &step(Action::Install(v1)), None).await;
    assert_eq!(
        outcome,
        StepOutcome::Succeeded { details: vec![("state".into(), "package installed and started".into())] }
    );
    let v1_pid = running_pid(&h.state_dir).expect("v1 recorded as running");
    assert!(!is_gone(v1_pid));

    let v2 = launching(install(vec![file("app.sh", v2_url, v2_sum)]), "sh app.sh");
    let outcome = h.run(&exec, &step(Action::Install(v2)), None).await;
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_UNEXPECTED_PACKAGE_EXIT"), "{outcome:?}");
    assert!(is_gone(v1_pid), "the old instance was stopped for the update");
    assert_eq!(std::fs::read_to_string(app_dir(&h).join("app.sh")).unwrap(), "sleep 100 & wait\n");
    let restarted = running_pid(&h.state_dir).expect("v1 restarted");
    assert_ne!(restarted, v1_pid);
    assert!(!is_gone(restarted));
    let log = std::fs::read_to_string(h.state_dir.join("packages/app.log")).unwrap();
    assert!(log.contains("broken"), "{log}");

    let outcome = h.run(&exec, &step(Action::StopPackage { package: "app".into() }), None).await;
    assert_eq!(outcome, StepOutcome::Succeeded { details: vec![("state".into(), "package stopped".into())] });
    assert!(eventually(Duration::from_secs(2), || is_gone(restarted)).await);
}

#[tokio::test]
async fn a_first_install_that_does_not_start_removes_its_files_and_record() {
    let server = TestServer::start().await;
    let (url, sum) = serve(&server, "/bad", b"exit 1\n");
    let h = Harness::new();
    let spec = launching(install(vec![file("app.sh", url, sum)]), "sh app.sh");
    let outcome = h.run(&executor(), &step(Action::Install(spec)), None).await;
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_UNEXPECTED_PACKAGE_EXIT"), "{outcome:?}");
    assert!(!app_dir(&h).join("app.sh").exists());
    assert!(installed_packages(&h.state_dir).unwrap().is_empty());
}

#[tokio::test]
async fn install_into_a_named_working_directory() {
    let server = TestServer::start().await;
    let (url, sum) = serve(&server, "/f", b"data");
    let h = Harness::new();
    let mut spec = install(vec![file("f.txt", url, sum)]);
    let dir = h.path("opt/app");
    spec.working_directory = Some(dir.clone());
    let outcome = h.run(&executor(), &step(Action::Install(spec)), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(dir.join("f.txt")).unwrap(), b"data");
}
