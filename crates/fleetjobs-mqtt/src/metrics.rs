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
    /// Messages a subscriber's full queue could not take.
    pub dropped_queue_full_qos0: Counter,
    pub dropped_queue_full_qos1: Counter,
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
    describe_counter!("fleetjobs_mqtt_stalled_disconnects_total", "connections closed because they did not read");
    BrokerMetrics {
        connects: counter!("fleetjobs_mqtt_connects_total"),
        refused_at_capacity: counter!("fleetjobs_mqtt_connects_refused_total", "reason" => "max_connections"),
        refused_connects: counter!("fleetjobs_mqtt_connects_refused_total", "reason" => "connack_refused"),
        received: counter!("fleetjobs_mqtt_messages_received_total"),
        sent: counter!("fleetjobs_mqtt_messages_sent_total"),
        dropped_queue_full_qos0: counter!("fleetjobs_mqtt_messages_dropped_total", "reason" => "queue_full", "qos" => "0"),
        dropped_queue_full_qos1: counter!("fleetjobs_mqtt_messages_dropped_total", "reason" => "queue_full", "qos" => "1"),
        stalled_disconnects: counter!("fleetjobs_mqtt_stalled_disconnects_total"),
    }
});

impl BrokerMetrics {
    pub fn dropped_queue_full(&self, qos: QoS) -> &Counter {
        match qos {
            QoS::Level0 => &self.dropped_queue_full_qos0,
            _ => &self.dropped_queue_full_qos1,
        }
    }
}
