use std::path::Path;
use std::time::Duration;

use super::harness::{config, content, detail, eventually, executor, sha256_hex, step, Harness};
use super::http::{Fault, Route, TestServer};
use crate::executor::Executor;
use crate::executor_api::{StepCheckpoint, StepOutcome};
use crate::plan::Action;

fn download(url: &str, path: &Path, sha256: Option<String>) -> Action {
    Action::Download { url: url.into(), path: path.into(), sha256 }
}

fn partial_of(path: &Path) -> std::path::PathBuf {
    let mut name = path.file_name().unwrap().to_os_string();
    name.push(".fleetjobs-partial");
    path.with_file_name(name)
}

#[tokio::test]
async fn download_with_a_good_checksum() {
    let server = TestServer::start().await;
    let body = content(200_000);
    let url = server.route("/fw.bin", Route { body: body.clone(), ranges: true, ..Route::default() });
    let h = Harness::new();
    let target = h.path("out/fw.bin");
    let outcome = h.run(&executor(), &step(download(&url, &target, Some(sha256_hex(&body)))), None).await;
    assert_eq!(
        outcome,
        StepOutcome::Succeeded {
            details: vec![
                ("fileName".into(), target.display().to_string()),
                ("bytes".into(), "200000".into()),
                ("sha256".into(), sha256_hex(&body)),
            ]
        }
    );
    assert_eq!(std::fs::read(&target).unwrap(), body);
    assert!(!partial_of(&target).exists());
    assert!(h.checkpoint_count() > 0, "a 200 kB download is checkpointed");
    let last = h.progress.lock().unwrap().last().cloned().unwrap();
    assert_eq!((last.bytes, last.total, last.percent), (Some(200_000), Some(200_000), Some(100)));
}

#[tokio::test]
async fn wrong_checksum_fails_and_leaves_nothing() {
    let server = TestServer::start().await;
    let url = server.route("/fw.bin", Route { body: content(5000), ranges: true, ..Route::default() });
    let h = Harness::new();
    let target = h.path("fw.bin");
    let outcome = h.run(&executor(), &step(download(&url, &target, Some(sha256_hex(b"other")))), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("checksum mismatch"), "{reason}");
    assert_eq!(detail(&outcome, "errorCode"), Some("ERR_DOWNLOAD_FAILED"));
    assert_eq!(detail(&outcome, "downloadError"), Some("Error: Checksum mismatch"));
    assert!(!target.exists());
    assert!(!partial_of(&target).exists());
}

#[tokio::test]
async fn relative_paths_land_in_the_state_dir_and_directories_get_the_url_name() {
    let server = TestServer::start().await;
    let url = server.route("/files/report.txt", Route { body: b"hello".to_vec(), ..Route::default() });
    let h = Harness::new();
    let exec = executor();
    assert!(matches!(
        h.run(&exec, &step(download(&url, Path::new("r/report.txt"), None)), None).await,
        StepOutcome::Succeeded { .. }
    ));
    assert_eq!(std::fs::read(h.state_dir.join("downloads/r/report.txt")).unwrap(), b"hello");
    let dir = h.path("inbox");
    std::fs::create_dir_all(&dir).unwrap();
    assert!(matches!(h.run(&exec, &step(download(&url, &dir, None)), None).await, StepOutcome::Succeeded { .. }));
    assert_eq!(std::fs::read(dir.join("report.txt")).unwrap(), b"hello");
}

#[tokio::test]
async fn a_dropped_connection_resumes_with_range_in_the_same_run() {
    let server = TestServer::start().await;
    let body = content(100_000);
    let url = server.route(
        "/big",
        Route { body: body.clone(), ranges: true, faults: vec![Fault::DropAfter(30_000), Fault::Status(503)] },
    );
    let h = Harness::new();
    let target = h.path("big");
    let outcome = h.run(&executor(), &step(download(&url, &target, Some(sha256_hex(&body)))), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(&target).unwrap(), body);
    let log = server.requests_for("/big");
    assert_eq!(log.len(), 3, "{log:?}");
    assert_eq!(log[0].range, None);
    let checkpoints = h.checkpoints.lock().unwrap().clone();
    assert!(
        checkpoints.iter().any(|c| matches!(c, StepCheckpoint::Download { bytes: 30_000, .. })),
        "the bytes on disk are checkpointed before the retry: {checkpoints:?}"
    );
    assert_eq!((log[1].status, log[2].status), (503, 206));
    assert_eq!(log[2].range.as_deref(), Some("bytes=30000-"));
}

#[tokio::test]
async fn retries_are_bounded_and_client_errors_are_final() {
    let server = TestServer::start().await;
    let url =
        server.route("/down", Route { body: b"x".to_vec(), faults: vec![Fault::Status(500); 5], ..Route::default() });
    let h = Harness::new();
    let outcome = h.run(&executor(), &step(download(&url, &h.path("d"), None)), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("3 times"), "{reason}");
    assert_eq!(server.requests_for("/down").len(), 3);

    let outcome = h.run(&executor(), &step(download(&server.url("/missing"), &h.path("m"), None)), None).await;
    assert_eq!(detail(&outcome, "statusCode"), Some("404"));
    assert_eq!(server.requests_for("/missing").len(), 1);
    assert!(!h.path("m").exists());
}

/// Start a download that stalls after `stall_after` bytes, and "kill" the agent (drop the
/// step) once a checkpoint is on record. Returns the last checkpoint.
async fn interrupted_download(h: &Harness, url: &str, target: &Path) -> StepCheckpoint {
    let exec = executor();
    let s = step(download(url, target, None));
    let run = h.run(&exec, &s, None);
    let killed = tokio::time::timeout(Duration::from_secs(10), async {
        tokio::select! {
            outcome = run => panic!("the download ended: {outcome:?}"),
            _ = async {
                assert!(eventually(Duration::from_secs(5), || h.checkpoint_count() > 0).await);
                tokio::time::sleep(Duration::from_millis(300)).await;
            } => {}
        }
    })
    .await;
    assert!(killed.is_ok());
    h.last_checkpoint().unwrap()
}

#[tokio::test]
async fn resume_after_a_crash_fetches_only_the_rest() {
    let server = TestServer::start().await;
    let body = content(120_000);
    let url = server.route("/fw", Route { body: body.clone(), ranges: true, faults: vec![Fault::StallAfter(50_000)] });
    let h = Harness::new();
    let target = h.path("fw");
    let checkpoint = interrupted_download(&h, &url, &target).await;
    let StepCheckpoint::Download { bytes, ref partial, .. } = checkpoint else { panic!("{checkpoint:?}") };
    assert!(bytes > 0 && bytes <= 50_000, "{bytes}");
    assert_eq!(Path::new(partial), partial_of(&target));
    assert!(partial_of(&target).exists());

    // a new agent process: a new executor, resuming from the journal's checkpoint
    let outcome = h
        .run(
            &Executor::new(config()).unwrap(),
            &step(download(&url, &target, Some(sha256_hex(&body)))),
            Some(&checkpoint),
        )
        .await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(&target).unwrap(), body);
    let log = server.requests_for("/fw");
    assert_eq!(log.len(), 2);
    assert_eq!(log[1].range, Some(format!("bytes={bytes}-")));
    assert_eq!(log[1].status, 206);
}

#[tokio::test]
async fn a_server_without_range_support_restarts_from_zero() {
    let server = TestServer::start().await;
    let body = content(80_000);
    let url = server.route("/fw", Route { body: body.clone(), ranges: false, faults: vec![Fault::StallAfter(40_000)] });
    let h = Harness::new();
    let target = h.path("fw");
    let checkpoint = interrupted_download(&h, &url, &target).await;
    let outcome = h.run(&executor(), &step(download(&url, &target, Some(sha256_hex(&body)))), Some(&checkpoint)).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(&target).unwrap(), body);
    let log = server.requests_for("/fw");
    assert_eq!(log.len(), 2);
    assert!(log[1].range.is_some());
    assert_eq!(log[1].status, 200);
}

#[tokio::test]
async fn a_resume_for_another_resource_starts_over() {
    let server = TestServer::start().await;
    let body = content(10_000);
    let url = server.route("/new", Route { body: body.clone(), ranges: true, ..Route::default() });
    let h = Harness::new();
    let target = h.path("f");
    std::fs::write(partial_of(&target), vec![0u8; 4000]).unwrap();
    let stale = StepCheckpoint::Download {
        url: server.url("/old"),
        partial: partial_of(&target).display().to_string(),
        bytes: 4000,
        total: None,
    };
    let outcome = h.run(&executor(), &step(download(&url, &target, Some(sha256_hex(&body)))), Some(&stale)).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(server.requests_for("/new")[0].range, None);
}

#[tokio::test]
async fn cancel_stops_a_download_and_removes_the_partial_file() {
    let server = TestServer::start().await;
    let url =
        server.route("/slow", Route { body: content(50_000), ranges: true, faults: vec![Fault::StallAfter(10_000)] });
    let h = Harness::new();
    let target = h.path("slow");
    let exec = executor();
    let s = step(download(&url, &target, None));
    let (outcome, ()) = tokio::join!(h.run(&exec, &s, None), h.cancel_after(Duration::from_millis(300)));
    assert_eq!(outcome, StepOutcome::Canceled);
    assert!(!partial_of(&target).exists());
    assert!(!target.exists());
}

#[tokio::test]
async fn https_downloads_trust_extra_root_certificates() {
    let ca = fleetjobs_pki::CertificateAuthority::generate().unwrap();
    let leaf = ca.issue_server_cert(&[]).unwrap();
    let server = TestServer::start_tls(&leaf.cert_pem, &leaf.private_key_pem).await;
    let body = content(30_000);
    let url = server.route("/fw", Route { body: body.clone(), ranges: true, ..Route::default() });
    assert!(url.starts_with("https://127.0.0.1:"));
    let h = Harness::new();
    let target = h.path("fw");

    let outcome = h.run(&executor(), &step(download(&url, &target, None)), None).await;
    let StepOutcome::Failed { reason, .. } = &outcome else { panic!("{outcome:?}") };
    assert!(reason.contains("certificate"), "{reason}");

    let ca_file = h.path("ca.pem");
    std::fs::write(&ca_file, ca.cert_pem()).unwrap();
    let mut cfg = config();
    cfg.download.extra_root_certificates = vec![ca_file];
    let outcome =
        h.run(&Executor::new(cfg).unwrap(), &step(download(&url, &target, Some(sha256_hex(&body)))), None).await;
    assert!(matches!(outcome, StepOutcome::Succeeded { .. }), "{outcome:?}");
    assert_eq!(std::fs::read(&target).unwrap(), body);
}

#[test]
fn a_bad_extra_root_certificate_is_a_construction_error() {
    let mut cfg = config();
    cfg.download.extra_root_certificates = vec!["/nonexistent/ca.pem".into()];
    assert!(matches!(Executor::new(cfg), Err(crate::executor::ExecutorError::RootCertificate { .. })));
}
