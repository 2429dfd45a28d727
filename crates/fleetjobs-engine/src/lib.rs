//! The Fleetjobs engine: the registry (things, certificates, policies) and the jobs service,
//! as one in-memory state made durable through a [`Store`] before anything is acknowledged.
//!
//! Layout:
//! - [`Engine`] (this file): construction, the clock, and the commit pipeline.
//! - `state`: the in-memory state, its indexes, and `Txn`, the one way to change it (each
//!   change records its store mutation, and the notifications and events it causes).
//! - `input`: typed access to an operation's input (the merged path/query/header/body object).
//! - `wire`: the wire shapes (control plane, MQTT) built from the records.
//! - `registry`: things, certificates, policies, principals, endpoints, event configurations.
//! - `jobs`: job operations; `executions`: control-plane job execution operations.
//! - `device`: the device side: authentication, policy authorization, the Jobs MQTT API.
//! - `credentials`: the admin access key (stored encrypted).
//!
//! The engine never talks to devices directly: it emits [`DeviceCommand`]s on the outbox,
//! in commit order, after they are durable. The server wires the outbox to a device plane
//! (the embedded broker today, an external broker later).

mod credentials;
mod device;
mod executions;
mod input;
mod jobs;
mod registry;
mod state;
mod wire;

use std::sync::{Arc, Mutex, MutexGuard};
use std::time::{SystemTime, UNIX_EPOCH};

use fleetjobs_core::arn::ArnScope;
use fleetjobs_core::{ApiError, ErrorCode, Millis};
use fleetjobs_pki::CertificateAuthority;
use fleetjobs_store::{Batch, Store};
use tokio::sync::{mpsc, oneshot, watch};

pub use credentials::AdminKey;
pub use device::{DeviceAuthError, DeviceSession};
pub use input::Input;
pub use state::LoadError;

/// Something the device plane must do.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DeviceCommand {
    /// Publish to every authorized subscriber (notifications, events). QoS 1 where granted.
    Publish { topic: String, payload: Vec<u8> },
    /// Close every MQTT connection authenticated with this certificate.
    DisconnectCertificate { certificate_id: String },
}

/// The receiving end of the engine's device commands.
pub type Outbox = mpsc::UnboundedReceiver<DeviceCommand>;

/// Static settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub scope: ArnScope,
    /// What DescribeEndpoint answers for `iot:Data` / `iot:Data-ATS` (host or host:port).
    pub mqtt_endpoint: String,
    /// What DescribeEndpoint answers for `iot:Jobs` / `iot:CredentialProvider`.
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
    store: Arc<dyn Store>,
    ca: Arc<CertificateAuthority>,
    clock: Clock,
    outbox: mpsc::UnboundedSender<DeviceCommand>,
    /// Sequence number of the last batch that is durable.
    durable: watch::Sender<u64>,
    secret_box: credentials::SecretBox,
}

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
        let engine = Engine {
            config,
            state: Mutex::new(state),
            store,
            ca,
            clock,
            outbox,
            durable: watch::channel(0).0,
            secret_box,
        };
        Ok((Arc::new(engine), rx))
    }

    pub fn config(&self) -> &EngineConfig {
        &self.config
    }

    fn now(&self) -> Millis {
        (self.clock)()
    }

    fn lock(&self) -> MutexGuard<'_, state::State> {
        self.state.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Run `f` as one transaction: it reads and changes the state through a [`state::Txn`];
    /// its changes are queued to the store while the lock is held (so the store sees them in
    /// state order), then this waits until they are durable before returning `f`'s result.
    ///
    /// Invariant: operations check everything before their first change, so an `Err` leaves
    /// the state untouched. Should a change precede an error anyway, it is still committed,
    /// so memory and disk never disagree.
    async fn write<T>(&self, f: impl FnOnce(&mut state::Txn<'_>) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let now = self.now();
        let (result, done) = {
            let mut guard = self.lock();
            let mut txn = state::Txn::begin(&mut guard, &self.config.scope, now);
            let result = f(&mut txn);
            debug_assert!(result.is_ok() || txn.is_clean(), "an operation changed state before failing");
            let changes = txn.finish();
            let done = self.submit(&mut guard, changes);
            (result, done)
        };
        match done {
            Some(rx) => rx.await.unwrap_or(Err(ApiError::new(ErrorCode::InternalFailure, "store closed")))?,
            None => self.wait_durable().await,
        }
        result
    }

    /// Queue changes to the store (the state lock is held by the caller). Returns a receiver
    /// that resolves when they are durable, or `None` when there was nothing to write.
    fn submit(
        &self,
        state: &mut state::State,
        changes: state::Changes,
    ) -> Option<oneshot::Receiver<Result<(), ApiError>>> {
        if changes.mutations.is_empty() && changes.commands.is_empty() {
            return None;
        }
        state.seq += 1;
        let seq = state.seq;
        let (tx, rx) = oneshot::channel();
        let outbox = self.outbox.clone();
        let durable = self.durable.clone();
        let commands = changes.commands;
        self.store.submit(Batch {
            mutations: changes.mutations,
            on_durable: Box::new(move |result| {
                let result = result.map_err(|e| ApiError::new(ErrorCode::InternalFailure, e.to_string()));
                if result.is_ok() {
                    for c in commands {
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
    /// (a reader is never shown a change that a crash could still lose).
    async fn read<T>(&self, f: impl FnOnce(&state::State) -> Result<T, ApiError>) -> Result<T, ApiError> {
        let (value, seq) = {
            let guard = self.lock();
            (f(&guard)?, guard.seq)
        };
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= seq).await;
        Ok(value)
    }

    async fn wait_durable(&self) {
        let seq = self.lock().seq;
        let mut rx = self.durable.subscribe();
        let _ = rx.wait_for(|d| *d >= seq).await;
    }
}

#[cfg(test)]
mod tests;
