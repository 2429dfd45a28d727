//! Fleetjobs' MQTT 3.1.1 server (protocol level 3 `MQIsdp` accepted too), with AWS IoT Core
//! semantics: no QoS 2, a client publishing where its policy denies is disconnected, replies to
//! service requests go to the requester only.
//!
//! The broker knows MQTT; everything about certificates, policies and jobs is behind
//! [`DeviceHooks`].
//!
//! Layout, one concern per module:
//!
//! - `hooks`: the seam with the rest of Fleetjobs ([`DeviceHooks`] and its types).
//! - `frame`: byte framing, decoding of client packets (with `mqtt-proto`), encoding.
//! - `topic`: topic name and filter validation, matching, the subscription trie.
//! - `session`: per-client session state, outbound queue, QoS 1 in-flight window.
//! - `retain`: the retained messages, bounded server-wide, made durable through the hooks.
//! - `broker`: [`Broker`] and [`BrokerConfig`]: session registry, takeover, expiry, routing.
//! - `connection`: the per-connection task (handshake, reader, writer).
//! - `tap`: in-process subscribers with bounded queues (the console's MQTT test client).
//! - `throttle`: logging at most once per interval what clients can cause at will.
//! - `tls`: [`serve_tls`], the TLS accept loop.
//! - `tls_stream`: one server TLS connection over rustls's unbuffered API (no buffers while idle).
//! - `error`: why a connection ends.

mod broker;
mod connection;
mod error;
mod frame;
mod hooks;
mod metrics;
mod retain;
mod session;
mod tap;
mod throttle;
mod tls;
mod tls_stream;
mod topic;

pub use broker::{Broker, BrokerConfig};
pub use hooks::*;
pub use mqtt_proto::QoS;
pub use tap::{Tap, TapError, TapMessage, MAX_TAP_FILTERS};
pub use tls::serve_tls;
