//! `GET /metrics`: the Prometheus text exposition of the process's counters and histograms
//! (recorded through the `metrics` facade by the broker, the store and the API), plus gauges
//! read from the engine and the broker at each scrape.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use fleetjobs_core::model::JobExecutionStatus;
use fleetjobs_engine::{Engine, JOB_STATUSES};
use fleetjobs_mqtt::Broker;
use metrics::gauge;
use metrics_exporter_prometheus::{Matcher, PrometheusBuilder, PrometheusHandle};

use crate::device_plane::Hooks;

/// Latency buckets (seconds): from a cached read to a slow fsync.
const SECONDS: &[f64] = &[0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0];
/// Batches per transaction: up to the store's group bound.
const BATCHES: &[f64] = &[1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0, 256.0, 512.0, 1024.0];
/// Histograms keep their samples until upkeep folds them into the buckets: this bounds them.
const UPKEEP_EVERY: Duration = Duration::from_secs(5);

/// Install the process-wide recorder. Call it before the store, the broker or the API start,
/// so that the handles they register are the recorder's, and from inside the runtime (it
/// spawns the upkeep task).
pub fn install() -> Result<PrometheusHandle> {
    let handle = PrometheusBuilder::new()
        .set_buckets(SECONDS)
        .context("histogram buckets")?
        .set_buckets_for_metric(Matcher::Full("fleetjobs_store_commit_batches".into()), BATCHES)
        .context("histogram buckets")?
        .install_recorder()
        .context("installing the metrics recorder")?;
    describe();
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP_EVERY);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}

fn describe() {
    use metrics::{describe_gauge, describe_histogram, Unit};
    describe_histogram!(
        "fleetjobs_api_request_duration_seconds",
        Unit::Seconds,
        "HTTP API requests by operation and listener, from the request to the answer"
    );
    metrics::describe_counter!("fleetjobs_api_errors_total", "HTTP API error answers by operation and AWS error code");
    describe_gauge!("fleetjobs_mqtt_connections", "live MQTT connections that completed CONNECT");
    describe_gauge!("fleetjobs_things", "things in the registry");
    describe_gauge!("fleetjobs_jobs", "jobs by status");
    describe_gauge!("fleetjobs_job_executions", "job executions of all jobs by status");
    describe_gauge!("fleetjobs_rollouts_in_progress", "jobs whose rollout still has things waiting");
    describe_gauge!("fleetjobs_rollout_pending_things", "things still waiting for an execution in those rollouts");
}

#[derive(Clone)]
struct Scrape {
    handle: PrometheusHandle,
    engine: Arc<Engine>,
    broker: Arc<Broker<Hooks>>,
}

/// The `/metrics` route, to merge into the HTTP API's router.
pub fn router(handle: PrometheusHandle, engine: Arc<Engine>, broker: Arc<Broker<Hooks>>) -> Router {
    Router::new().route("/metrics", get(scrape)).with_state(Scrape { handle, engine, broker })
}

async fn scrape(State(s): State<Scrape>) -> impl IntoResponse {
    gauge!("fleetjobs_mqtt_connections").set(s.broker.connection_count() as f64);
    // A store that failed reloads on the next write; until then the gauges keep their values.
    if let Ok(stats) = s.engine.fleet_stats() {
        gauge!("fleetjobs_things").set(stats.things as f64);
        for (status, n) in JOB_STATUSES.iter().zip(stats.jobs) {
            gauge!("fleetjobs_jobs", "status" => status.as_str()).set(n as f64);
        }
        for status in JobExecutionStatus::ALL {
            gauge!("fleetjobs_job_executions", "status" => status.as_str()).set(stats.executions.get(status) as f64);
        }
        gauge!("fleetjobs_rollouts_in_progress").set(stats.rollouts_in_progress as f64);
        gauge!("fleetjobs_rollout_pending_things").set(stats.rollout_pending_things as f64);
    }
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], s.handle.render())
}
