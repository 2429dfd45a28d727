//! `fleetjobs-agent`: command line. Runs the agent (default), or `status`, `keygen`, `sign`.

use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{bail, Context, Result};
use clap::{Args, Parser, Subcommand};

use fleetjobs_agent::config::{CommandLine, MqttVersion, Settings};
use fleetjobs_agent::executor::{Executor, ExecutorConfig};
use fleetjobs_agent::signature::{self, TrustStore};
use fleetjobs_agent::{agent, status};

/// The Fleetjobs device agent: runs AWS IoT Jobs on this device, durably (Fleetjobs or AWS IoT).
///
/// Connection flags are those of the AWS IoT Device SDK (JS) samples:
/// `fleetjobs-agent -f ./certs -H localhost -p 8883 -T MyRaspberryPi`.
#[derive(Parser, Debug)]
#[command(version, about, args_conflicts_with_subcommands = false)]
struct Cli {
    #[command(flatten)]
    settings: SettingsArgs,
    #[command(subcommand)]
    command: Option<Command>,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Print what the agent is doing: current job, step i/n, pending updates, journal.
    Status {
        /// Print the raw report as JSON.
        #[arg(long)]
        json: bool,
    },
    /// Make an ed25519 key pair for signing job documents: KEY_ID.key (private) and
    /// KEY_ID.pub (put it in the devices' --trusted-keys directory).
    Keygen {
        #[arg(long, default_value = "fleetjobs")]
        key_id: String,
        /// Directory to write the two files into.
        #[arg(long, default_value = ".")]
        out: PathBuf,
    },
    /// Sign a job document file with a private key (prints the signed document).
    Sign {
        /// Private key file (from `keygen`, or an ed25519 PKCS#8 PEM).
        #[arg(long)]
        key: PathBuf,
        /// Key id recorded in the signature (default: the key file's name without extension).
        #[arg(long)]
        key_id: Option<String>,
        /// Write here instead of standard output.
        #[arg(short, long)]
        output: Option<PathBuf>,
        /// The job document (JSON).
        document: PathBuf,
    },
}

#[derive(Args, Debug, Default)]
struct SettingsArgs {
    /// JSON config file with the same settings (flags given here win).
    #[arg(short = 'F', long = "config", global = true)]
    config: Option<PathBuf>,
    /// Directory with certificate.pem.crt, private.pem.key and root-CA.crt.
    #[arg(short = 'f', long = "certificate-dir", global = true)]
    cert_dir: Option<PathBuf>,
    /// Device certificate (default certificate.pem.crt, inside -f when given).
    #[arg(short = 'c', long = "client-certificate")]
    cert: Option<PathBuf>,
    /// Device private key (default private.pem.key, inside -f when given).
    #[arg(short = 'k', long = "private-key")]
    key: Option<PathBuf>,
    /// CA of the server certificate (default root-CA.crt, inside -f when given).
    #[arg(short = 'a', long = "ca-certificate")]
    root_ca: Option<PathBuf>,
    /// MQTT endpoint (Fleetjobs host, or your AWS IoT `…-ats.iot.REGION.amazonaws.com`).
    #[arg(short = 'H', long = "host-name")]
    endpoint: Option<String>,
    /// MQTT port (default 8883).
    #[arg(short = 'p', long)]
    port: Option<u16>,
    /// The thing whose jobs this agent runs.
    #[arg(short = 'T', long = "thing-name")]
    thing_name: Option<String>,
    /// MQTT client id (default: the thing name; keep it stable for the persistent session).
    #[arg(short = 'i', long = "client-id")]
    client_id: Option<String>,
    /// Directory of handler executables (`operation` → `<dir>/<operation>`).
    #[arg(long)]
    handler_dir: Option<PathBuf>,
    /// Journal and downloads (default ./fleetjobs-agent-state, /var/lib/fleetjobs-agent as root).
    #[arg(long, global = true)]
    state_dir: Option<PathBuf>,
    /// Default step timeout (e.g. 30m; a document's own timeout wins).
    #[arg(long)]
    step_timeout: Option<String>,
    /// REJECT job documents that are not signed by a trusted key.
    #[arg(long)]
    require_signed: bool,
    /// Directory of trusted public keys (KEY_ID.pub / KEY_ID.pem).
    #[arg(long)]
    trusted_keys: Option<PathBuf>,
    /// File holding the kernel boot id (default /proc/sys/kernel/random/boot_id).
    #[arg(long)]
    boot_id_file: Option<PathBuf>,
    /// Command that reboots the device (default "/sbin/shutdown -r now").
    #[arg(long)]
    reboot_command: Option<String>,
    /// Command that shuts the device down (default "/sbin/shutdown -h now").
    #[arg(long)]
    shutdown_command: Option<String>,
    /// `$next/get` period, jittered ±20 % (default 5m).
    #[arg(long)]
    poll_interval: Option<String>,
    /// Least time between two progress updates (default 5s).
    #[arg(long)]
    progress_interval: Option<String>,
    /// How long to wait for each MQTT request's answer (default 10s).
    #[arg(long)]
    request_timeout: Option<String>,
    /// Upper bound of the reconnect backoff (default 60s).
    #[arg(long)]
    reconnect_max: Option<String>,
    /// Extra CA certificate (PEM) trusted for HTTPS downloads, besides the web PKI roots.
    #[arg(long)]
    download_ca: Vec<PathBuf>,
    /// auto (5, then 3.1.1), 5 or 3.1.1.
    #[arg(long)]
    mqtt_version: Option<MqttVersion>,
}

impl SettingsArgs {
    fn settings(self) -> Result<Settings> {
        let file = match &self.config {
            Some(path) => Settings::from_file(path)?,
            None => Settings::default(),
        };
        let flags = Settings {
            endpoint: self.endpoint,
            port: self.port,
            cert_dir: self.cert_dir,
            cert: self.cert,
            key: self.key,
            root_ca: self.root_ca,
            thing_name: self.thing_name,
            client_id: self.client_id,
            handler_dir: self.handler_dir,
            state_dir: self.state_dir,
            step_timeout: self.step_timeout,
            require_signed: self.require_signed.then_some(true),
            trusted_keys: self.trusted_keys,
            boot_id_file: self.boot_id_file,
            reboot_command: self.reboot_command.map(CommandLine::Line),
            shutdown_command: self.shutdown_command.map(CommandLine::Line),
            poll_interval: self.poll_interval,
            progress_interval: self.progress_interval,
            request_timeout: self.request_timeout,
            keep_alive: None,
            reconnect_max: self.reconnect_max,
            mqtt_version: self.mqtt_version,
        };
        Ok(file.overlay(flags))
    }
}

fn main() -> Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "info,rumqttc=warn".into()),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let cli = Cli::parse();
    match cli.command {
        None => run_agent(cli.settings),
        Some(Command::Status { json }) => show_status(cli.settings, json),
        Some(Command::Keygen { key_id, out }) => keygen(&key_id, &out),
        Some(Command::Sign { key, key_id, output, document }) => sign(&key, key_id, output.as_deref(), &document),
    }
}

fn run_agent(args: SettingsArgs) -> Result<()> {
    let download_ca = args.download_ca.clone();
    let cfg = args.settings()?.resolve()?;
    let trust = match &cfg.trusted_keys {
        Some(dir) => {
            let store =
                TrustStore::from_dir(dir).with_context(|| format!("loading trusted keys from {}", dir.display()))?;
            if cfg.require_signed && store.is_empty() {
                bail!("--require-signed but no key in {}", dir.display());
            }
            Some(store)
        }
        None => None,
    };
    let mut executor_config = ExecutorConfig::default();
    executor_config.download.extra_root_certificates = download_ca;
    let runner = Arc::new(Executor::new(executor_config)?);
    let rt = tokio::runtime::Builder::new_multi_thread().worker_threads(2).enable_all().build()?;
    rt.block_on(agent::run(cfg, runner, trust, shutdown_signal()))?;
    Ok(())
}

async fn shutdown_signal() {
    use tokio::signal::unix::{signal, SignalKind};
    let (Ok(mut term), Ok(mut int)) = (signal(SignalKind::terminate()), signal(SignalKind::interrupt())) else {
        return std::future::pending().await;
    };
    tokio::select! {
        _ = term.recv() => {}
        _ = int.recv() => {}
    }
}

/// The state directory `status` reads: --state-dir, or the config file's, or the default.
fn status_dir(args: &SettingsArgs) -> Result<PathBuf> {
    if let Some(dir) = &args.state_dir {
        return Ok(dir.clone());
    }
    if let Some(path) = &args.config {
        if let Some(dir) = Settings::from_file(path)?.state_dir {
            return Ok(dir);
        }
    }
    Ok(fleetjobs_agent::config::default_state_dir(fleetjobs_agent::config::running_as_root()))
}

fn show_status(args: SettingsArgs, json: bool) -> Result<()> {
    let report = status::collect(&status_dir(&args)?)?;
    if json {
        println!("{}", serde_json::to_string_pretty(&report)?);
    } else {
        print!("{}", status::render(&report));
    }
    Ok(())
}

fn keygen(key_id: &str, out: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let (private, public) = signature::generate_keypair();
    std::fs::create_dir_all(out)?;
    let private_path = out.join(format!("{key_id}.key"));
    let public_path = out.join(format!("{key_id}.pub"));
    let mut f = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(&private_path)
        .with_context(|| format!("creating {}", private_path.display()))?;
    writeln!(f, "{private}")?;
    std::fs::write(&public_path, format!("{public}\n"))?;
    println!("private key: {} (keep it secret)", private_path.display());
    println!("public key:  {} (copy it into the devices' --trusted-keys directory)", public_path.display());
    Ok(())
}

fn sign(key: &Path, key_id: Option<String>, output: Option<&Path>, document: &Path) -> Result<()> {
    let key_text = std::fs::read_to_string(key).with_context(|| format!("reading {}", key.display()))?;
    let key_id = match key_id {
        Some(id) => id,
        None => key.file_stem().and_then(|s| s.to_str()).context("cannot derive a key id; pass --key-id")?.to_owned(),
    };
    let text = std::fs::read_to_string(document).with_context(|| format!("reading {}", document.display()))?;
    let doc: serde_json::Value =
        serde_json::from_str(&text).with_context(|| format!("{} is not JSON", document.display()))?;
    let signed = signature::sign_document(&doc, &key_id, &key_text)?;
    let out = serde_json::to_string(&signed)?;
    match output {
        Some(path) => std::fs::write(path, out + "\n")?,
        None => println!("{out}"),
    }
    Ok(())
}
