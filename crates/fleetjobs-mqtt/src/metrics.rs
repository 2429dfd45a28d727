//! The broker's counters, registered once per process with the `metrics` facade (no-ops until
//! the binary installs a recorder). Held as handles so that the per-message paths pay one
//! atomic add, not a registry lookup.

use std::sync::LazyLock;

use metrics::{counter, describe_counter, Counter};
use mqtt_proto::QoS;

pub(crate) struct BrokerMetrics {
    /// CONNECTs accepted.
    pub connects: Counter,
    /// Connections closed before any TLS work: the server holds `max_connections`.
    pub refused_at_capacity: Counter,
    /// CONNECTs answered with a refusal code (not authorized, bad identifier, ...).
    pub refused_connects: Counter,
    /// PUBLISH packets received from clients.
    pub received: Counter,
    /// PUBLISH packets written to clients (first transmissions and retransmissions).
    pub sent: Counter,
    /// Messages not delivered, by [`DropReason`] and QoS (index: reason × 2 + QoS).
    dropped: [Counter; 2 * DropReason::ALL.len()],
    /// Client PUBLISHes whose PUBACK waited for room in a subscriber's queue (back-pressure).
    pub publish_waits: Counter,
    /// Connections closed because their queue stayed full (the client does not read).
    pub stalled_disconnects: Counter,
}

pub(crate) static METRICS: LazyLock<BrokerMetrics> = LazyLock::new(|| {
    describe_counter!("fleetjobs_mqtt_connects_total", "MQTT CONNECTs accepted");
    describe_counter!("fleetjobs_mqtt_connects_refused_total", "MQTT connections refused, by reason");
    describe_counter!("fleetjobs_mqtt_messages_received_total", "PUBLISH packets received from clients");
    describe_counter!("fleetjobs_mqtt_messages_sent_total", "PUBLISH packets written to clients");
    describe_counter!(
        "fleetjobs_mqtt_messages_dropped_total",
        "messages not delivered to a connected or persistent subscriber, by reason and QoS"
    );
    describe_counter!(
        "fleetjobs_mqtt_publish_waits_total",
        "client QoS 1 PUBLISHes whose PUBACK waited for room in a subscriber's queue"
    );
    describe_counter!("fleetjobs_mqtt_stalled_disconnects_total", "connections closed because they did not read");
    BrokerMetrics {
        connects: counter!("fleetjobs_mqtt_connects_total"),
        refused_at_capacity: counter!("fleetjobs_mqtt_connects_refused_total", "reason" => "max_connections"),
        refused_connects: counter!("fleetjobs_mqtt_connects_refused_total", "reason" => "connack_refused"),
        received: counter!("fleetjobs_mqtt_messages_received_total"),
        sent: counter!("fleetjobs_mqtt_messages_sent_total"),
        dropped: std::array::from_fn(|index| {
            let reason = DropReason::ALL[index / 2].label();
            let qos = if index % 2 == 0 { "0" } else { "1" };
            counter!("fleetjobs_mqtt_messages_dropped_total", "reason" => reason, "qos" => qos)
        }),
        publish_waits: counter!("fleetjobs_mqtt_publish_waits_total"),
        stalled_disconnects: counter!("fleetjobs_mqtt_stalled_disconnects_total"),
    }
});

/// Why a message was not delivered to a session: the closed set of the `reason` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum DropReason {
    // The discriminants index `BrokerMetrics::dropped` (in the order of `ALL`).
    /// A connected session's queue had no room, and the sender does not wait: QoS 0, or a
    /// message from the service (outbox), a will, a reply or a retained message.
    QueueFull = 0,
    /// The session is offline and keeps no such message (QoS 0, or a clean session).
    Offline = 1,
    /// An offline persistent session's queue had no room for a QoS 1 message.
    OfflineQueueFull = 2,
}

impl DropReason {
    const ALL: [DropReason; 3] = [DropReason::QueueFull, DropReason::Offline, DropReason::OfflineQueueFull];

    fn label(self) -> &'static str {
        match self {
            DropReason::QueueFull => "queue_full",
            DropReason::Offline => "offline",
            DropReason::OfflineQueueFull => "offline_queue_full",
        }
    }
}

impl BrokerMetrics {
    pub fn dropped(&self, reason: DropReason, qos: QoS) -> &Counter {
        &self.dropped[reason as usize * 2 + usize::from(qos != QoS::Level0)]
    }
}
