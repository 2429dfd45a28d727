//! The broker hooks: MQTT meets the engine. Authentication and authorization go to the
//! engine's device side; `$aws/things/{thing}/jobs/...` publishes go to the Jobs MQTT API;
//! the engine's outbox (notifications, events, disconnects) comes back to the broker; retained
//! messages are kept in [`RetainedFiles`].

use std::sync::Arc;

use bytes::Bytes;
use fleetjobs_core::policy::IotAction;
use fleetjobs_core::topics::{self, JobsTopic};
use fleetjobs_engine::{DeviceAuthError, DeviceCommand, DeviceSession, Engine, Outbox};
use fleetjobs_mqtt::{
    Action, BoxFuture, Broker, ConnectInfo, ConnectRefusal, DeviceHooks, PeerInfo, Reply, RetainedChange,
    RetainedMessage,
};

use crate::retained::{Loaded, RetainedFiles};

pub struct Hooks {
    pub engine: Arc<Engine>,
    /// Where retained messages are kept; `None`: in memory only (benchmarks).
    pub retained: Option<Arc<RetainedFiles>>,
}

impl Hooks {
    /// Just-in-time registration of an unknown certificate, after the refused connect (the
    /// hook cannot wait for a commit): registered `PENDING_ACTIVATION` if a CA with
    /// auto-registration signed it, for the device's next connect once it is activated.
    fn register_at_connect(&self, der: Vec<u8>) {
        let engine = self.engine.clone();
        tokio::spawn(async move {
            match engine.register_certificate_at_connect(&der).await {
                Ok(Some(r)) => {
                    tracing::info!(certificate_id = %r.certificate_id, "certificate registered at connect (PENDING_ACTIVATION)")
                }
                Ok(None) => {}
                Err(e) => tracing::info!(error = %e.message, "certificate not registered at connect"),
            }
        });
    }
}

impl DeviceHooks for Hooks {
    type Session = DeviceSession;

    fn connect(&self, peer: &PeerInfo, connect: &ConnectInfo) -> Result<DeviceSession, ConnectRefusal> {
        // A resumed TLS session skipped the handshake's certificate checks: its dates are
        // checked here (the registry's, below, runs for every connect).
        if peer.resumed && !peer.cert_der.as_deref().is_some_and(within_validity_now) {
            tracing::info!(client_id = %connect.client_id, remote = ?peer.remote_addr, "connection refused: resumed session's certificate is not within its validity");
            return Err(ConnectRefusal::NotAuthorized);
        }
        self.engine.authenticate_device(peer.cert_der.as_deref(), &connect.client_id).map_err(|e| {
            tracing::info!(client_id = %connect.client_id, remote = ?peer.remote_addr, reason = %e, "connection refused");
            if let (DeviceAuthError::UnknownCertificate(_), Some(der)) = (&e, &peer.cert_der) {
                if self.engine.registers_at_connect() {
                    self.register_at_connect(der.to_vec());
                }
            }
            match e {
                DeviceAuthError::Unavailable(_) => ConnectRefusal::ServerUnavailable,
                _ => ConnectRefusal::NotAuthorized,
            }
        })
    }

    fn authorize(&self, session: &DeviceSession, action: Action, topic: &str) -> bool {
        let action = match action {
            Action::Publish => IotAction::Publish,
            Action::Subscribe => IotAction::Subscribe,
            Action::Receive => IotAction::Receive,
            Action::RetainPublish => IotAction::RetainPublish,
        };
        let ok = self.engine.authorize_device(session, action, topic);
        if !ok {
            tracing::debug!(client_id = %session.client_id, ?action, topic, "denied by policy");
        }
        ok
    }

    fn handle_request<'a>(
        &'a self,
        _session: &'a DeviceSession,
        topic: &'a str,
        payload: Bytes,
    ) -> Option<BoxFuture<'a, Vec<Reply>>> {
        let parsed = topics::parse(topic);
        if parsed == JobsTopic::NotJobs {
            return None;
        }
        Some(Box::pin(async move {
            let replies = self.engine.handle_jobs_topic(topic, parsed, &payload).await;
            replies.into_iter().map(|(topic, payload)| Reply { topic, payload: Bytes::from(payload) }).collect()
        }))
    }

    fn load_retained(&self) -> Vec<RetainedMessage> {
        let Some(files) = &self.retained else {
            return Vec::new();
        };
        match files.load() {
            Ok(Loaded { messages, unreadable }) => {
                for (path, error) in unreadable {
                    tracing::warn!(path = %path.display(), %error, "skipping an unreadable retained message");
                }
                tracing::info!(count = messages.len(), "retained messages loaded");
                messages
            }
            Err(error) => {
                tracing::error!(%error, "cannot read the retained messages: starting without them");
                Vec::new()
            }
        }
    }

    fn persist_retained(&self, change: RetainedChange) -> BoxFuture<'_, std::io::Result<()>> {
        let Some(files) = self.retained.clone() else {
            return Box::pin(std::future::ready(Ok(())));
        };
        Box::pin(async move {
            // File writes and fsyncs block: off the async workers.
            tokio::task::spawn_blocking(move || match change {
                RetainedChange::Put(message) => files.put(&message),
                RetainedChange::Delete { topic } => files.delete(&topic),
            })
            .await
            .map_err(std::io::Error::other)?
        })
    }
}

fn within_validity_now(der: &[u8]) -> bool {
    let now = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_secs());
    fleetjobs_pki::within_validity(der, now)
}

/// Carry the engine's device commands to the broker, in order, until the engine is gone.
/// Wires the engine's event audience to the broker first, so that events nobody could
/// receive are neither rendered nor published.
pub fn pump(
    engine: &Engine,
    outbox: Outbox,
    broker: Arc<Broker<Hooks>>,
) -> impl std::future::Future<Output = ()> + Send + 'static {
    // Weak: the broker's hooks hold the engine, which holds the audience.
    let audience = Arc::downgrade(&broker);
    engine.set_event_audience(Arc::new(move || {
        audience.upgrade().is_some_and(|b| b.has_audience_under(topics::EVENTS_PREFIX))
    }));
    carry(outbox, broker)
}

async fn carry(mut outbox: Outbox, broker: Arc<Broker<Hooks>>) {
    while let Some(command) = outbox.recv().await {
        match command {
            DeviceCommand::Publish { topic, payload } => publish(&broker, &topic, payload),
            // Asked again here, just before publishing: a subscription acknowledged since the
            // event's batch was rendered still receives it.
            DeviceCommand::Event(event) => {
                if broker.has_audience_under(topics::EVENTS_PREFIX) {
                    if let Some(DeviceCommand::Publish { topic, payload }) = event.render() {
                        publish(&broker, &topic, payload);
                    }
                }
            }
            DeviceCommand::DisconnectCertificate { certificate_id } => {
                let n = broker.disconnect_where(|s| s.certificate_id == certificate_id);
                tracing::info!(%certificate_id, connections = n, "certificate no longer active: disconnected");
            }
        }
    }
}

fn publish(broker: &Broker<Hooks>, topic: &str, payload: Vec<u8>) {
    broker.publish(topic, Bytes::from(payload), mqtt_proto::QoS::Level1);
}
