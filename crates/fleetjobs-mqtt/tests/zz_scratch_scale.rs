mod common;
use common::*;
use fleetjobs_mqtt::PeerInfo;
use mqtt_proto::v3::Packet;
use mqtt_proto::QoS;
use std::sync::Arc;
use tokio::io::{duplex, AsyncReadExt, AsyncWriteExt};

fn rss_kb() -> usize {
    let s = std::fs::read_to_string("/proc/self/status").unwrap();
    s.lines().find(|l| l.starts_with("VmRSS")).unwrap().split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scale() {
    let (broker, _) = broker();
    {
        let (_a, b) = duplex(1024);
        let fut = broker.serve_connection(b, PeerInfo::default());
        println!("serve_connection future size: {}", std::mem::size_of_val(&fut));
    }
    let n = 20_000;
    let before = rss_kb();
    let mut clients = Vec::new();
    let start = std::time::Instant::now();
    for i in 0..n {
        let (mut c, s) = duplex(4096);
        let b = Arc::clone(&broker);
        tokio::spawn(async move { b.serve_connection(s, PeerInfo::default()).await });
        let id = format!("thing-{i}");
        c.write_all(Packet::Connect(connect_packet(&id, true)).encode().unwrap().as_ref()).await.unwrap();
        let filter = format!("$aws/things/{id}/jobs/notify-next");
        let sub = Packet::Subscribe(mqtt_proto::v3::Subscribe::new(
            pid(1),
            vec![(mqtt_proto::TopicFilter::try_from(filter.as_str()).unwrap(), QoS::Level1)],
        ));
        c.write_all(sub.encode().unwrap().as_ref()).await.unwrap();
        let mut buf = [0u8; 9];
        c.read_exact(&mut buf).await.unwrap();
        clients.push(c);
    }
    println!("connected {n} in {:?}", start.elapsed());
    let after = rss_kb();
    println!("rss delta {} KiB => {} bytes/conn (incl. duplex buffers)", after - before, (after - before) * 1024 / n);
    let start = std::time::Instant::now();
    let mut total = 0;
    for i in 0..n {
        total += broker.publish(
            &format!("$aws/things/thing-{i}/jobs/notify-next"),
            bytes::Bytes::from_static(b"{}"),
            QoS::Level1,
        );
    }
    println!("published {total} in {:?}", start.elapsed());
    assert_eq!(broker.connection_count(), n);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn baseline() {
    let n = 20_000;
    let before = rss_kb();
    let mut clients = Vec::new();
    for i in 0..n {
        let (mut c, mut s) = duplex(4096);
        tokio::spawn(async move {
            let mut buf = bytes::BytesMut::new();
            s.read_buf(&mut buf).await.unwrap();
            s.write_all(&[0u8; 9]).await.unwrap();
            let mut more = [0u8; 1];
            let _ = s.read(&mut more).await;
        });
        let id = format!("thing-{i}");
        c.write_all(Packet::Connect(connect_packet(&id, true)).encode().unwrap().as_ref()).await.unwrap();
        let mut buf = [0u8; 9];
        c.read_exact(&mut buf).await.unwrap();
        clients.push(c);
    }
    let after = rss_kb();
    println!("baseline rss delta {} KiB => {} bytes/conn", after - before, (after - before) * 1024 / n);
}
