//! The data directory against the real binary: one server per directory, nothing regenerated
//! over existing data, the server certificate kept, backup while serving and restore.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod support;

use std::path::Path;
use std::process::{Command, Output};

use serde_json::json;
use support::{temp_path, Device, Server};

fn fleetjobs(args: &[&str], data_dir: &Path) -> Output {
    Command::new(env!("CARGO_BIN_EXE_fleetjobs")).args(args).arg("--data-dir").arg(data_dir).output().unwrap()
}

/// `serve` on free ports that must refuse to start: its exit status and what it said.
fn refused_serve(data_dir: &Path) -> String {
    let out = fleetjobs(
        &["serve", "--http-listen", "127.0.0.1:0", "--mqtt-listen", "127.0.0.1:0", "--jobs-data-listen", "127.0.0.1:0"],
        data_dir,
    );
    assert!(!out.status.success(), "serve started on {}", data_dir.display());
    String::from_utf8_lossy(&out.stderr).into_owned()
}

async fn thing_exists(server: &Server, name: &str) -> bool {
    server.call("GET", &format!("/things/{name}"), "", None).await.0 == 200
}

#[tokio::test]
async fn a_second_server_on_one_data_dir_is_refused() {
    let server = Server::start();
    let said = refused_serve(&server.dir);
    assert!(said.contains("in use by another fleetjobs process"), "{said}");
    server.ok("POST", "/things/still-serving", "", Some(json!({}))).await;
}

#[tokio::test]
async fn missing_identity_files_are_refused_never_regenerated() {
    let mut server = Server::start();
    server.ok("POST", "/things/kept", "", Some(json!({}))).await;
    server.kill9();
    let dir = server.dir.clone();
    let ca = std::fs::read(dir.join("root-CA.crt")).unwrap();

    for name in ["root-CA.key", "secret.key"] {
        let aside = dir.join(format!("{name}.aside"));
        std::fs::rename(dir.join(name), &aside).unwrap();
        let said = refused_serve(&dir);
        assert!(said.contains(&format!("but not {name}")), "{said}");
        assert!(!dir.join(name).exists(), "{name} was regenerated");
        std::fs::rename(&aside, dir.join(name)).unwrap();
    }

    // The reverse: a CA and keys, and a database lost (gone, or there but empty).
    let db_aside = temp_path("db-aside");
    std::fs::create_dir_all(&db_aside).unwrap();
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("fleetjobs.db{suffix}");
        if dir.join(&name).exists() {
            std::fs::rename(dir.join(&name), db_aside.join(&name)).unwrap();
        }
    }
    let said = refused_serve(&dir);
    assert!(said.contains("but not fleetjobs.db"), "{said}");
    drop(fleetjobs_store::SqliteStore::open(&dir.join("fleetjobs.db")).unwrap());
    let said = refused_serve(&dir);
    assert!(said.contains("holds no records"), "{said}");
    for suffix in ["", "-wal", "-shm"] {
        let name = format!("fleetjobs.db{suffix}");
        let _ = std::fs::remove_file(dir.join(&name));
        if db_aside.join(&name).exists() {
            std::fs::rename(db_aside.join(&name), dir.join(&name)).unwrap();
        }
    }
    assert_eq!(std::fs::read(dir.join("root-CA.crt")).unwrap(), ca, "the CA was never replaced");

    let server = Server::start_in(dir);
    assert!(thing_exists(&server, "kept").await);
}

#[tokio::test]
async fn the_server_certificate_is_kept_across_restarts() {
    let mut server = Server::start();
    let before = std::fs::read(server.dir.join("server.crt")).unwrap();
    server.kill9_and_restart();
    assert_eq!(std::fs::read(server.dir.join("server.crt")).unwrap(), before, "rewritten at start");
    server.kill9();

    // A new --host needs a certificate that names it.
    let mut child = Command::new(env!("CARGO_BIN_EXE_fleetjobs"))
        .args([
            "serve",
            "--http-listen",
            "127.0.0.1:0",
            "--mqtt-listen",
            "127.0.0.1:0",
            "--jobs-data-listen",
            "127.0.0.1:0",
            "--host",
            "mqtt.example.com",
        ])
        .arg("--data-dir")
        .arg(&server.dir)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let deadline = std::time::Instant::now() + support::TIMEOUT;
    let renewed = loop {
        let now = std::fs::read(server.dir.join("server.crt")).unwrap();
        if now != before {
            break now;
        }
        assert!(std::time::Instant::now() < deadline, "server.crt was not reissued for a new host");
        std::thread::sleep(std::time::Duration::from_millis(50));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    let text = String::from_utf8(renewed).unwrap();
    assert!(text.contains("BEGIN CERTIFICATE"));
}

#[tokio::test]
async fn backup_while_serving_and_restore() {
    let mut server = Server::start();
    server.ok("POST", "/things/before-backup", "", Some(json!({}))).await;
    let policy = json!({"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": "iot:Connect", "Resource": "arn:aws:iot:*:*:client/*"},
        {"Effect": "Allow", "Action": ["iot:Publish", "iot:RetainPublish", "iot:Receive"], "Resource": "arn:aws:iot:*:*:topic/status/*"},
        {"Effect": "Allow", "Action": "iot:Subscribe", "Resource": "arn:aws:iot:*:*:topicfilter/status/*"}
    ]});
    let id = server.device_identity("sensor", &policy).await;
    let mut device = Device::connect(&server, &id, "sensor").await.unwrap();
    device.publish_retained("status/sensor", b"up").await;
    let dest = temp_path("backup");
    let out = fleetjobs(&["backup", dest.to_str().unwrap()], &server.dir);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    server.ok("POST", "/things/after-backup", "", Some(json!({}))).await;
    server.kill9();

    let restored = temp_path("restored");
    let restore = || fleetjobs(&["restore", dest.to_str().unwrap()], &restored);
    let out = restore();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let again = restore();
    assert!(!again.status.success(), "restore over an existing database");

    let server = Server::start_in(restored);
    assert!(thing_exists(&server, "before-backup").await, "the backup holds what was acknowledged before it");
    assert!(!thing_exists(&server, "after-backup").await);
    let mut device = Device::connect(&server, &id, "sensor").await.expect("same CA, same certificate");
    assert_eq!(device.subscribe("status/+").await, 1);
    let retained = device.publishes_before_ping().await;
    assert_eq!(retained, vec![("status/sensor".into(), b"up".to_vec(), true)], "retained messages are backed up");
}
