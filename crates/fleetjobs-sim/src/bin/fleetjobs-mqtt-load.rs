//! `fleetjobs-mqtt-load`: the arguments, then `fleetjobs_sim::load`, then its report as JSON.

use std::io::BufRead;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Parser;
use fleetjobs_sim::load::{prepare, LoadConfig};

/// MQTT 3.1.1 QoS 1 load over mutual TLS against any broker: P publishers → S subscribers on
/// one topic (fan-in: -p 10 -s 1; fan-out: -p 1 -s 100), at an offered total rate or closed
/// loop, for a duration; prints one JSON report (sent, PUBACKed, delivered, msgs/s, latency
/// p50/p99 from the send time in the payload, its own CPU time and the broker's).
#[derive(Parser, Debug)]
#[command(name = "fleetjobs-mqtt-load", version)]
struct Args {
    /// The broker's MQTT mutual-TLS listener, HOST:PORT (HOST is the TLS server name).
    #[arg(long, default_value = "localhost:8883")]
    mqtt: String,
    /// The CA certificate (PEM) the broker's certificate is verified with.
    #[arg(long)]
    ca_file: PathBuf,
    /// The client certificate (PEM) every client presents.
    #[arg(long)]
    cert_file: PathBuf,
    /// Its private key (PEM).
    #[arg(long)]
    key_file: PathBuf,
    #[arg(long, default_value = "bench/qos1")]
    topic: String,
    /// Client ids: PREFIX-pN (publishers), PREFIX-sN (subscribers).
    #[arg(long, default_value = "load")]
    client_prefix: String,
    #[arg(short, long, default_value_t = 10)]
    publishers: usize,
    #[arg(short, long, default_value_t = 1)]
    subscribers: usize,
    /// Total PUBLISHes per second over all publishers; without it, closed loop.
    #[arg(long)]
    rate: Option<f64>,
    /// Unacknowledged QoS 1 PUBLISHes per publisher at most.
    #[arg(long, default_value_t = 20)]
    window: u64,
    /// Seconds of publishing.
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Payload bytes (the first 8 are the send time).
    #[arg(long, default_value_t = 64)]
    payload: usize,
    /// The broker's process id, to report its CPU time over the run (same machine only).
    #[arg(long)]
    server_pid: Option<u32>,
    /// After connecting, print `ready` on stderr and start only once a line arrives on stdin
    /// (so a caller can start measuring or profiling the broker after the connects).
    #[arg(long)]
    wait_for_start: bool,
    /// Worker threads (default: one per core).
    #[arg(long)]
    threads: Option<usize>,
}

fn main() -> Result<()> {
    let args = Args::parse();
    let read = |p: &PathBuf| std::fs::read(p).with_context(|| format!("reading {}", p.display()));
    let config = LoadConfig {
        addr: args.mqtt.clone(),
        root_ca_pem: read(&args.ca_file)?,
        cert_pem: String::from_utf8(read(&args.cert_file)?).context("the certificate is not text")?,
        key_pem: String::from_utf8(read(&args.key_file)?).context("the key is not text")?,
        topic: args.topic.clone(),
        client_prefix: args.client_prefix.clone(),
        publishers: args.publishers,
        subscribers: args.subscribers,
        rate: args.rate,
        window: args.window,
        duration: Duration::try_from_secs_f64(args.duration).context("--duration")?,
        payload: args.payload,
        server_pid: args.server_pid,
    };
    let mut runtime = tokio::runtime::Builder::new_multi_thread();
    if let Some(n) = args.threads {
        runtime.worker_threads(n.max(1));
    }
    let runtime = runtime.enable_all().build()?;
    let report = runtime.block_on(async {
        let prepared = prepare(config).await?;
        if args.wait_for_start {
            eprintln!("ready");
            tokio::task::spawn_blocking(|| std::io::stdin().lock().read_line(&mut String::new())).await??;
        }
        anyhow::Ok(prepared.run().await?)
    })?;
    println!("{}", serde_json::to_string(&report)?);
    Ok(())
}
