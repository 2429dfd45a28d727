//! `fleetjobs-sim`: the arguments, then `fleetjobs_sim::run`, then the summary and chart files.

use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{bail, Context, Result};
use clap::Parser;
use fleetjobs_sim::{Behaviour, Credentials, DeviceKeyType, JobSpec, ProgressMode, SimConfig};

/// Simulate a fleet of AWS IoT Jobs devices against a Fleetjobs server (or any AWS IoT Jobs
/// endpoint): provision N things in a thing group through the `iot` API, connect N mutual-TLS
/// MQTT devices that behave like AWS's jobs-example.js, optionally create a job on the group
/// and wait for every execution to finish. Exits 1 if not every device connected or not every
/// execution finished within --timeout-secs.
#[derive(Parser, Debug)]
#[command(name = "fleetjobs-sim", version)]
struct Args {
    /// The `iot` API endpoint.
    #[arg(long, default_value = "http://127.0.0.1:8080")]
    endpoint: String,
    /// The MQTT mutual-TLS listener, HOST:PORT.
    #[arg(long, default_value = "127.0.0.1:8883")]
    mqtt: String,
    /// A `fleetjobs serve` data directory: its `credentials` file (admin key) and
    /// `root-CA.crt`. Without it: the AWS environment variables or shared credentials file,
    /// and --ca-file.
    #[arg(long)]
    data_dir: Option<PathBuf>,
    /// The server's CA certificate (PEM); default DATA_DIR/root-CA.crt.
    #[arg(long)]
    ca_file: Option<PathBuf>,
    #[arg(long, default_value = "us-east-1")]
    region: String,
    /// How many devices.
    #[arg(long, default_value_t = 100)]
    things: usize,
    /// Names: things PREFIX-000000..., group PREFIX, policy PREFIX-policy.
    #[arg(long, default_value = "sim")]
    prefix: String,
    /// Milliseconds each job takes between IN_PROGRESS and the final update.
    #[arg(long, default_value_t = 0)]
    work_ms: u64,
    /// Share of jobs reported FAILED, 0..1.
    #[arg(long, default_value_t = 0.0)]
    fail_rate: f64,
    /// Share of jobs REJECTED instead of started, 0..1.
    #[arg(long, default_value_t = 0.0)]
    reject_rate: f64,
    /// Connection attempts per second (default: as fast as --connect-in-flight allows).
    #[arg(long)]
    connect_rate: Option<f64>,
    /// TLS handshakes in flight at once.
    #[arg(long, default_value_t = 256)]
    connect_in_flight: usize,
    /// Random connection drops per connected device per second (each device reconnects).
    #[arg(long, default_value_t = 0.0)]
    disconnect_rate: f64,
    /// Reconnect storm: this many ms after creating the job (without --create-job: after every
    /// device is connected, and the reconnect phase is measured) every device drops its
    /// connection at once and reconnects.
    #[arg(long)]
    storm_after_ms: Option<u64>,
    /// The shared device certificate's key: `server` (create-keys-and-certificate, whatever
    /// key type the server makes: RSA-2048 by default) or `ec-p256` (a P-256 key made here,
    /// certified through create-certificate-from-csr; a cheaper client signature per handshake).
    #[arg(long, default_value = "server")]
    key_type: String,
    /// TLS session resumption on reconnects: `on` (a device presents a ticket from an earlier
    /// connection) or `off` (every handshake a full one).
    #[arg(long, default_value = "on")]
    resumption: String,
    /// Create a job on the fleet's thing group once every device is connected, and wait until
    /// every execution is terminal.
    #[arg(long)]
    create_job: bool,
    /// The job's id (default PREFIX-job-UNIXTIME).
    #[arg(long)]
    job_id: Option<String>,
    /// The job document (JSON file); default {"operation":"fleetjobs-sim"}.
    #[arg(long)]
    document: Option<PathBuf>,
    /// Without --create-job: seconds to stay connected once every device is.
    #[arg(long, default_value_t = 0)]
    hold_secs: u64,
    /// Longest wait for every device to connect, and again for every execution to finish.
    #[arg(long, default_value_t = 600)]
    timeout_secs: u64,
    /// Concurrent API calls while provisioning.
    #[arg(long, default_value_t = 32)]
    api_concurrency: usize,
    /// Write the JSON summary here.
    #[arg(long)]
    summary: Option<PathBuf>,
    /// Write the SVG chart of executions by status over time here.
    #[arg(long)]
    chart: Option<PathBuf>,
    /// Progress display on stderr: auto (a live line on a terminal, plain lines otherwise),
    /// tty, plain or quiet.
    #[arg(long, default_value = "auto")]
    progress: String,
    /// The server's process id (same machine, Linux): report its CPU time per connect and per
    /// execution from /proc/PID/stat.
    #[arg(long)]
    server_pid: Option<u32>,
    /// When a device's update is rejected or it ignores a stale offer, print its recent
    /// messages (ms since start, direction, topic, job, status, version) to stderr.
    #[arg(long)]
    trace: bool,
}

fn rate(name: &str, v: f64) -> Result<f64> {
    if !(0.0..=1.0).contains(&v) {
        bail!("--{name} must be between 0 and 1, got {v}");
    }
    Ok(v)
}

fn config(args: &Args) -> Result<SimConfig> {
    let credentials = match &args.data_dir {
        Some(dir) => Credentials::from_file(&dir.join("credentials"), "default")
            .with_context(|| format!("no [default] credentials in {}", dir.join("credentials").display()))?,
        None => Credentials::from_environment()
            .context("no credentials: pass --data-dir or set AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY")?,
    };
    let ca_file = match (&args.ca_file, &args.data_dir) {
        (Some(f), _) => f.clone(),
        (None, Some(dir)) => dir.join("root-CA.crt"),
        (None, None) => bail!("pass --ca-file (the server's CA) or --data-dir"),
    };
    let root_ca_pem = std::fs::read(&ca_file).with_context(|| format!("reading {}", ca_file.display()))?;
    if rate("fail-rate", args.fail_rate)? + rate("reject-rate", args.reject_rate)? > 1.0 {
        bail!("--fail-rate plus --reject-rate must not exceed 1");
    }
    if args.disconnect_rate < 0.0 {
        bail!("--disconnect-rate must not be negative");
    }
    let job = if args.create_job {
        let document = match &args.document {
            Some(f) => std::fs::read_to_string(f).with_context(|| format!("reading {}", f.display()))?,
            None => r#"{"operation":"fleetjobs-sim"}"#.to_string(),
        };
        let job_id = match &args.job_id {
            Some(id) => id.clone(),
            None => format!("{}-job-{}", args.prefix, SystemTime::now().duration_since(UNIX_EPOCH)?.as_secs()),
        };
        Some(JobSpec { job_id, document })
    } else {
        None
    };
    let key_type = match args.key_type.as_str() {
        "server" => DeviceKeyType::Server,
        "ec-p256" => DeviceKeyType::EcP256,
        other => bail!("--key-type must be server or ec-p256, got {other}"),
    };
    let resumption = match args.resumption.as_str() {
        "on" => true,
        "off" => false,
        other => bail!("--resumption must be on or off, got {other}"),
    };
    let progress = match args.progress.as_str() {
        "auto" if std::io::stderr().is_terminal() => ProgressMode::Tty,
        "auto" | "plain" => ProgressMode::Plain,
        "tty" => ProgressMode::Tty,
        "quiet" => ProgressMode::Quiet,
        other => bail!("--progress must be auto, tty, plain or quiet, got {other}"),
    };
    Ok(SimConfig {
        endpoint: args.endpoint.clone(),
        mqtt: args.mqtt.clone(),
        region: args.region.clone(),
        credentials,
        root_ca_pem,
        things: args.things,
        prefix: args.prefix.clone(),
        behaviour: Behaviour {
            work: Duration::from_millis(args.work_ms),
            fail_rate: args.fail_rate,
            reject_rate: args.reject_rate,
            disconnect_rate: args.disconnect_rate,
        },
        connect_rate: args.connect_rate,
        connect_in_flight: args.connect_in_flight,
        api_concurrency: args.api_concurrency,
        key_type,
        resumption,
        job,
        storm_after: args.storm_after_ms.map(Duration::from_millis),
        hold: Duration::from_secs(args.hold_secs),
        timeout: Duration::from_secs(args.timeout_secs),
        progress,
        server_pid: args.server_pid,
        trace: args.trace,
    })
}

fn main() -> Result<ExitCode> {
    let args = Args::parse();
    let config = config(&args)?;
    let summary = tokio::runtime::Runtime::new()?.block_on(fleetjobs_sim::run(config))?;
    let json = serde_json::to_string_pretty(&summary)?;
    match &args.summary {
        Some(path) => std::fs::write(path, json + "\n").with_context(|| format!("writing {}", path.display()))?,
        None => println!("{json}"),
    }
    if let Some(path) = &args.chart {
        std::fs::write(path, summary.chart()).with_context(|| format!("writing {}", path.display()))?;
    }
    let complete = summary.connect.all_connected && summary.job.as_ref().is_none_or(|j| j.all_terminal);
    Ok(if complete { ExitCode::SUCCESS } else { ExitCode::FAILURE })
}
