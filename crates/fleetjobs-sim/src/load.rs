//! An MQTT QoS 1 load generator for broker benchmarks: P publishers → S subscribers on one
//! topic over mutual TLS (fan-in 10→1, fan-out 1→100, ...), paced at an offered total rate or
//! closed loop (a window of unacknowledged PUBLISHes per publisher), with the send time in each
//! payload for latency, and its own CPU time so a report can tell when it was the limit.
//!
//! It speaks to any MQTT 3.1.1 broker (Fleetjobs, Mosquitto) through [`crate::mqtt`] and the
//! simulator's TLS setup; it provisions nothing.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use mqtt_proto::v3::Packet;
use mqtt_proto::QoS;
use serde::Serialize;
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_rustls::TlsConnector;

use crate::fleet::{client_config, server_name, TlsSetupError};
use crate::mqtt::{Connection, MqttError};
use crate::server_cpu;

/// How long one connection (TCP, TLS, CONNECT, CONNACK) or SUBSCRIBE may take.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(30);
/// How long publishers wait for their last PUBACKs after the run.
const PUBACK_GRACE: Duration = Duration::from_secs(30);
/// How long the last deliveries get to arrive after the last PUBACK.
const DELIVERY_GRACE: Duration = Duration::from_secs(10);
/// How often the end of the deliveries is checked.
const DRAIN_POLL: Duration = Duration::from_millis(5);
/// Keep-alive: longer than any run, so no PINGREQ is needed.
const KEEP_ALIVE_SECS: u16 = 600;
/// The send time (ns since the Unix epoch, big-endian) at the start of every payload.
const STAMP: usize = 8;

#[derive(Debug, Clone)]
pub struct LoadConfig {
    /// The broker's MQTT mutual-TLS listener, `host:port`.
    pub addr: String,
    pub root_ca_pem: Vec<u8>,
    pub cert_pem: String,
    pub key_pem: String,
    pub topic: String,
    /// Client ids are `{client_prefix}-p{i}` and `{client_prefix}-s{i}`.
    pub client_prefix: String,
    pub publishers: usize,
    pub subscribers: usize,
    /// Total PUBLISHes per second over all publishers; `None`: closed loop.
    pub rate: Option<f64>,
    /// Unacknowledged QoS 1 PUBLISHes per publisher at most.
    pub window: u64,
    pub duration: Duration,
    /// Payload bytes (at least the 8-byte timestamp).
    pub payload: usize,
    /// The broker's process id, to report its CPU time over the run (same machine only).
    pub server_pid: Option<u32>,
}

#[derive(Debug, thiserror::Error)]
pub enum LoadError {
    #[error(transparent)]
    Tls(#[from] TlsSetupError),
    #[error("{client}: {source}")]
    Mqtt { client: String, source: MqttError },
    #[error("invalid load: {0}")]
    Config(&'static str),
}

/// What a run did. Latencies are from the PUBLISH being written to its arrival at a subscriber.
#[derive(Debug, Clone, Serialize)]
pub struct LoadReport {
    pub publishers: usize,
    pub subscribers: usize,
    /// Total offered PUBLISHes/s; `None` for closed loop.
    pub offered_rate: Option<f64>,
    pub window: u64,
    pub payload_bytes: usize,
    pub sent: u64,
    pub acked: u64,
    pub expected_deliveries: u64,
    pub delivered: u64,
    pub delivered_pct: f64,
    /// The publishing phase (the configured duration, or longer if a write blocked).
    pub wall_s: f64,
    /// From the end of publishing until every delivery arrived (or the grace ran out).
    pub drain_s: f64,
    pub publishes_per_s: f64,
    /// Deliveries over the publishing phase's wall time.
    pub deliveries_per_s: f64,
    /// Percentiles over the deliveries that arrived (a broker that drops messages is measured
    /// on the ones it kept).
    pub p50_ms: Option<f64>,
    pub p90_ms: Option<f64>,
    pub p99_ms: Option<f64>,
    pub p999_ms: Option<f64>,
    pub max_ms: Option<f64>,
    /// The 99th percentile over every expected delivery, a lost one counting as slower than any
    /// that arrived: `None` when more than 1 % were lost (the latency of the 99th percentile
    /// message is then unbounded). Comparable between a broker that drops under overload and
    /// one that holds its publishers back.
    pub p99_of_expected_ms: Option<f64>,
    /// Deliveries by latency: `[upper bound ms, count]`, the last bound open (`null`).
    pub latency_histogram_ms: Vec<(Option<f64>, u64)>,
    /// The 99th percentile of the messages sent in each second of the run (by send time), to
    /// tell a tail spread over the run from a few stalls.
    pub p99_ms_by_second: Vec<Option<f64>>,
    /// This process's utime+stime over publishing and draining (connects excluded).
    pub generator_cpu_s: Option<f64>,
    /// The broker's utime+stime over the same span, with `server_pid`.
    pub server_cpu_s: Option<f64>,
}

fn mqtt_err(client: &str) -> impl FnOnce(MqttError) -> LoadError + '_ {
    move |source| LoadError::Mqtt { client: client.to_string(), source }
}

fn now_ns() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}

fn cpu_s(pid: Option<u32>) -> Option<f64> {
    pid.and_then(server_cpu::cpu_ms).map(|ms| ms / 1000.0)
}

/// Connected, subscribed (subscribers) clients, waiting for [`Prepared::run`]; connecting is
/// apart so a caller can start measuring (or profiling) the broker after it.
pub struct Prepared {
    config: LoadConfig,
    subscribers: Vec<Connection>,
    publishers: Vec<Connection>,
}

/// Connect every client and subscribe the subscribers.
pub async fn prepare(config: LoadConfig) -> Result<Prepared, LoadError> {
    if config.publishers == 0 || config.window == 0 || config.payload < STAMP {
        return Err(LoadError::Config("publishers, window must be ≥ 1 and payload ≥ 8 bytes"));
    }
    if config.rate.is_some_and(|r| !(r.is_finite() && r > 0.0)) {
        return Err(LoadError::Config("rate must be a positive number"));
    }
    let tls = TlsConnector::from(Arc::new(client_config(&config.root_ca_pem, &config.cert_pem, &config.key_pem)?));
    let name = server_name(&config.addr)?;
    let open = |id: String| {
        let (addr, name, tls) = (config.addr.clone(), name.clone(), tls.clone());
        async move { Connection::open(&addr, name, tls, &id, KEEP_ALIVE_SECS, CONNECT_TIMEOUT).await.map_err(mqtt_err(&id)) }
    };
    let mut subscribers = Vec::with_capacity(config.subscribers);
    for i in 0..config.subscribers {
        let id = format!("{}-s{i}", config.client_prefix);
        let mut conn = open(id.clone()).await?;
        conn.subscribe(std::slice::from_ref(&config.topic), CONNECT_TIMEOUT).await.map_err(mqtt_err(&id))?;
        subscribers.push(conn);
    }
    let mut publishers = Vec::with_capacity(config.publishers);
    for i in 0..config.publishers {
        publishers.push(open(format!("{}-p{i}", config.client_prefix)).await?);
    }
    Ok(Prepared { config, subscribers, publishers })
}

struct PublisherDone {
    sent: u64,
    acked: u64,
    /// When it stopped publishing (`end`, or later if a write blocked past it).
    stopped: Instant,
}

/// One publisher: paced at `rate` (its share) or closed loop, never more than `window`
/// unacknowledged, until `end`; then it waits for the remaining PUBACKs.
async fn publish(
    mut conn: Connection,
    id: String,
    c: Arc<LoadConfig>,
    rate: Option<f64>,
    t0: Instant,
    end: Instant,
) -> Result<PublisherDone, LoadError> {
    let (mut sent, mut acked, window, topic) = (0u64, 0u64, c.window, c.topic.as_str());
    let mut body = vec![b'x'; c.payload];
    tokio::time::sleep_until(t0).await;
    loop {
        let now = Instant::now();
        if now >= end {
            break;
        }
        // Messages due by now: the first at t0, then one every 1/rate.
        let due = rate.map_or(u64::MAX, |r| (now.duration_since(t0).as_secs_f64() * r) as u64 + 1);
        if sent < due && sent - acked < window {
            body[..STAMP].copy_from_slice(&now_ns().to_be_bytes());
            conn.publish(topic, body.clone(), true).await.map_err(mqtt_err(&id))?;
            sent += 1;
            continue;
        }
        // Window full: until a PUBACK; else until the next message is due.
        let wake = match rate {
            Some(r) if sent >= due => (t0 + Duration::from_secs_f64(sent as f64 / r)).min(end),
            _ => end,
        };
        tokio::select! {
            packet = conn.recv() => match packet {
                Some(Packet::Puback(_)) => acked += 1,
                Some(_) => {}
                None => return Err(LoadError::Mqtt { client: id, source: MqttError::Closed }),
            },
            () = tokio::time::sleep_until(wake) => {}
        }
    }
    let stopped = Instant::now();
    let grace = tokio::time::sleep(PUBACK_GRACE);
    tokio::pin!(grace);
    while acked < sent {
        tokio::select! {
            packet = conn.recv() => match packet {
                Some(Packet::Puback(_)) => acked += 1,
                Some(_) => {}
                None => break,
            },
            () = &mut grace => break,
        }
    }
    conn.disconnect().await;
    Ok(PublisherDone { sent, acked, stopped })
}

/// One delivery: when its PUBLISH was written (ns since the Unix epoch) and how long it took
/// to arrive (ns).
#[derive(Debug, Clone, Copy)]
struct Delivery {
    sent_ns: u64,
    latency_ns: u64,
}

/// One subscriber: PUBACKs and timestamps every QoS 1 delivery until told to stop.
async fn subscribe(
    mut conn: Connection,
    id: String,
    delivered: Arc<AtomicU64>,
    mut stop: watch::Receiver<bool>,
) -> Result<Vec<Delivery>, LoadError> {
    let mut latencies = Vec::new();
    loop {
        tokio::select! {
            packet = conn.recv() => match packet {
                Some(Packet::Publish(p)) => {
                    let arrived = now_ns();
                    if let Some(stamp) = p.payload.get(..STAMP).and_then(|s| <[u8; STAMP]>::try_from(s).ok()) {
                        let sent_ns = u64::from_be_bytes(stamp);
                        latencies.push(Delivery { sent_ns, latency_ns: arrived.saturating_sub(sent_ns) });
                    }
                    delivered.fetch_add(1, Ordering::Relaxed);
                    if p.qos_pid.qos() == QoS::Level1 {
                        if let Some(pid) = p.qos_pid.pid() {
                            conn.puback(pid).await.map_err(mqtt_err(&id))?;
                        }
                    }
                }
                Some(_) => {}
                None => return Err(LoadError::Mqtt { client: id, source: MqttError::Closed }),
            },
            _ = stop.changed() => break,
        }
    }
    conn.disconnect().await;
    Ok(latencies)
}

fn ms(ns: u64) -> f64 {
    (ns as f64 / 1e4).round() / 100.0
}

fn percentile(sorted: &[u64], p: f64) -> Option<f64> {
    let last = sorted.len().checked_sub(1)?;
    let i = ((sorted.len() as f64 * p) as usize).min(last);
    Some(ms(sorted[i]))
}

/// The `p` percentile over `expected` deliveries of which `sorted` arrived, the lost ones
/// counting as slower than all: `None` if it falls among the lost.
fn percentile_of_expected(sorted: &[u64], expected: u64, p: f64) -> Option<f64> {
    let rank = (expected as f64 * p) as usize;
    sorted.get(rank.min(usize::try_from(expected).unwrap_or(usize::MAX).saturating_sub(1))).map(|&ns| ms(ns))
}

/// Upper bounds (ms) of the latency histogram's buckets; one more bucket is open.
const HISTOGRAM_BOUNDS_MS: [f64; 14] =
    [0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 5000.0];

fn histogram(sorted: &[u64]) -> Vec<(Option<f64>, u64)> {
    let mut buckets = Vec::with_capacity(HISTOGRAM_BOUNDS_MS.len() + 1);
    let mut start = 0;
    for bound in HISTOGRAM_BOUNDS_MS {
        let end = sorted.partition_point(|&ns| (ns as f64) <= bound * 1e6);
        buckets.push((Some(bound), (end - start) as u64));
        start = end;
    }
    buckets.push((None, (sorted.len() - start) as u64));
    buckets
}

/// The p99 latency of the messages sent in each whole second after `t0_ns`.
fn p99_by_second(deliveries: &[Delivery], t0_ns: u64, seconds: usize) -> Vec<Option<f64>> {
    let mut slots = vec![Vec::new(); seconds.max(1)];
    for d in deliveries {
        let slot = (d.sent_ns.saturating_sub(t0_ns) / 1_000_000_000) as usize;
        if let Some(slot) = slots.get_mut(slot) {
            slot.push(d.latency_ns);
        }
    }
    slots
        .iter_mut()
        .map(|slot| {
            slot.sort_unstable();
            percentile(slot, 0.99)
        })
        .collect()
}

fn round(x: f64, digits: i32) -> f64 {
    let f = 10f64.powi(digits);
    (x * f).round() / f
}

impl Prepared {
    /// Publish for the configured duration, wait for the PUBACKs and the deliveries, report.
    pub async fn run(self) -> Result<LoadReport, LoadError> {
        let c = Arc::new(self.config);
        let own = Some(std::process::id());
        let (cpu0, server0) = (cpu_s(own), cpu_s(c.server_pid));
        let delivered = Arc::new(AtomicU64::new(0));
        let (stop_tx, stop_rx) = watch::channel(false);
        let mut subs = JoinSet::new();
        for (i, conn) in self.subscribers.into_iter().enumerate() {
            let id = format!("{}-s{i}", c.client_prefix);
            subs.spawn(subscribe(conn, id, delivered.clone(), stop_rx.clone()));
        }
        // A moment to let every task reach its start line.
        let t0 = Instant::now() + Duration::from_millis(20);
        let t0_ns = now_ns() + 20_000_000;
        let end = t0 + c.duration;
        let share = c.rate.map(|r| r / c.publishers as f64);
        let mut pubs = JoinSet::new();
        for (i, conn) in self.publishers.into_iter().enumerate() {
            let id = format!("{}-p{i}", c.client_prefix);
            pubs.spawn(publish(conn, id, c.clone(), share, t0, end));
        }
        let (mut sent, mut acked, mut stopped) = (0, 0, end);
        let mut failure = None;
        while let Some(done) = pubs.join_next().await {
            match done {
                Ok(Ok(d)) => (sent, acked, stopped) = (sent + d.sent, acked + d.acked, stopped.max(d.stopped)),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(LoadError::Config("a publisher task panicked"))),
            }
        }
        let published = Instant::now();
        let wall = stopped.duration_since(t0).as_secs_f64().max(f64::EPSILON);
        let expected = sent * c.subscribers as u64;
        let deadline = published + DELIVERY_GRACE;
        while delivered.load(Ordering::Relaxed) < expected && Instant::now() < deadline {
            tokio::time::sleep(DRAIN_POLL).await;
        }
        let drain = published.elapsed().as_secs_f64();
        let (cpu1, server1) = (cpu_s(own), cpu_s(c.server_pid));
        let _ = stop_tx.send(true);
        let mut deliveries = Vec::new();
        while let Some(done) = subs.join_next().await {
            match done {
                Ok(Ok(l)) => deliveries.extend(l),
                Ok(Err(e)) => failure = failure.or(Some(e)),
                Err(_) => failure = failure.or(Some(LoadError::Config("a subscriber task panicked"))),
            }
        }
        if let Some(e) = failure {
            return Err(e);
        }
        let mut latencies: Vec<u64> = deliveries.iter().map(|d| d.latency_ns).collect();
        latencies.sort_unstable();
        let got = delivered.load(Ordering::Relaxed);
        Ok(LoadReport {
            publishers: c.publishers,
            subscribers: c.subscribers,
            offered_rate: c.rate,
            window: c.window,
            payload_bytes: c.payload,
            sent,
            acked,
            expected_deliveries: expected,
            delivered: got,
            delivered_pct: if expected > 0 { round(100.0 * got as f64 / expected as f64, 2) } else { 0.0 },
            wall_s: round(wall, 3),
            drain_s: round(drain, 3),
            publishes_per_s: round(sent as f64 / wall, 1),
            deliveries_per_s: round(got as f64 / wall, 1),
            p50_ms: percentile(&latencies, 0.5),
            p90_ms: percentile(&latencies, 0.9),
            p99_ms: percentile(&latencies, 0.99),
            p999_ms: percentile(&latencies, 0.999),
            max_ms: latencies.last().map(|&l| ms(l)),
            p99_of_expected_ms: percentile_of_expected(&latencies, expected, 0.99),
            latency_histogram_ms: histogram(&latencies),
            p99_ms_by_second: p99_by_second(&deliveries, t0_ns, c.duration.as_secs_f64().ceil() as usize),
            generator_cpu_s: cpu0.zip(cpu1).map(|(a, b)| round(b - a, 3)),
            server_cpu_s: server0.zip(server1).map(|(a, b)| round(b - a, 3)),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percentiles_of_nanoseconds_in_milliseconds() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile(&ns, 0.5), Some(51.0));
        assert_eq!(percentile(&ns, 0.99), Some(100.0));
        assert_eq!(percentile(&[], 0.99), None);
    }

    #[test]
    fn lost_deliveries_count_as_slower_than_any() {
        let ns: Vec<u64> = (1..=100).map(|i| i * 1_000_000).collect();
        assert_eq!(percentile_of_expected(&ns, 100, 0.99), Some(100.0));
        assert_eq!(percentile_of_expected(&ns[..99], 100, 0.99), None);
        assert_eq!(percentile_of_expected(&ns, 200, 0.5), None);
        assert_eq!(percentile_of_expected(&ns, 101, 0.5), Some(51.0));
        assert_eq!(percentile_of_expected(&[], 0, 0.99), None);
    }

    #[test]
    fn histogram_buckets_hold_every_delivery_once() {
        let ns = [50_000, 100_000, 100_001, 3_000_000, 9_000_000_000];
        let buckets = histogram(&ns);
        assert_eq!(buckets.len(), HISTOGRAM_BOUNDS_MS.len() + 1);
        assert_eq!(buckets[0], (Some(0.1), 2));
        assert_eq!(buckets[1], (Some(0.2), 1));
        assert_eq!(buckets[5], (Some(5.0), 1));
        assert_eq!(buckets.last(), Some(&(None, 1)));
        assert_eq!(buckets.iter().map(|(_, n)| n).sum::<u64>(), 5);
    }

    #[test]
    fn p99_by_second_slots_by_send_time() {
        let d = |s: u64, ms: u64| Delivery { sent_ns: 1_000 + s * 1_000_000_000 + 1, latency_ns: ms * 1_000_000 };
        let slots = p99_by_second(&[d(0, 1), d(0, 2), d(2, 7), d(9, 100)], 1_000, 3);
        assert_eq!(slots, vec![Some(2.0), None, Some(7.0)]);
    }
}
