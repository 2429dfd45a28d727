//! `fleetjobs`: the server binary. A thin layer over the crates: parse the command line,
//! prepare the data directory, wire the engine to the broker and the HTTP API, and shut
//! down cleanly.
//!
//! - `data_dir`: first-start files (CA, server certificate, secret key, credentials).
//! - `device_plane`: the broker hooks that connect MQTT to the engine. It lives in the
//!   package's library target (`src/lib.rs`, crate `fleetjobs`) so that benchmarks can serve
//!   MQTT sessions with the real hooks in-process; the binary uses it from there.
//! - `retained`: retained MQTT messages on disk (`DATA_DIR/retained/`), also in the library.
//! - `serve`: builds and runs everything; `shutdown`: the stop signal.
//! - `priority`: the higher scheduling priority of the HTTP runtime's and the store writer's
//!   threads.
//! - `metrics`: `GET /metrics`, the Prometheus exposition.
//! - `preview`: `rollout-preview`, a job's rollout timeline from its configs, offline.

mod data_dir;
mod metrics;
mod preview;
mod priority;
mod s3;
mod serve;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{SystemTime, UNIX_EPOCH};

use clap::{Parser, Subcommand};
use fleetjobs::{device_plane, retained};

/// mimalloc rather than glibc's malloc: the server allocates and frees small buffers per packet
/// and per request on many threads, where glibc's arenas cost about an eighth of the jobs
/// phase's instructions (docs/PERFORMANCE.md, "mimalloc, and CreateJob in chunks").
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

#[derive(Parser)]
#[command(
    name = "fleetjobs",
    version,
    about = "Self-hosted AWS IoT Jobs: control plane, MQTT device plane, jobs engine"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the server (embedded store and MQTT broker).
    Serve(ServeArgs),
    /// Copy a data directory consistently into DEST, also while a server serves it. Copying
    /// fleetjobs.db by hand is not a backup: recent changes may still be in fleetjobs.db-wal.
    Backup {
        /// The data directory to copy.
        #[arg(long, default_value = "./fleetjobs-data")]
        data_dir: PathBuf,
        /// A new (or empty) directory for the copy.
        dest: PathBuf,
    },
    /// Make a backup the data directory of the next `serve` (stop the server first; an
    /// existing database is never overwritten: move it away first).
    Restore {
        /// A directory made by `fleetjobs backup`.
        backup: PathBuf,
        /// The data directory to restore into.
        #[arg(long, default_value = "./fleetjobs-data")]
        data_dir: PathBuf,
    },
    /// Print a job's rollout timeline from its create-job configs, offline, before creating it.
    ///
    /// The batches of executions (time, count, rate, maintenance window) and when the last is
    /// created or what stops the rollout, from the configs `aws iot create-job` would send.
    /// Configs create-job would refuse are refused with its message (exit code 2).
    RolloutPreview(preview::PreviewArgs),
}

#[derive(clap::Args, Debug, Clone)]
pub struct ServeArgs {
    /// Where the database, CA, keys and credentials live.
    #[arg(long, default_value = "./fleetjobs-data")]
    pub data_dir: PathBuf,
    /// The AWS `iot` HTTP API (use with `aws --endpoint-url`).
    #[arg(long, default_value = "127.0.0.1:8080")]
    pub http_listen: SocketAddr,
    /// MQTT over mutual TLS.
    #[arg(long, default_value = "0.0.0.0:8883")]
    pub mqtt_listen: SocketAddr,
    /// The `iot-jobs-data` HTTPS API for devices, over mutual TLS (their certificates).
    #[arg(long, default_value = "0.0.0.0:8443")]
    pub jobs_data_listen: SocketAddr,
    /// Extra host names or IPs for the MQTT server certificate (localhost and 127.0.0.1 are
    /// always included). Repeatable.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// The key pair `create-keys-and-certificate` generates: rsa-2048 (as AWS IoT: PKCS#1
    /// private key, tenths of a second each) or ec-p256 (PKCS#8, microseconds).
    #[arg(long, default_value_t = fleetjobs_pki::DeviceKeyType::Rsa2048, value_name = "rsa-2048|ec-p256")]
    pub device_key_type: fleetjobs_pki::DeviceKeyType,
    /// Region in ARNs and in the credentials file.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    pub account_id: String,
    /// Seconds an HTTP client has to send a request's headers, from connecting or from the
    /// previous response (so also how long an idle keep-alive connection stays open).
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_header_timeout: u64,
    /// Seconds an HTTP client has to send a request's body once its headers are accepted.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_body_timeout: u64,
    /// Seconds an HTTP client may leave a response unread before it is disconnected.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u64).range(1..))]
    pub http_write_timeout: u64,
    /// Concurrent HTTP connections; one more is closed at once.
    #[arg(long, default_value_t = 1024, value_parser = clap::value_parser!(u32).range(1..))]
    pub http_max_connections: u32,
    /// MQTT connections served at once (TLS handshakes included); further ones are closed at
    /// accept. Keep it well under the process's file descriptor limit.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
    /// The S3-compatible store that `documentSource` S3 URLs and presigned-URL placeholders
    /// resolve to (path-style, e.g. http://127.0.0.1:9000); default AWS's regional S3.
    /// Credentials come from the usual AWS environment variables or shared credentials file.
    #[arg(long, value_name = "URL")]
    pub s3_endpoint: Option<String>,
    /// Threads of the HTTP listener's own runtime (API, console, /metrics), apart from the
    /// device plane's, so that API calls do not queue behind device work.
    #[arg(long, default_value_t = 2, value_parser = clap::value_parser!(u16).range(1..=64))]
    pub http_worker_threads: u16,
    /// Nice value of the HTTP runtime's threads and of the store's writer thread (device work
    /// stays at the process's). Below 0 needs CAP_SYS_NICE (or root); without it the server
    /// warns once and runs them at the default priority. 0: do not change it.
    #[arg(long, default_value_t = -10, allow_negative_numbers = true,
          value_parser = clap::value_parser!(i32).range(-20..=0))]
    pub control_plane_nice: i32,
}

fn main() -> anyhow::Result<ExitCode> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        Command::Serve(args) => serve::run(args).map(|()| ExitCode::SUCCESS),
        Command::Backup { data_dir, dest } => {
            data_dir::backup(&data_dir, &dest)?;
            println!("backed up {} to {}", data_dir.display(), dest.display());
            Ok(ExitCode::SUCCESS)
        }
        Command::Restore { backup, data_dir } => {
            data_dir::restore(&backup, &data_dir)?;
            println!(
                "restored {} into {}; start it with: fleetjobs serve --data-dir {}",
                backup.display(),
                data_dir.display(),
                data_dir.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        Command::RolloutPreview(args) => {
            // The verb's one clock read; everything after it is a function of the arguments.
            let now = SystemTime::now().duration_since(UNIX_EPOCH)?.as_millis();
            Ok(preview::run(&args, i64::try_from(now)?))
        }
    }
}
