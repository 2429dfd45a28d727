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

mod data_dir;
mod serve;
mod shutdown;

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Parser, Subcommand};
use fleetjobs::{device_plane, retained};

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
    /// Extra host names or IPs for the MQTT server certificate (localhost and 127.0.0.1 are
    /// always included). Repeatable.
    #[arg(long = "host")]
    pub hosts: Vec<String>,
    /// Region in ARNs and in the credentials file.
    #[arg(long, default_value = "us-east-1")]
    pub region: String,
    /// Account id in ARNs.
    #[arg(long, default_value = "123456789012")]
    pub account_id: String,
    /// MQTT connections served at once (TLS handshakes included); further ones are closed at
    /// accept. Keep it well under the process's file descriptor limit.
    #[arg(long, default_value_t = 10_000)]
    pub max_connections: usize,
}

fn main() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info".into()))
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    let runtime = tokio::runtime::Runtime::new()?;
    match cli.command {
        Command::Serve(args) => runtime.block_on(serve::run(args)),
    }
}
