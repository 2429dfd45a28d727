//! `fleetjobs serve`: build the engine over the store, the broker over the engine, the HTTP
//! API beside it, and run until a stop signal.
//!
//! Two Tokio runtimes: the device plane (MQTT, `iot-jobs-data`, the outbox pump, timers) on
//! the default one, and the HTTP listener (API, console, `/metrics`) on a small one of its
//! own whose threads, like the store's writer thread, run at a higher priority
//! ([`crate::priority`]). With one runtime an API call queued behind the tasks of thousands of
//! devices: describe-job's p99 was 0.6 s at 10,000 working devices (docs/PERFORMANCE.md).
//! Engine calls work from either runtime: its locks and durability waits are Tokio sync
//! primitives, which do not belong to a runtime.

use std::sync::Arc;
use std::time::Duration;

use anyhow::{Context, Result};
use fleetjobs_core::arn::ArnScope;
use fleetjobs_engine::{system_clock, Engine, EngineConfig};
use fleetjobs_mqtt::{Broker, BrokerConfig};
use fleetjobs_store::SqliteStore;
use tokio::net::TcpListener;
use tokio::runtime::Handle;

use crate::data_dir::{DataDir, DATABASE};
use crate::device_plane::{pump, Hooks};
use crate::priority::ControlPlanePriority;
use crate::retained::RetainedFiles;
use crate::{shutdown, ServeArgs};

/// How long the control plane's runtime may take to end its last tasks once the server has
/// stopped (they are done by then: the HTTP listener waited for its connections).
const CONTROL_PLANE_SHUTDOWN: Duration = Duration::from_secs(5);

/// Build both runtimes and serve until a stop signal.
pub fn run(args: ServeArgs) -> Result<()> {
    let priority = ControlPlanePriority::new(args.control_plane_nice);
    let on_start = priority.clone();
    let control_plane = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(usize::from(args.http_worker_threads))
        .thread_name("http-worker")
        .on_thread_start(move || on_start.apply_to_current_thread())
        .enable_all()
        .build()
        .context("starting the HTTP runtime")?;
    let devices = tokio::runtime::Builder::new_multi_thread()
        .thread_name("device-worker")
        .enable_all()
        .build()
        .context("starting the device runtime")?;
    let served = devices.block_on(serve(args, priority, control_plane.handle().clone()));
    // Outside any runtime: a runtime may not be dropped from within one.
    drop(devices);
    control_plane.shutdown_timeout(CONTROL_PLANE_SHUTDOWN);
    served
}

async fn serve(args: ServeArgs, priority: ControlPlanePriority, control_plane: Handle) -> Result<()> {
    let dir = DataDir::open(&args.data_dir)?;
    // Before the store and the broker: they register their counters at start.
    let metrics = crate::metrics::install()?;
    raise_open_files_limit();
    let store = Arc::new(
        SqliteStore::open_with_writer_start(&dir.path(DATABASE), move || priority.apply_to_current_thread())
            .context("opening the database")?,
    );
    dir.check_database(store.is_empty().context("reading the database")?)?;
    let ca = Arc::new(dir.certificate_authority()?.with_device_key_type(args.device_key_type));
    let server_cert = dir.server_cert(&ca, &args.hosts)?;
    // The same server certificate and client-certificate verification for MQTT and for the
    // `iot-jobs-data` device listener; which certificates may connect is the registry's call.
    // MQTT resumes sessions from tickets (reconnect storms); `iot-jobs-data` does not resume.
    let tls = fleetjobs_pki::mqtt_server_tls_config(&server_cert).context("building the TLS config")?;
    let jobs_data_tls = fleetjobs_pki::jobs_data_tls_config(&server_cert).context("building the TLS config")?;

    let mqtt_host = args.hosts.first().cloned().unwrap_or_else(|| "localhost".to_string());
    let mqtt_port = args.mqtt_listen.port();
    let jobs_port = args.jobs_data_listen.port();
    let config = EngineConfig {
        scope: ArnScope::new(&args.region, &args.account_id),
        mqtt_endpoint: if mqtt_port == 8883 { mqtt_host.clone() } else { format!("{mqtt_host}:{mqtt_port}") },
        jobs_endpoint: if jobs_port == 8443 { mqtt_host.clone() } else { format!("{mqtt_host}:{jobs_port}") },
        http_endpoint: format!("http://{}", args.http_listen),
    };
    let (engine, outbox) =
        Engine::open(config, store.clone(), ca.clone(), dir.secret_key()?, system_clock()).context("loading state")?;
    let s3_endpoint = match &args.s3_endpoint {
        Some(e) => Some(reqwest::Url::parse(e).with_context(|| format!("--s3-endpoint {e}"))?),
        None => None,
    };
    let documents = Arc::new(crate::s3::HttpDocumentSource::new(
        s3_endpoint,
        args.region.clone(),
        crate::s3::Credentials::from_environment(),
    )?);
    engine.set_document_source(documents.clone());
    // Here, on the device plane's runtime: see `Engine::set_bulk_runtime`.
    engine.set_bulk_runtime(Handle::current());
    let admin = engine.ensure_admin_key().await.map_err(|e| anyhow::anyhow!("creating the admin key: {e}"))?;
    let credentials = dir.write_credentials(&admin, &args.region)?;

    let retained = RetainedFiles::open(dir.path("retained")).context("opening the retained messages")?;
    let hooks = Hooks { engine: engine.clone(), retained: Some(Arc::new(retained)) };
    let broker_config = BrokerConfig { max_connections: args.max_connections, ..BrokerConfig::default() };
    let broker = Broker::new(Arc::new(hooks), broker_config);
    let pump_task = tokio::spawn(pump(&engine, outbox, broker.clone()));
    let timers_task = tokio::spawn(engine.clone().run_timers());

    let mqtt_listener =
        TcpListener::bind(args.mqtt_listen).await.with_context(|| format!("binding MQTT on {}", args.mqtt_listen))?;
    // Bound within the control plane's runtime: a listener's readiness comes from the I/O
    // driver of the runtime it was made in.
    let http_listener = control_plane
        .spawn(TcpListener::bind(args.http_listen))
        .await?
        .with_context(|| format!("binding HTTP on {}", args.http_listen))?;
    let jobs_listener = TcpListener::bind(args.jobs_data_listen)
        .await
        .with_context(|| format!("binding iot-jobs-data on {}", args.jobs_data_listen))?;

    let stop = shutdown::on_signal();
    let mqtt_task = tokio::spawn(fleetjobs_mqtt::serve_tls(broker.clone(), mqtt_listener, tls, stop.clone().wait()));
    let http_limits = fleetjobs_api::HttpLimits {
        header_timeout: Duration::from_secs(args.http_header_timeout),
        body_timeout: Duration::from_secs(args.http_body_timeout),
        write_timeout: Duration::from_secs(args.http_write_timeout),
        max_connections: args.http_max_connections,
    };
    let jobs_task = tokio::spawn(fleetjobs_api::serve_jobs_data(
        engine.clone(),
        jobs_listener,
        http_limits.clone(),
        jobs_data_tls,
        stop.clone().wait(),
    ));
    let console_config =
        fleetjobs_console::ConsoleConfig { body_timeout: http_limits.body_timeout, ..Default::default() };
    // The one-time sign-in link of the banner: whoever reads the server's output may sign in
    // once within its lifetime, as whoever reads the credentials file may.
    let signin_token = console_config.signin_links.issue(&admin.access_key_id, std::time::Instant::now());
    let mqtt: Arc<dyn fleetjobs_console::MqttPort> = broker.clone();
    let console = {
        // The console watches for the stop on a task of the runtime that serves it.
        let _within = control_plane.enter();
        fleetjobs_console::router(engine.clone(), Some(mqtt), console_config, stop.clone().wait())
    };
    let app = fleetjobs_api::router(engine.clone(), &http_limits)
        .merge(crate::metrics::router(metrics, engine.clone(), broker.clone()))
        .merge(console);
    let http_task = control_plane.spawn(fleetjobs_api::serve(app, http_listener, http_limits, stop.clone().wait()));

    print_banner(&args, &dir, &credentials, &signin_token);
    tracing::info!(http = %args.http_listen, mqtt = %args.mqtt_listen, "fleetjobs ready");

    stop.wait().await;
    let _ = mqtt_task.await;
    http_task.await?.context("HTTP server")?;
    jobs_task.await?.context("iot-jobs-data server")?;
    timers_task.abort();
    let _ = timers_task.await;
    drop(engine);
    pump_task.abort();
    store.close();
    Ok(())
}

/// Every connection is a descriptor: lift the soft limit to the hard one (commonly 1024 →
/// 524288), so that the server's own connection caps, not the default, bound it.
#[allow(unsafe_code)] // two libc calls, argued below; std has no rlimit API
fn raise_open_files_limit() {
    let mut limit = libc::rlimit { rlim_cur: 0, rlim_max: 0 };
    // SAFETY: getrlimit and setrlimit only read and write the struct passed by reference.
    let raised = unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) != 0 {
            None
        } else {
            let before = limit.rlim_cur;
            limit.rlim_cur = limit.rlim_max;
            (libc::setrlimit(libc::RLIMIT_NOFILE, &limit) == 0).then_some(before)
        }
    };
    match raised {
        Some(before) => tracing::info!(before, now = limit.rlim_cur, "open files limit (RLIMIT_NOFILE)"),
        None => tracing::warn!(
            error = %std::io::Error::last_os_error(),
            soft = limit.rlim_cur,
            "could not raise the open files limit"
        ),
    }
}

fn print_banner(args: &ServeArgs, dir: &DataDir, credentials: &std::path::Path, signin_token: &str) {
    let http = format!("http://{}", args.http_listen);
    println!("Fleetjobs is running.");
    println!("  data dir     {}", dir.root.display());
    println!("  HTTP API     {http}   (AWS `iot` API, SigV4)");
    println!("  Console      {http}/console/   (sign in with the access key in the credentials file)");
    // Tests parse this line: keep its shape.
    println!(
        "  Sign-in link {http}/console/signin?token={signin_token}   (signs in once, within {} minutes)",
        fleetjobs_console::auth::SIGNIN_LINK_TTL.as_secs() / 60
    );
    println!("  MQTT (mTLS)  {}   (CA: {})", args.mqtt_listen, dir.path("root-CA.crt").display());
    println!("  Jobs (mTLS)  https://{}   (`iot-jobs-data` for devices)", args.jobs_data_listen);
    println!("  credentials  {}", credentials.display());
    println!();
    println!("Next:");
    println!("  export AWS_SHARED_CREDENTIALS_FILE={}", credentials.display());
    println!("  aws --endpoint-url {http} iot create-thing --thing-name MyRaspberryPi");
    println!("  aws --endpoint-url {http} iot describe-endpoint --endpoint-type iot:Data-ATS");
}
