//! The Fleetjobs engine: the registry (things, certificates, policies) and the jobs service,
//! as one in-memory state made durable through a [`Store`] before anything is acknowledged.
//!
//! Layout:
//! - [`Engine`] (this file): construction, the clock, and the commit pipeline.
//! - `state`: the in-memory state, its indexes, and `Txn`, the one way to change it (each
//!   change records its store mutation, and the notifications and events it causes).
//! - `ops`: the typed control-plane operations (`fleetjobs_core::ops` requests and responses),
//!   one module per resource group.
//! - `device`: the device side: authentication, policy authorization, the Jobs MQTT API.
//! - `credentials`: the admin access key (stored encrypted).
//! - `health`: the store's failures as the engine sees them (re-read, refuse, recover).
//! - `timers`: the one timer loop (execution timeouts, rollouts).
//! - `watermarks`: which batch last wrote each job (what a read of one job waits for).
//! - `durable_view`: each job's record and counts, and the access keys, as durable: what
//!   DescribeJob and the SigV4 check read without the state lock.
//! - `rollout`: applies the rollout rules (`fleetjobs-rollout`) to a job: start, rate, windows, end.
//!
//! The engine never talks to devices directly: it emits [`DeviceCommand`]s on the outbox,
//! in commit order, after they are durable. The server wires the outbox to a device plane
//! (the embedded broker today, an external broker later).

mod credentials;
mod device;
pub mod document_source;
mod durable_view;
mod health;
mod notification;
mod ops;
mod rollout;
mod state;
mod stats;
mod timers;
mod watermarks;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::{ApiError, Millis};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::{Batch, Store};
use tokio::sync::{mpsc, oneshot, watch};

pub use credentials::AdminKey;
pub use device::{DeviceAuthError, DeviceSession};
pub use state::LoadError;
pub use stats::{FleetStats, JOB_STATUSES};

pub use notification::UnheardEvent;

/// Something the device plane must do.
#[derive(Debug, Clone, PartialEq)]
pub enum DeviceCommand {
    /// Publish to every authorized subscriber (notifications, events). QoS 1 where granted.
    Publish { topic: String, payload: Vec<u8> },
    /// An event nobody could receive when it was rendered: publish it only if someone
    /// could now (rendering it then).
    Event(UnheardEvent),
    /// Close every MQTT connection authenticated with this certificate.
    DisconnectCertificate { certificate_id: String },
}

/// Whether anyone could receive a job event now (a subscription or a tap that could match
/// `$aws/events/...`): asked once per batch with events, so it must be cheap.
pub type EventAudience = Arc<dyn Fn() -> bool + Send + Sync>;

/// The receiving end of the engine's device commands.
pub type Outbox = mpsc::UnboundedReceiver<DeviceCommand>;

/// Static settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub scope: ArnScope,
    /// What DescribeEndpoint answers for `iot:Data` / `iot:Data-ATS` (host or host:port).
    pub mqtt_endpoint: String,
    /// What DescribeEndpoint answers for `iot:Jobs`: the `iot-jobs-data` mutual-TLS listener
    /// (host, or host:port when not 8443), as `iot:Data-ATS` answers a bare host.
    pub jobs_endpoint: String,
    /// What DescribeEndpoint answers for `iot:CredentialProvider`.
    pub http_endpoint: String,
}

/// The clock: epoch milliseconds.
pub type Clock = Arc<dyn Fn() -> Millis + Send + Sync>;

pub fn system_clock() -> Clock {
    Arc::new(|| SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_millis() as Millis).unwrap_or(0))
}

pub struct Engine {
    config: EngineConfig,
    state: Mutex<state::State>,
    /// What is durable of the jobs and access keys, readable without `state`'s lock.
    view: Arc<durable_view::DurableView>,
    /// Bumped, under `state`'s lock, by every change a device's policy decision could rest on
    /// (anything but jobs and executions): what a session's remembered decisions are checked
    /// against (`device::Decisions`).
    authz_generation: std::sync::atomic::AtomicU64,
    store: Arc<dyn Store>,
    ca: Arc<CertificateAuthority>,
    clock: Clock,
    outbox: mpsc::UnboundedSender<DeviceCommand>,
    /// Sequence number of the last batch that is durable (or failed: either way, settled).
    durable: watch::Sender<u64>,
    health: Arc<health::Health>,
    secret_box: credentials::SecretBox,
    timing: Timing,
    /// Set once by the device plane; until then every event is rendered.
    event_audience: std::sync::OnceLock<EventAudience>,
    /// Where CreateJob's chunks run (set once by the server; unset, on the caller's task).
    bulk: std::sync::OnceLock<tokio::runtime::Handle>,
    /// This engine, for the tasks it spawns there.
    me: std::sync::Weak<Engine>,
}

/// Where requests spend their time in the pipeline (handles taken once: one record each).
struct Timing {
    /// Waiting for the state lock.
    lock_wait: metrics::Histogram,
    /// Reads waiting for the durability of what they show.
    read_wait: metrics::Histogram,
    /// Writes waiting for their own batch to be durable.
    write_wait: metrics::Histogram,
}

impl Timing {
    fn new() -> Self {
        metrics::describe_histogram!(
            "fleetjobs_engine_lock_wait_seconds",
            metrics::Unit::Seconds,
            "time a request waited for the state lock"
        );
        metrics::describe_histogram!(
            "fleetjobs_engine_durable_wait_seconds",
            metrics::Unit::Seconds,
            "time a request waited for durability after its lock (path: read, write)"
        );
        Timing {
            lock_wait: metrics::histogram!("fleetjobs_engine_lock_wait_seconds"),
            read_wait: metrics::histogram!("fleetjobs_engine_durable_wait_seconds", "path" => "read"),
            write_wait: metrics::histogram!("fleetjobs_engine_durable_wait_seconds", "path" => "write"),
        }
    }
}

/// A write queued to the store by [`Engine::begin_write`], not yet known to be durable.
struct Submitted<T> {
    result: T,
    done: Option<oneshot::Receiver<Result<(), ApiError>>>,
    transitions: Vec<state::Transition>,
    seq: u64,
    epoch: u64,
}

impl<T> Submitted<T> {
    /// This write, begun after `earlier`: the store commits `earlier` first, so waiting for this
    /// one waits for both; `earlier`'s transitions are logged with this one's.
    fn after<U>(mut self, earlier: Submitted<U>) -> Self {
        let mut transitions = earlier.transitions;
        transitions.append(&mut self.transitions);
        self.transitions = transitions;
        self
    }
}

/// What a read may have looked at, which decides the batches it waits for.
#[derive(Clone, Copy)]
enum ReadScope<'a> {
    /// Anything: every batch submitted so far.
    All,
    /// One job's record and executions: the last batch that wrote them.
    Job(&'a str),
}

/// The model's bound on `documentSource`.
const MAX_DOCUMENT_SOURCE_CHARS: usize = 1350;

/// How often a read is tried again when a failed commit may have shown it changes the store
/// refused (each retry re-reads the store first, so one retry normally settles it).
const READ_ATTEMPTS: usize = 3;

impl Engine {
    /// Load all records from `store` and start serving.
    pub fn open(
        config: EngineConfig,
        store: Arc<dyn Store>,
        ca: Arc<CertificateAuthority>,
        secret_key: [u8; 32],
        clock: Clock,
    ) -> Result<(Arc<Engine>, Outbox), LoadError> {
        let secret_box = credentials::SecretBox::new(secret_key);
        let now = clock();
        let state = state::State::load(store.load()?, &secret_box, now)?;
        let (outbox, rx) = mpsc::unbounded_channel();
        let engine = Arc::new_cyclic(|me| Engine {
            me: me.clone(),
            config,
            view: Arc::new(durable_view::DurableView::of(&state)),
            authz_generation: std::sync::atomic::AtomicU64::new(1),
            state: Mutex::new(state),
            store,
            ca,
            clock,
            outbox,
            durable: watch::channel(0).0,
            health: Arc::default(),
            secret_box,
            timing: Timing::new(),
            event_audience: std::sync::OnceLock::new(),
            bulk: std::sync::OnceLock::new(),
        });
        Ok((engine, rx))
    }

    /// Wire who could receive events (once, before serving; later calls are ignored), so that
    /// events nobody could receive are not rendered.
    pub fn set_event_audience(&self, audience: EventAudience) {
        let _ = self.event_audience.set(audience);
    }

    /// Run CreateJob's chunks on `runtime` (once, before serving; later calls are ignored). The
    /// server passes its device plane's runtime: a CreateJob on a big group then creates its
    /// executions at the devices' priority, and the control plane's threads, whose raised
    /// priority is there to answer API calls at once, stay free for them (describe-job's tail
    /// under load came from the HTTP runtime's threads computing chunks).
    pub fn set_bulk_runtime(&self, runtime: tokio::runtime::Handle) {
        let _ = self.bulk.set(runtime);
    }

    /// Wire the fetcher of `documentSource` documents (once, before serving).
    pub fn set_document_source(&self, source: Arc<dyn document_source::DocumentSource>) {
        // The state keeps it (its documents presign with it); fetching reads it from there.
        if let Ok(mut state) = self.lock() {
            state.set_document_source(source);
        }
    }

    /// The document at `url`, fetched outside the state lock (before the op's write).
    async fn fetch_document(&self, url: &str) -> fleetjobs_core::ApiResult<String> {
        if url.is_empty() || url.chars().count() > MAX_DOCUMENT_SOURCE_CHARS {
            return Err(ApiError::invalid(format!(
                "documentSource must have length between 1 and {MAX_DOCUMENT_SOURCE_CHARS}"
            )));
        }
        let source = self.lock()?.document_source().ok_or_else(|| {
            ApiError::invalid(
                "documentSource is not enabled on this server (serve --s3-endpoint); pass the document inline",
            )
        })?;
        source
            .fetch(url)
            .await
            .map_err(|reason| ApiError::invalid(format!("Unable to read the job document from {url}: {reason}")))
    }

    /// Changes to watch: the sequence number of the last settled batch, bumped each time a
    /// batch of changes is durable (or refused). A `watch`, so a slow watcher holds one value,
    /// never a queue; it re-reads what it shows through the operations (live pages).
    pub fn changes(&self) -> watch::Receiver<u64> {
        self.durable.subscribe()
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    /// The state, re-read from the store first if a failed commit left changes in memory that
    /// the store refused (memory then matches disk again before anyone looks).
    /// The root CA's certificate (PEM): what devices trust the server with, AWS's
    /// `AmazonRootCA1.pem` here.
    pub fn root_ca_pem(&self) -> &str {
        self.ca.cert_pem()
    }

    fn lock(&self) -> Result<MutexGuard<'_, state::State>, ApiError> {
        let asked = std::time::Instant::now();
        let mut guard = self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        self.timing.lock_wait.record(asked.elapsed().as_secs_f64());
        let failed = self.health.failed_epoch();
        if guard.epoch <= failed {
            let mut fresh = self
                .store
                .load()
                .map_err(LoadError::from)
                .and_then(|records| state::State::load(records, &self.secret_box, self.now()))
                .map_err(|e| health::unavailable(&e.to_string()))?;
            fresh.seq = guard.seq;
            fresh.written = std::mem::take(&mut guard.written);
            fresh.epoch = failed + 1;
            if let Some(source) = guard.document_source() {
                fresh.set_document_source(source);
            }
            *guard = fresh;
            self.authz_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
            tracing::warn!(epoch = failed + 1, "state re-read from the store after a failed commit");
        }
        Ok(guard)
    }

    /// Run `f` as one transaction: it reads and changes the state through a [`state::Txn`];
    /// its changes are queued to the store while the lock is held (so the store sees them in
    /// state order), then this waits until they are durable before returning `f`'s result.
    ///
    /// Invariant: operations check everything before their first change, so an `Err` leaves
    /// the state untouched. A change reaches memory before the disk, but if the store refuses
    /// it, memory is re-read from the store before anyone sees it again (see [`Self::lock`]),
    /// and the caller gets a retryable `ServiceUnavailableException`.
    ///
    /// `E` is the caller's error dialect (`ApiError`, or the device's `Rejected`): the
    /// pipeline's own failures convert into it.
    async fn write<T, E: From<ApiError>>(&self, f: impl FnOnce(&mut state::Txn<'_>) -> Result<T, E>) -> Result<T, E> {
        let submitted = self.begin_write(f)?;
        self.durable(submitted).await
    }

    /// The first half of [`Self::write`]: run `f` under the lock, queue its changes to the
    /// store, and render its notifications after releasing the lock, without waiting for
    /// durability. Writes begun one after another commit in that order, so waiting for the last
    /// (`durable`) waits for all: CreateJob's chunks are queued back to back this way.
    fn begin_write<T, E: From<ApiError>>(
        &self,
        f: impl FnOnce(&mut state::Txn<'_>) -> Result<T, E>,
    ) -> Result<Submitted<Result<T, E>>, E> {
        let now = self.now();
        let (result, done, transitions, seq, epoch, outgoing) = {
            let mut guard = self.lock()?;
            // While the store refuses writes, refuse at once (nothing applied, nothing to undo);
            // one write per interval goes through as the probe that notices space came back.
            self.health.check_writable(now)?;
            let mut txn = state::Txn::begin(&mut guard, &self.config.scope, now);
            let result = f(&mut txn);
            debug_assert!(result.is_ok() || txn.is_clean(), "an operation changed state before failing");
            let mut changes = txn.finish();
            let transitions = std::mem::take(&mut changes.transitions);
            let outgoing = (!changes.notifications.is_empty()).then(|| {
                let audience = self.event_audience.get().cloned();
                notification::Outgoing::new(std::mem::take(&mut changes.notifications), audience)
            });
            let done = self.submit(&mut guard, changes.mutations, outgoing.clone());
            (result, done, transitions, guard.seq, guard.epoch, outgoing)
        };
        // Topics and payloads are built here, outside the lock, while the store commits.
        if let Some(outgoing) = &outgoing {
            outgoing.render();
        }
        Ok(Submitted { result, done, transitions, seq, epoch })
    }

    /// The second half of [`Self::write`]: wait until the write is durable (or refused), then
    /// return its result.
    async fn durable<T, E: From<ApiError>>(&self, submitted: Submitted<Result<T, E>>) -> Result<T, E> {
        let Submitted { result, done, transitions, seq, epoch } = submitted;
        let waiting = std::time::Instant::now();
        let durable = match done {
            // Its own batch decides: durable, or refused (and then rolled back in memory).
            Some(rx) => rx.await.unwrap_or_else(|_| Err(health::unavailable("the store has shut down"))),
            // Nothing written, but the answer may rest on changes of a batch still in flight.
            None => self.settled(seq, epoch).await,
        };
        self.timing.write_wait.record(waiting.elapsed().as_secs_f64());
        durable.map_err(E::from)?;
        // Logged by the caller once durable, not on the store's writer thread, whose every
        // microsecond delays a whole group commit.
        transitions.iter().for_each(state::Transition::log);
        result
    }

    /// Queue changes to the store (the state lock is held by the caller): their mutations, and
    /// the notifications that go to the outbox once they are durable. Returns a receiver that
    /// resolves when they are durable, or `None` when there was nothing to write.
    fn submit(
        &self,
        state: &mut state::State,
        mutations: Vec<fleetjobs_store::Mutation>,
        outgoing: Option<Arc<notification::Outgoing>>,
    ) -> Option<oneshot::Receiver<Result<(), ApiError>>> {
        if mutations.is_empty() && outgoing.is_none() {
            return None;
        }
        state.seq += 1;
        let seq = state.seq;
        let epoch = state.epoch;
        // A device update writes its execution (and at most its job): no new generation.
        if mutations.iter().any(|m| !matches!(m.record().0, state::JOB | state::EXECUTION)) {
            self.authz_generation.fetch_add(1, std::sync::atomic::Ordering::AcqRel);
        }
        let state::State { written, jobs, .. } = state;
        written.note(seq, &mutations, *self.durable.borrow(), |job| jobs.contains_key(job));
        let view_changes = durable_view::ViewChanges::of(state, &mutations);
        let view = self.view.clone();
        let (tx, rx) = oneshot::channel();
        let outbox = self.outbox.clone();
        let durable = self.durable.clone();
        let health = self.health.clone();
        let clock = self.clock.clone();
        self.store.submit(Batch {
            epoch,
            mutations,
            on_durable: Box::new(move |result| {
                let result = health.settle(epoch, result, clock());
                if result.is_ok() {
                    // Before anyone is answered: whoever learns of this batch reads it there.
                    view.apply(view_changes);
                }
                if let (Ok(()), Some(outgoing)) = (&result, outgoing) {
                    for c in outgoing.take() {
                        let _ = outbox.send(c);
                    }
                }
                durable.send_modify(|d| *d = (*d).max(seq));
                let _ = tx.send(result);
            }),
        });
        Some(rx)
    }

    /// Read under the lock, then wait until everything the read could have seen is durable
    /// (a reader is never shown a change that a crash could still lose, nor one the store
    /// refused: then it reads again from the re-read state). A read that may look anywhere
    /// waits for every batch handed to the store so far.
    async fn read<T, E: From<ApiError>>(&self, f: impl Fn(&state::State) -> Result<T, E>) -> Result<T, E> {
        self.read_in(ReadScope::All, f).await
    }

    /// A read that shows one job only (its record, its executions, their counts): it waits
    /// for the batches that wrote that job, not for the device updates of other jobs queued
    /// beside them. `f` must not look at anything else.
    async fn read_job<T, E: From<ApiError>>(
        &self,
        job: &str,
        f: impl Fn(&state::State) -> Result<T, E>,
    ) -> Result<T, E> {
        self.read_in(ReadScope::Job(job), f).await
    }

    async fn read_in<T, E: From<ApiError>>(
        &self,
        scope: ReadScope<'_>,
        f: impl Fn(&state::State) -> Result<T, E>,
    ) -> Result<T, E> {
        for _ in 0..READ_ATTEMPTS {
            let (value, seq, epoch) = {
                let guard = self.lock()?;
                let seq = match scope {
                    ReadScope::All => guard.seq,
                    ReadScope::Job(job) => guard.written.of_job(job),
                };
                (f(&guard), seq, guard.epoch)
            };
            // A refusal rests on the state too ("not found" after a delete still in flight).
            let waiting = std::time::Instant::now();
            let settled = self.settled(seq, epoch).await;
            self.timing.read_wait.record(waiting.elapsed().as_secs_f64());
            if settled.is_ok() {
                return value;
            }
        }
        Err(health::unavailable("the store keeps refusing writes").into())
    }

    /// Wait until every batch up to `seq` is settled; `Err` when one of `epoch` failed, so
    /// that what was read may include refused changes.
    async fn settled(&self, seq: u64, epoch: u64) -> Result<(), ApiError> {
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= seq).await;
        if self.health.failed_epoch() >= epoch {
            return Err(health::unavailable("a write this answer depends on was not stored"));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_jobs_data;
#[cfg(test)]
mod tests_namespaces;
#[cfg(test)]
mod tests_reads;
#[cfg(test)]
mod tests_rollout;
#[cfg(test)]
mod tests_timers;
