//! Job execution updates per second through the engine's Jobs MQTT API, durable in SQLite
//! (WAL, synchronous=FULL, group commit). N devices each run `start-next` then
//! `update SUCCEEDED` for their jobs, all concurrently.
//!
//! `cargo bench -p fleetjobs-engine --bench execution_updates -- [devices] [jobs_per_device]`

// Test and benchmark code: a panic is the failure report.
#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Instant;

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::ops::jobs::CreateJobRequest;
use fleetjobs_core::ops::things::CreateThingRequest;
use fleetjobs_engine::{system_clock, Engine, EngineConfig};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::SqliteStore;

#[tokio::main(flavor = "multi_thread")]
async fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let devices = args.first().copied().unwrap_or(2000);
    let jobs = args.get(1).copied().unwrap_or(3);
    let dir = std::env::temp_dir().join(format!("fleetjobs-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let store = Arc::new(SqliteStore::open(&dir.join("bench.db")).unwrap());
    let config = EngineConfig {
        scope: ArnScope::new("us-east-1", "123456789012"),
        mqtt_endpoint: "localhost".into(),
        jobs_endpoint: "localhost:8443".into(),
        http_endpoint: "http://localhost".into(),
    };
    let ca = Arc::new(CertificateAuthority::generate().unwrap());
    let (engine, mut outbox) = Engine::open(config, store, ca, [1; 32], system_clock()).unwrap();
    tokio::spawn(async move { while outbox.recv().await.is_some() {} });

    for d in 0..devices {
        engine.create_thing(CreateThingRequest { thing_name: format!("dev-{d}"), ..Default::default() }).await.unwrap();
    }
    for j in 0..jobs {
        for chunk in (0..devices).collect::<Vec<_>>().chunks(100) {
            let targets: Vec<String> = chunk.iter().map(|d| format!("arn:aws:iot:::thing/dev-{d}")).collect();
            let id = format!("job-{j}-{}", chunk[0]);
            let document = Some("{\"op\":\"x\"}".to_string());
            engine.create_job(CreateJobRequest { job_id: id, targets, document, ..Default::default() }).await.unwrap();
        }
    }

    let start = Instant::now();
    let mut tasks = Vec::new();
    for d in 0..devices {
        let engine = engine.clone();
        tasks.push(tokio::spawn(async move {
            let thing = format!("dev-{d}");
            for _ in 0..jobs {
                let r =
                    engine.handle_jobs_request(&format!("$aws/things/{thing}/jobs/start-next"), b"{}").await.unwrap();
                let v: serde_json::Value = serde_json::from_slice(&r[0].1).unwrap();
                let job = v["execution"]["jobId"].as_str().expect("a queued job").to_string();
                let r = engine
                    .handle_jobs_request(
                        &format!("$aws/things/{thing}/jobs/{job}/update"),
                        br#"{"status":"SUCCEEDED"}"#,
                    )
                    .await
                    .unwrap();
                assert!(r[0].0.ends_with("/accepted"));
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let secs = start.elapsed().as_secs_f64();
    let updates = devices * jobs * 2;
    println!(
        "execution_updates: devices={devices} jobs_per_device={jobs} durable_updates={updates} seconds={secs:.2} updates_per_sec={:.0}",
        updates as f64 / secs
    );
    let _ = std::fs::remove_dir_all(&dir);
}
