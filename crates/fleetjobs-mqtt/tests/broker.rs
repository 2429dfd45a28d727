//! The broker driven end to end over `tokio::io::duplex`, with `mqtt-proto` packets as the
//! client. Time is paused: timers (keep-alive, expiry, "nothing arrives") run instantly.

#![allow(clippy::unwrap_used, clippy::expect_used)] // test code: a panic is the failure report

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::*;
use fleetjobs_mqtt::BrokerConfig;
use mqtt_proto::v3::{ConnectReturnCode, LastWill, Packet, SubscribeReturnCode, Unsubscribe};
use mqtt_proto::{Protocol, QoS, QosPid, TopicFilter};

fn payload(publish: &mqtt_proto::v3::Publish) -> &str {
    std::str::from_utf8(&publish.payload).unwrap()
}

#[tokio::test(start_paused = true)]
async fn connect_accepted_or_refused_with_return_code() {
    let (broker, hooks) = broker();
    let (_client, connack) = Client::connect_with(&broker, connect_packet("device-1", true)).await;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);
    assert!(!connack.session_present);
    assert_eq!(broker.connection_count(), 1);

    for (client_id, code) in [
        ("refuse-auth", ConnectReturnCode::NotAuthorized),
        ("refuse-creds", ConnectReturnCode::BadUserNameOrPassword),
        ("refuse-unavailable", ConnectReturnCode::ServerUnavailable),
    ] {
        let (mut client, connack) = Client::connect_with(&broker, connect_packet(client_id, true)).await;
        assert_eq!(connack.code, code, "{client_id}");
        assert!(client.expect_closed().await.is_empty());
    }
    assert_eq!(broker.connection_count(), 1);
    let connects = hooks.connects.lock().unwrap();
    assert_eq!(connects[0].0.client_id, "device-1");
    assert!(connects[0].0.clean_session);
}

#[tokio::test(start_paused = true)]
async fn mqtt_3_1_accepted_and_mqtt_5_refused() {
    let (broker, _) = broker();
    let mut connect = connect_packet("old-device", true);
    connect.protocol = Protocol::V310;
    let (_client, connack) = Client::connect_with(&broker, connect).await;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);

    let mut client = Client::open(&broker);
    // CONNECT, protocol "MQTT" level 5, no properties, empty client id.
    client.send_raw(b"\x10\x0d\x00\x04MQTT\x05\x02\x00\x3c\x00\x00\x00").await;
    let received = client.expect_closed().await;
    assert!(
        matches!(&received[..], [Packet::Connack(c)] if c.code == ConnectReturnCode::UnacceptableProtocolVersion),
        "{received:?}"
    );
}

#[tokio::test(start_paused = true)]
async fn empty_client_id_needs_clean_session() {
    let (broker, hooks) = broker();
    let (mut client, connack) = Client::connect_with(&broker, connect_packet("", false)).await;
    assert_eq!(connack.code, ConnectReturnCode::IdentifierRejected);
    client.expect_closed().await;

    let (_a, connack) = Client::connect_with(&broker, connect_packet("", true)).await;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);
    let (_b, connack) = Client::connect_with(&broker, connect_packet("", true)).await;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);
    // Two distinct generated ids: the second did not take over the first.
    assert_eq!(broker.connection_count(), 2);
    let connects = hooks.connects.lock().unwrap();
    assert!(!connects[0].0.client_id.is_empty());
    assert_ne!(connects[0].0.client_id, connects[1].0.client_id);
}

#[tokio::test(start_paused = true)]
async fn routes_with_wildcards_once_per_session_at_highest_qos() {
    let (broker, _) = broker();
    let mut sub = Client::connect(&broker, "sub").await;
    let codes = sub.subscribe(&[("a/+/c", QoS::Level0), ("a/#", QoS::Level1), ("x/+", QoS::Level0)]).await;
    assert_eq!(
        codes,
        vec![SubscribeReturnCode::MaxLevel0, SubscribeReturnCode::MaxLevel1, SubscribeReturnCode::MaxLevel0]
    );
    let mut publisher = Client::connect(&broker, "pub").await;

    publisher.publish_qos1("a/b/c", "both filters").await;
    let delivered = sub.recv_publish().await;
    assert_eq!((&*delivered.topic_name, payload(&delivered)), ("a/b/c", "both filters"));
    assert!(matches!(delivered.qos_pid, QosPid::Level1(_)), "highest granted QoS");
    sub.send(Packet::Puback(delivered.qos_pid.pid().unwrap())).await;

    publisher.publish("a", "parent of a/#").await;
    assert_eq!(payload(&sub.recv_publish().await), "parent of a/#");

    publisher.publish("x/y/z", "too deep for x/+").await;
    publisher.publish("b/c", "no match").await;
    publisher.publish("x/y", "x/+").await;
    let delivered = sub.recv_publish().await;
    assert_eq!(payload(&delivered), "x/+");
    assert_eq!(delivered.qos_pid, QosPid::Level0, "min(publish QoS, granted QoS)");
    sub.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn dollar_topics_are_not_matched_by_leading_wildcards() {
    let (broker, _) = broker();
    let mut wildcards = Client::connect(&broker, "wildcards").await;
    wildcards.subscribe(&[("#", QoS::Level0), ("+/things/x", QoS::Level0)]).await;
    let mut explicit = Client::connect(&broker, "explicit").await;
    explicit.subscribe(&[("$aws/things/+", QoS::Level0)]).await;

    assert_eq!(broker.publish("$aws/things/x", Bytes::from_static(b"sys"), QoS::Level0), 1);
    assert_eq!(payload(&explicit.recv_publish().await), "sys");
    wildcards.expect_nothing().await;

    assert_eq!(broker.publish("aws/things/x", Bytes::from_static(b"plain"), QoS::Level0), 1);
    assert_eq!(payload(&wildcards.recv_publish().await), "plain");
}

#[tokio::test(start_paused = true)]
async fn suback_failure_for_denied_or_invalid_filters_and_qos2_granted_as_1() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    // SUBSCRIBE pid 7: "ok/1" QoS 1, "secret/x" QoS 0 (denied), "a/#/b" QoS 0 (invalid), "q" QoS 2.
    let mut body = vec![0x00, 0x07];
    for (filter, qos) in [("ok/1", 1u8), ("secret/x", 0), ("a/#/b", 0), ("q", 2)] {
        body.extend_from_slice(&(filter.len() as u16).to_be_bytes());
        body.extend_from_slice(filter.as_bytes());
        body.push(qos);
    }
    let mut packet = vec![0x82, body.len() as u8];
    packet.extend_from_slice(&body);
    client.send_raw(&packet).await;
    let Packet::Suback(suback) = client.recv().await else { panic!("expected SUBACK") };
    assert_eq!(suback.pid, pid(7));
    assert_eq!(
        suback.topics,
        vec![
            SubscribeReturnCode::MaxLevel1,
            SubscribeReturnCode::Failure,
            SubscribeReturnCode::Failure,
            SubscribeReturnCode::MaxLevel1,
        ]
    );
    assert_eq!(broker.publish("secret/x", Bytes::new(), QoS::Level0), 0);
    assert_eq!(broker.publish("q", Bytes::new(), QoS::Level1), 1);
}

#[tokio::test(start_paused = true)]
async fn audience_under_a_prefix_follows_subscriptions_taps_and_sessions() {
    let (broker, _) = broker();
    let events = "$aws/events";
    assert!(!broker.has_audience_under(events));
    let mut client = Client::connect(&broker, "device").await;
    client.subscribe(&[("#", QoS::Level0), ("$aws/things/device/jobs/notify", QoS::Level1)]).await;
    assert!(!broker.has_audience_under(events), "# does not match $ topics");
    for filter in ["$aws/events/#", "$aws/+/job/+/completed", "$aws/events/jobExecution/j/succeeded"] {
        client.subscribe(&[(filter, QoS::Level1)]).await;
        assert!(broker.has_audience_under(events), "{filter}");
        client.send(Unsubscribe::new(pid(9), vec![TopicFilter::try_from(filter).unwrap()])).await;
        assert_eq!(client.recv().await, Packet::Unsuback(pid(9)));
        assert!(!broker.has_audience_under(events), "{filter} unsubscribed");
    }

    // A tap listens too, until dropped.
    let tap = broker.tap(vec!["$aws/events/#".into()], 4).unwrap();
    assert!(broker.has_audience_under(events));
    drop(tap);
    assert!(!broker.has_audience_under(events));

    // A clean session's subscriptions end with it; a persistent one's outlive the connection.
    client.subscribe(&[("$aws/events/#", QoS::Level1)]).await;
    client.disconnect().await;
    wait_until("the clean session ended", || !broker.has_audience_under(events)).await;
    let (mut persistent, _) = Client::connect_session(&broker, "keeper", false).await;
    persistent.subscribe(&[("$aws/events/job/#", QoS::Level1)]).await;
    persistent.disconnect().await;
    wait_until("the connection closed", || !broker.is_connected("keeper")).await;
    assert!(broker.has_audience_under(events), "an offline persistent session still receives");
}

#[tokio::test(start_paused = true)]
async fn unsubscribe_stops_delivery() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    client.subscribe(&[("t/+", QoS::Level0)]).await;
    assert_eq!(broker.publish("t/1", Bytes::from_static(b"x"), QoS::Level0), 1);
    client.recv_publish().await;
    client.send(Unsubscribe::new(pid(9), vec![TopicFilter::try_from("t/+").unwrap()])).await;
    assert_eq!(client.recv().await, Packet::Unsuback(pid(9)));
    assert_eq!(broker.publish("t/1", Bytes::from_static(b"x"), QoS::Level0), 0);
}

#[tokio::test(start_paused = true)]
async fn denied_publish_disconnects_the_client() {
    let (broker, _) = broker();
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("forbidden/#", QoS::Level0)]).await;

    for qos_pid in [QosPid::Level0, QosPid::Level1(pid(1))] {
        let mut client = Client::connect(&broker, "offender").await;
        client.send(publish_packet("forbidden/x", "nope", qos_pid)).await;
        assert!(client.expect_closed().await.is_empty(), "no PUBACK for a denied publish");
    }
    watcher.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn a_retained_publish_needs_its_own_permission() {
    let (broker, _) = broker();
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("volatile/#", QoS::Level0)]).await;
    let mut client = Client::connect(&broker, "device").await;
    client.publish("volatile/x", "plain").await;
    assert_eq!(payload(&watcher.recv_publish().await), "plain", "a plain publish is allowed");

    let mut retained = publish_packet("volatile/x", "kept", QosPid::Level1(pid(1)));
    retained.retain = true;
    client.send(retained).await;
    assert!(client.expect_closed().await.is_empty(), "no PUBACK for a retained publish it may not make");
    watcher.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn receive_is_authorized_per_delivery() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    client.subscribe(&[("#", QoS::Level0)]).await;
    let mut publisher = Client::connect(&broker, "publisher").await;
    publisher.publish("hidden/x", "not for you").await;
    publisher.publish("visible/x", "for you").await;
    assert_eq!(payload(&client.recv_publish().await), "for you");
    assert_eq!(broker.publish("hidden/y", Bytes::new(), QoS::Level0), 0);
}

#[tokio::test(start_paused = true)]
async fn request_replies_go_to_the_requester_only() {
    let (broker, _) = broker();
    let mut eavesdropper = Client::connect(&broker, "eavesdropper").await;
    eavesdropper.subscribe(&[("reply/#", QoS::Level1), ("req/#", QoS::Level1)]).await;

    // Not subscribed: the reply still arrives, at QoS 0.
    let mut requester = Client::connect(&broker, "requester").await;
    requester.send(publish_packet("req/get", "hello", QosPid::Level1(pid(5)))).await;
    let reply = requester.recv_publish().await;
    assert_eq!((&*reply.topic_name, payload(&reply), reply.qos_pid), ("reply/get", "hello", QosPid::Level0));
    assert_eq!(requester.recv().await, Packet::Puback(pid(5)));

    // Subscribed at QoS 1: the reply comes at QoS 1. A reply the requester may not receive is dropped.
    requester.subscribe(&[("reply/+", QoS::Level1)]).await;
    requester.publish("req/hidden", "dropped").await;
    requester.publish("req/get", "again").await;
    let reply = requester.recv_publish().await;
    assert_eq!(payload(&reply), "again");
    assert!(matches!(reply.qos_pid, QosPid::Level1(_)));

    // Requests are not routed to subscribers, replies are not either.
    eavesdropper.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn requests_of_one_connection_are_handled_in_order() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    // The first request takes 200 ms, the second none: the second still waits for the first.
    client.publish("req/one", "slow first").await;
    client.publish("req/two", "fast second").await;
    assert_eq!(payload(&client.recv_publish().await), "slow first");
    assert_eq!(payload(&client.recv_publish().await), "fast second");
}

#[tokio::test(start_paused = true)]
async fn qos1_publish_is_acknowledged_after_the_request_completes() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    client.send(publish_packet("req/x", "slow", QosPid::Level1(pid(42)))).await;
    // Reply first, then the PUBACK.
    assert_eq!(payload(&client.recv_publish().await), "slow");
    assert_eq!(client.recv().await, Packet::Puback(pid(42)));
}

#[tokio::test(start_paused = true)]
async fn outbound_qos1_respects_the_inflight_window() {
    let (broker, _) = broker_with(BrokerConfig { max_inflight: 2, ..BrokerConfig::default() });
    let mut client = Client::connect(&broker, "device").await;
    client.subscribe(&[("t", QoS::Level1)]).await;
    for i in 0..3 {
        assert_eq!(broker.publish("t", Bytes::from(i.to_string()), QoS::Level1), 1);
    }
    let first = client.recv_publish().await;
    let second = client.recv_publish().await;
    assert_eq!((payload(&first), payload(&second)), ("0", "1"));
    assert_ne!(first.qos_pid, second.qos_pid);
    client.expect_nothing().await;
    client.send(Packet::Puback(first.qos_pid.pid().unwrap())).await;
    assert_eq!(payload(&client.recv_publish().await), "2");
}

#[tokio::test(start_paused = true)]
async fn retained_messages_are_delivered_on_subscribe() {
    let (broker, _) = broker();
    let mut publisher = Client::connect(&broker, "publisher").await;
    let mut retained = publish_packet("status/a", "up", QosPid::Level1(pid(1)));
    retained.retain = true;
    publisher.send(retained.clone()).await;
    assert_eq!(publisher.recv().await, Packet::Puback(pid(1)));
    retained.topic_name = topic("status/b");
    retained.payload = Bytes::from_static(b"down");
    retained.qos_pid = QosPid::Level0;
    publisher.send(retained.clone()).await;
    publisher.sync().await;

    let mut late = Client::connect(&broker, "late").await;
    late.subscribe(&[("status/a", QoS::Level0)]).await;
    let message = late.recv_publish().await;
    assert_eq!((&*message.topic_name, payload(&message), message.retain), ("status/a", "up", true));
    assert_eq!(message.qos_pid, QosPid::Level0);

    // Live deliveries carry RETAIN 0.
    late.subscribe(&[("status/b", QoS::Level0)]).await;
    assert_eq!(payload(&late.recv_publish().await), "down");
    publisher.send(retained.clone()).await;
    let live = late.recv_publish().await;
    assert!(!live.retain);

    // An empty retained payload clears the topic.
    retained.payload = Bytes::new();
    publisher.send(retained).await;
    publisher.sync().await;
    let mut later = Client::connect(&broker, "later").await;
    later.subscribe(&[("status/+", QoS::Level1)]).await;
    let message = later.recv_publish().await;
    assert_eq!((&*message.topic_name, message.retain), ("status/a", true));
    assert!(matches!(message.qos_pid, QosPid::Level1(_)));
    later.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn will_is_published_on_abrupt_close_only() {
    let (broker, hooks) = broker();
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("wills/+", QoS::Level1)]).await;

    let with_will = |client_id: &str| {
        let mut connect = connect_packet(client_id, true);
        connect.last_will =
            Some(LastWill::new(QoS::Level1, topic(&format!("wills/{client_id}")), Bytes::from_static(b"gone")));
        connect
    };

    let (polite, _) = Client::connect_with(&broker, with_will("polite")).await;
    polite.disconnect().await;

    let (abrupt, _) = Client::connect_with(&broker, with_will("abrupt")).await;
    drop(abrupt);
    let will = watcher.recv_publish().await;
    assert_eq!((&*will.topic_name, payload(&will)), ("wills/abrupt", "gone"));
    assert!(matches!(will.qos_pid, QosPid::Level1(_)));
    watcher.expect_nothing().await;

    let disconnected = hooks.disconnected.lock().unwrap().clone();
    assert_eq!(disconnected, vec!["polite", "abrupt"]);
    assert_eq!(broker.connection_count(), 1);
}

#[tokio::test(start_paused = true)]
async fn will_goes_through_service_requests_and_authorization() {
    let (broker, _) = broker();
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("#", QoS::Level0)]).await;
    for will_topic in ["forbidden/will", "req/will"] {
        let mut connect = connect_packet("device", true);
        connect.last_will = Some(LastWill::new(QoS::Level0, topic(will_topic), Bytes::from_static(b"x")));
        let (client, _) = Client::connect_with(&broker, connect).await;
        drop(client);
    }
    watcher.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn same_client_id_takes_over() {
    let (broker, _) = broker();
    let mut first = Client::connect(&broker, "device").await;
    first.subscribe(&[("t", QoS::Level0)]).await;
    let mut second = Client::connect(&broker, "device").await;
    first.expect_closed().await;
    assert_eq!(broker.connection_count(), 1);
    // Clean session: the first connection's subscription is gone.
    assert_eq!(broker.publish("t", Bytes::new(), QoS::Level0), 0);
    second.sync().await;
}

#[tokio::test(start_paused = true)]
async fn silent_client_is_dropped_after_one_and_a_half_keep_alive() {
    let (broker, _) = broker();
    let mut connect = connect_packet("device", true);
    connect.keep_alive = 10;
    let (mut client, _) = Client::connect_with(&broker, connect).await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    client.sync().await;
    tokio::time::sleep(Duration::from_secs(14)).await;
    client.sync().await;
    let start = tokio::time::Instant::now();
    client.expect_closed().await;
    let waited = start.elapsed();
    assert!(waited >= Duration::from_secs(15) && waited < Duration::from_secs(16), "{waited:?}");
}

#[tokio::test(start_paused = true)]
async fn persistent_session_resumes_with_queued_and_unacked_messages() {
    let (broker, _) = broker();
    let (mut client, present) = Client::connect_session(&broker, "device", false).await;
    assert!(!present);
    client.subscribe(&[("jobs/#", QoS::Level1)]).await;

    // Delivered but never acknowledged.
    assert_eq!(broker.publish("jobs/1", Bytes::from_static(b"one"), QoS::Level1), 1);
    let unacked = client.recv_publish().await;
    drop(client);
    tokio::time::sleep(Duration::from_millis(10)).await;

    // Offline: QoS 1 is queued, QoS 0 is not.
    assert_eq!(broker.publish("jobs/2", Bytes::from_static(b"two"), QoS::Level1), 1);
    assert_eq!(broker.publish("jobs/3", Bytes::from_static(b"three"), QoS::Level0), 0);

    let (mut client, present) = Client::connect_session(&broker, "device", false).await;
    assert!(present);
    let resent = client.recv_publish().await;
    assert_eq!((payload(&resent), resent.dup, resent.qos_pid), ("one", true, unacked.qos_pid));
    let queued = client.recv_publish().await;
    assert_eq!((payload(&queued), queued.dup), ("two", false));
    client.send(Packet::Puback(resent.qos_pid.pid().unwrap())).await;
    client.send(Packet::Puback(queued.qos_pid.pid().unwrap())).await;
    client.expect_nothing().await;

    // The subscription survived too.
    assert_eq!(broker.publish("jobs/4", Bytes::from_static(b"four"), QoS::Level1), 1);
    assert_eq!(payload(&client.recv_publish().await), "four");

    // A clean session discards it all.
    drop(client);
    let (mut client, present) = Client::connect_session(&broker, "device", true).await;
    assert!(!present);
    client.expect_nothing().await;
    assert_eq!(broker.publish("jobs/5", Bytes::new(), QoS::Level1), 0);
}

#[tokio::test(start_paused = true)]
async fn persistent_session_expires_offline() {
    let expiry = Duration::from_secs(60);
    let (broker, _) = broker_with(BrokerConfig { persistent_session_expiry: expiry, ..BrokerConfig::default() });
    let (mut client, _) = Client::connect_session(&broker, "device", false).await;
    client.subscribe(&[("t", QoS::Level1)]).await;
    client.disconnect().await;

    tokio::time::sleep(expiry / 2).await;
    let (client, present) = Client::connect_session(&broker, "device", false).await;
    assert!(present);
    client.disconnect().await;

    tokio::time::sleep(expiry + Duration::from_secs(1)).await;
    assert_eq!(broker.publish("t", Bytes::new(), QoS::Level1), 0, "subscription expired");
    let (_client, present) = Client::connect_session(&broker, "device", false).await;
    assert!(!present);
}

#[tokio::test(start_paused = true)]
async fn garbage_closes_only_that_connection() {
    let (broker, _) = broker();
    let mut bystander = Client::connect(&broker, "bystander").await;
    bystander.subscribe(&[("t", QoS::Level0)]).await;

    let garbage: [&[u8]; 4] =
        [b"GET / HTTP/1.1\r\nHost: x\r\n\r\n", &[0xff; 64], &[0x00, 0x01, 0x02, 0x03], &[0x10, 0x02, 0xde, 0xad]];
    for bytes in garbage {
        let mut client = Client::open(&broker);
        client.send_raw(bytes).await;
        assert!(client.expect_closed().await.is_empty(), "{bytes:?}");
    }
    // Garbage after a valid CONNECT, too.
    let mut client = Client::connect(&broker, "device").await;
    client.send_raw(&[0x3f, 0x05, 1, 2, 3, 4, 5]).await;
    client.expect_closed().await;

    let mut fresh = Client::connect(&broker, "fresh").await;
    fresh.publish("t", "still serving").await;
    assert_eq!(payload(&bystander.recv_publish().await), "still serving");
}

#[tokio::test(start_paused = true)]
async fn first_packet_must_be_connect_in_time() {
    let (broker, _) = broker();
    let mut client = Client::open(&broker);
    client.send(Packet::Pingreq).await;
    assert!(client.expect_closed().await.is_empty());

    let start = tokio::time::Instant::now();
    let mut client = Client::open(&broker);
    assert!(client.expect_closed().await.is_empty());
    assert!(start.elapsed() >= BrokerConfig::default().connect_timeout);
}

#[tokio::test(start_paused = true)]
async fn oversize_packet_closes_the_connection() {
    let (broker, _) = broker_with(BrokerConfig { max_packet_size: 1024, ..BrokerConfig::default() });
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("t", QoS::Level0)]).await;
    let mut client = Client::connect(&broker, "device").await;
    client.publish("t", &"x".repeat(1000)).await;
    assert_eq!(watcher.recv_publish().await.payload.len(), 1000);
    client.publish("t", &"x".repeat(2000)).await;
    client.expect_closed().await;
    watcher.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn protocol_violations_close_the_connection() {
    let (broker, _) = broker();
    let violations: Vec<Packet> = vec![
        publish_packet("t", "qos2", QosPid::Level2(pid(1))).into(),
        connect_packet("device", true).into(),
        Packet::Pingresp,
        Packet::Pubrel(pid(1)),
    ];
    for packet in violations {
        let mut client = Client::connect(&broker, "device").await;
        client.send(packet.clone()).await;
        assert!(client.expect_closed().await.is_empty(), "{packet:?}");
    }
}

#[tokio::test(start_paused = true)]
async fn disconnect_where_kicks_matching_live_sessions() {
    let (broker, hooks) = broker();
    let mut a = Client::connect(&broker, "revoked-a").await;
    let mut b = Client::connect(&broker, "revoked-b").await;
    let mut c = Client::connect(&broker, "fine").await;
    // An offline persistent session does not count.
    let (offline, _) = Client::connect_session(&broker, "revoked-offline", false).await;
    offline.disconnect().await;

    assert_eq!(broker.connection_count(), 3);
    assert_eq!(broker.disconnect_where(|session| session.client_id.starts_with("revoked")), 2);
    a.expect_closed().await;
    b.expect_closed().await;
    c.sync().await;
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(broker.connection_count(), 1);
    assert_eq!(hooks.disconnected.lock().unwrap().len(), 3);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_does_not_read_holds_nobody_up() {
    let (broker, _) = broker_with(BrokerConfig { max_queued_per_session: 10, ..BrokerConfig::default() });
    let mut stuck = Client::connect(&broker, "stuck").await;
    stuck.subscribe(&[("t", QoS::Level1)]).await;
    let mut healthy = Client::connect(&broker, "healthy").await;
    healthy.subscribe(&[("t", QoS::Level0)]).await;

    // 64 KiB payloads: the stuck client's pipe and queue fill up after a few.
    let big = Bytes::from(vec![b'x'; 64 * 1024]);
    let mut queued_for_stuck = 0;
    for _ in 0..50 {
        let queued = broker.publish("t", big.clone(), QoS::Level1);
        assert!(queued >= 1);
        queued_for_stuck += queued - 1;
        assert_eq!(healthy.recv_publish().await.payload.len(), big.len());
    }
    assert!(queued_for_stuck < 50, "the stuck client's queue is bounded");
    healthy.sync().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_that_stops_reading_is_dropped_after_one_and_a_half_keep_alive() {
    let (broker, hooks) = broker_with(BrokerConfig { max_queued_per_session: 4, ..BrokerConfig::default() });
    let mut connect = connect_packet("stuck", true);
    connect.keep_alive = 10;
    let (mut stuck, _) = Client::connect_with(&broker, connect).await;
    stuck.subscribe(&[("t", QoS::Level0)]).await;
    let big = Bytes::from(vec![b'x'; 64 * 1024]);
    for _ in 0..10 {
        broker.publish("t", big.clone(), QoS::Level0);
    }
    // Still sending keep-alives (whose answers cannot be written), never reading.
    for _ in 0..2 {
        tokio::time::sleep(Duration::from_secs(5)).await;
        stuck.send(Packet::Pingreq).await;
    }
    assert_eq!(broker.connection_count(), 1);
    tokio::time::sleep(Duration::from_secs(6)).await;
    assert_eq!(broker.connection_count(), 0);
    assert_eq!(*hooks.disconnected.lock().unwrap(), vec!["stuck"]);
}

// AWS IoT Core's message broker limits: one test per bound.

#[tokio::test(start_paused = true)]
async fn client_id_longer_than_128_bytes_is_rejected() {
    let (broker, hooks) = broker();
    let (_ok, connack) = Client::connect_with(&broker, connect_packet(&"c".repeat(128), true)).await;
    assert_eq!(connack.code, ConnectReturnCode::Accepted);
    let (mut refused, connack) = Client::connect_with(&broker, connect_packet(&"c".repeat(129), true)).await;
    assert_eq!(connack.code, ConnectReturnCode::IdentifierRejected);
    assert!(refused.expect_closed().await.is_empty());
    assert_eq!(broker.connection_count(), 1);
    assert_eq!(hooks.connects.lock().unwrap().len(), 1, "refused before the hooks are asked");
}

/// Reserved topics that must keep working: the longest jobs topic (128-byte thing name, 64-byte
/// job id), and a Basic Ingest topic with 10 slashes, 7 of them after the reserved prefix.
fn reserved_topics() -> [String; 2] {
    [
        format!("$aws/things/{}/jobs/{}/update/accepted", "t".repeat(128), "j".repeat(64)),
        "$aws/rules/my_rule/a/b/c/d/e/f/g/h".to_owned(),
    ]
}

#[tokio::test(start_paused = true)]
async fn publishing_beyond_the_topic_size_or_slash_limit_closes_the_connection() {
    let (broker, _) = broker();
    let mut sub = Client::connect(&broker, "sub").await;
    let [jobs, ingest] = reserved_topics();
    let within = ["x".repeat(256), "a/b/c/d/e/f/g/h".to_owned(), jobs, ingest];
    for topic in &within {
        assert_eq!(sub.subscribe(&[(topic, QoS::Level0)]).await, vec![SubscribeReturnCode::MaxLevel0], "{topic}");
    }
    let mut publisher = Client::connect(&broker, "publisher").await;
    for topic in &within {
        publisher.publish(topic, "ok").await;
        assert_eq!(&*sub.recv_publish().await.topic_name, topic.as_str());
    }
    for topic in ["x".repeat(257), "a/b/c/d/e/f/g/h/i".to_owned(), format!("$aws/events/{}", "a/".repeat(7))] {
        let mut client = Client::connect(&broker, "offender").await;
        client.publish(&topic, "too big").await;
        assert!(client.expect_closed().await.is_empty(), "{topic}");
    }
    sub.expect_nothing().await;
}

#[tokio::test(start_paused = true)]
async fn filters_beyond_the_size_or_slash_limit_get_0x80() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    let long_filter = "x".repeat(257);
    let [jobs, ingest] = reserved_topics();
    let codes = client
        .subscribe(&[
            (&long_filter, QoS::Level1),
            ("a/+/c/d/e/f/g/h/#", QoS::Level1),
            (&jobs, QoS::Level1),
            (&ingest, QoS::Level1),
            ("$aws/things/+/jobs/+/update/#", QoS::Level1),
            ("b/+/c/d/e/f/g/#", QoS::Level1),
        ])
        .await;
    use SubscribeReturnCode::{Failure, MaxLevel1};
    assert_eq!(codes, vec![Failure, Failure, MaxLevel1, MaxLevel1, MaxLevel1, MaxLevel1]);
    assert_eq!(broker.publish("a/b/c/d/e/f/g/h/i", Bytes::new(), QoS::Level0), 0, "the refused filter is not indexed");
    client.sync().await;
}

#[tokio::test(start_paused = true)]
async fn filters_after_the_eighth_of_one_subscribe_get_0x80() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    let filters: Vec<String> = (0..9).map(|i| format!("f/{i}")).collect();
    let request: Vec<_> = filters.iter().map(|f| (f.as_str(), QoS::Level0)).collect();
    let codes = client.subscribe(&request).await;
    assert_eq!(codes[..8], [SubscribeReturnCode::MaxLevel0; 8]);
    assert_eq!(codes[8], SubscribeReturnCode::Failure);
    assert_eq!(broker.publish("f/7", Bytes::new(), QoS::Level0), 1);
    assert_eq!(&*client.recv_publish().await.topic_name, "f/7");
    assert_eq!(broker.publish("f/8", Bytes::new(), QoS::Level0), 0);
    // The connection goes on: the ninth alone is granted.
    assert_eq!(client.subscribe(&[("f/8", QoS::Level0)]).await, vec![SubscribeReturnCode::MaxLevel0]);
}

#[tokio::test(start_paused = true)]
async fn the_51st_subscription_of_a_session_gets_0x80() {
    let (broker, _) = broker();
    let mut client = Client::connect(&broker, "device").await;
    let filters: Vec<String> = (0..51).map(|i| format!("s/{i}")).collect();
    for batch in filters[..50].chunks(8) {
        let request: Vec<_> = batch.iter().map(|f| (f.as_str(), QoS::Level0)).collect();
        assert!(client.subscribe(&request).await.iter().all(|code| *code == SubscribeReturnCode::MaxLevel0));
    }
    assert_eq!(client.subscribe(&[(&filters[50], QoS::Level0)]).await, vec![SubscribeReturnCode::Failure]);
    assert_eq!(broker.publish("s/50", Bytes::new(), QoS::Level0), 0);
    // Subscribing again to a filter it has is no new subscription.
    assert_eq!(client.subscribe(&[("s/0", QoS::Level1)]).await, vec![SubscribeReturnCode::MaxLevel1]);
    client.send(Unsubscribe::new(pid(999), vec![TopicFilter::try_from("s/1").unwrap()])).await;
    assert_eq!(client.recv().await, Packet::Unsuback(pid(999)));
    assert_eq!(client.subscribe(&[(&filters[50], QoS::Level0)]).await, vec![SubscribeReturnCode::MaxLevel0]);
}

#[tokio::test(start_paused = true)]
async fn keep_alive_zero_means_1200_seconds() {
    let (broker, hooks) = broker();
    let (mut client, _) = Client::connect_with(&broker, connect_packet("device", true)).await;
    client.sync().await;
    tokio::time::sleep(Duration::from_secs(1799)).await;
    assert_eq!(broker.connection_count(), 1);
    tokio::time::sleep(Duration::from_secs(2)).await;
    client.expect_closed().await;
    assert_eq!(broker.connection_count(), 0);
    assert_eq!(*hooks.disconnected.lock().unwrap(), vec!["device"]);
}

#[tokio::test(start_paused = true)]
async fn queue_bytes_bound_drops_the_oldest_qos0_first() {
    // Room for 20 messages of a 1-byte topic and a 10,000-byte payload.
    let config = BrokerConfig { max_queued_bytes_per_session: 20 * 10_001, ..BrokerConfig::default() };
    let (broker, _) = broker_with(config);
    let mut slow = Client::connect(&broker, "slow").await;
    slow.subscribe(&[("t", QoS::Level0)]).await;
    // 2 MB for a client that reads nothing meanwhile (far fewer than the 1000 queued items).
    for i in 0..200 {
        let mut payload = i.to_string().into_bytes();
        payload.resize(10_000, b' ');
        assert_eq!(broker.publish("t", Bytes::from(payload), QoS::Level0), 1);
    }
    let mut received = Vec::new();
    loop {
        let publish = slow.recv_publish().await;
        let i: usize = std::str::from_utf8(&publish.payload).unwrap().trim_end().parse().unwrap();
        received.push(i);
        if i == 199 {
            break;
        }
    }
    slow.expect_nothing().await;
    // Whatever the writer took before the queue filled arrives first, in order; then the newest
    // that fit, without a gap: what was dropped was always the oldest queued.
    assert!(received.windows(2).all(|pair| pair[0] < pair[1]), "in order: {received:?}");
    assert!(received.len() < 100, "the bytes bound dropped most: {}", received.len());
    let newest: Vec<usize> = (200 - 20..200).collect();
    assert!(received.ends_with(&newest), "{received:?}");
}

#[tokio::test(start_paused = true)]
async fn a_client_that_takes_no_qos1_messages_is_disconnected_after_the_grace_period() {
    let config = BrokerConfig {
        max_queued_bytes_per_session: 100_000,
        stalled_reader_grace: Duration::from_secs(30),
        ..BrokerConfig::default()
    };
    let (broker, hooks) = broker_with(config);
    let mut stuck = Client::connect(&broker, "stuck").await;
    stuck.subscribe(&[("t", QoS::Level1)]).await;
    let mut healthy = Client::connect(&broker, "healthy").await;
    healthy.subscribe(&[("t", QoS::Level0)]).await;
    // Read (so its pipe is drained) but never acknowledged, these fill the session's bytes.
    let payload = Bytes::from(vec![b'x'; 10_000]);
    let mut queued_for_stuck = 0;
    for _ in 0..20 {
        queued_for_stuck += broker.publish("t", payload.clone(), QoS::Level1) - 1;
        healthy.recv_publish().await;
    }
    assert!(queued_for_stuck < 11, "{queued_for_stuck}");
    tokio::time::sleep(Duration::from_secs(29)).await;
    broker.publish("t", payload.clone(), QoS::Level1);
    healthy.recv_publish().await;
    assert_eq!(broker.connection_count(), 2, "within the grace period");
    tokio::time::sleep(Duration::from_secs(1)).await;
    broker.publish("t", payload.clone(), QoS::Level1);
    healthy.recv_publish().await;
    stuck.expect_closed().await;
    wait_until("the stuck client is gone", || broker.connection_count() == 1).await;
    assert_eq!(*hooks.disconnected.lock().unwrap(), vec!["stuck"]);
    healthy.sync().await;
}

/// Connect, retrying while the server is full.
async fn connect_when_admitted(broker: &TestBroker, client_id: &str) -> Client {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        if let (client, Some(connack)) = Client::try_connect_with(broker, connect_packet(client_id, true)).await {
            assert_eq!(connack.code, ConnectReturnCode::Accepted);
            return client;
        }
        assert!(tokio::time::Instant::now() < deadline, "{client_id} never admitted");
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(start_paused = true)]
async fn connections_beyond_the_cap_are_closed_at_once() {
    let (broker, _) = broker_with(BrokerConfig { max_connections: 2, ..BrokerConfig::default() });
    let first = Client::connect(&broker, "first").await;
    // A connection that has not sent CONNECT yet holds its place too.
    let mut silent = Client::open(&broker);
    let (mut extra, connack) = Client::try_connect_with(&broker, connect_packet("extra", true)).await;
    assert!(connack.is_none(), "closed without a CONNACK");
    assert!(extra.expect_closed().await.is_empty());

    // A freed place is taken again, and only once.
    first.disconnect().await;
    let _third = connect_when_admitted(&broker, "third").await;
    let (_, connack) = Client::try_connect_with(&broker, connect_packet("fourth", true)).await;
    assert!(connack.is_none());
    // The silent connection ends at the CONNECT timeout and frees its place.
    assert!(silent.expect_closed().await.is_empty());
    let _fifth = connect_when_admitted(&broker, "fifth").await;
    assert_eq!(broker.connection_count(), 2);
}

#[tokio::test(start_paused = true)]
async fn retained_messages_are_bounded_but_still_delivered() {
    let config = BrokerConfig { max_retained_messages: 2, max_retained_bytes: 1000, ..BrokerConfig::default() };
    let (broker, hooks) = broker_with(config);
    let mut live = Client::connect(&broker, "live").await;
    live.subscribe(&[("r/+", QoS::Level0)]).await;
    let mut publisher = Client::connect(&broker, "publisher").await;
    let retained = |topic: &str, payload: &str| {
        let mut publish = publish_packet(topic, payload, QosPid::Level0);
        publish.retain = true;
        publish
    };
    for topic in ["r/a", "r/b", "r/c"] {
        publisher.send(retained(topic, "1")).await;
        assert_eq!(&*live.recv_publish().await.topic_name, topic, "delivered whether retained or not");
    }
    // Too large for the bytes, even on a retained topic.
    publisher.send(retained("r/a", &"x".repeat(1000))).await;
    assert_eq!(live.recv_publish().await.payload.len(), 1000);
    // Replacing a retained topic within the bytes is no new message.
    publisher.send(retained("r/b", "2")).await;
    live.recv_publish().await;
    publisher.sync().await;

    let mut late = Client::connect(&broker, "late").await;
    late.subscribe(&[("r/+", QoS::Level0)]).await;
    let mut got: Vec<(String, String)> = Vec::new();
    for _ in 0..2 {
        let message = late.recv_publish().await;
        got.push((message.topic_name.to_string(), payload(&message).to_owned()));
    }
    got.sort();
    assert_eq!(got, vec![("r/a".into(), "1".into()), ("r/b".into(), "2".into())]);
    late.expect_nothing().await;
    let durable: Vec<_> = hooks.durable_retained.lock().unwrap().keys().cloned().collect();
    assert_eq!(durable, vec!["r/a", "r/b"]);
}

#[tokio::test(start_paused = true)]
async fn retained_messages_are_durable_before_the_puback_and_reloaded() {
    let (broker, hooks) = broker();
    let mut publisher = Client::connect(&broker, "publisher").await;
    let mut publish = publish_packet("slow-storage/status", "up", QosPid::Level1(pid(7)));
    publish.retain = true;
    publisher.send(publish.clone()).await;
    assert_eq!(publisher.recv().await, Packet::Puback(pid(7)));
    assert!(hooks.durable_retained.lock().unwrap().contains_key("slow-storage/status"), "durable before the PUBACK");

    // Storage failing: delivered, acknowledged, not retained.
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("unstorable/+", QoS::Level0)]).await;
    let mut failing = publish_packet("unstorable/x", "lost", QosPid::Level1(pid(8)));
    failing.retain = true;
    publisher.send(failing).await;
    assert_eq!(publisher.recv().await, Packet::Puback(pid(8)));
    assert_eq!(payload(&watcher.recv_publish().await), "lost");

    // A new broker (a restart) over the same storage.
    let restarted = fleetjobs_mqtt::Broker::new(hooks.clone(), BrokerConfig::default());
    let mut late = Client::connect(&restarted, "late").await;
    late.subscribe(&[("slow-storage/#", QoS::Level1), ("unstorable/#", QoS::Level1)]).await;
    let message = late.recv_publish().await;
    assert_eq!((&*message.topic_name, payload(&message), message.retain), ("slow-storage/status", "up", true));
    assert!(matches!(message.qos_pid, QosPid::Level1(_)), "kept at the QoS it was published with");
    late.expect_nothing().await;

    // Clearing it is durable too.
    publish.payload = Bytes::new();
    publish.qos_pid = QosPid::Level1(pid(9));
    publisher.send(publish).await;
    assert_eq!(publisher.recv().await, Packet::Puback(pid(9)));
    assert!(hooks.durable_retained.lock().unwrap().is_empty());
}

#[tokio::test(start_paused = true)]
async fn a_will_beyond_the_topic_limits_is_not_published() {
    let (broker, hooks) = broker();
    let mut watcher = Client::connect(&broker, "watcher").await;
    watcher.subscribe(&[("wills/#", QoS::Level0)]).await;
    let with_will = |client_id: &str, will_topic: &str| {
        let mut connect = connect_packet(client_id, true);
        connect.last_will = Some(LastWill::new(QoS::Level0, topic(will_topic), Bytes::from_static(b"gone")));
        connect
    };
    let (deep, _) = Client::connect_with(&broker, with_will("deep", "wills/a/b/c/d/e/f/g/h")).await;
    drop(deep);
    wait_until("the first is gone", || hooks.disconnected.lock().unwrap().len() == 1).await;
    let (ok, _) = Client::connect_with(&broker, with_will("ok", "wills/ok")).await;
    drop(ok);
    assert_eq!(&*watcher.recv_publish().await.topic_name, "wills/ok", "only the will within the limits");
}

/// A small window and queue: a subscriber that acknowledges nothing holds 2 in flight and 4
/// queued, then its queue is full.
fn small_queue() -> BrokerConfig {
    BrokerConfig { max_inflight: 2, max_queued_per_session: 4, ..BrokerConfig::default() }
}

/// The PUBACKs a client receives until it has `count` of them, in order.
async fn pubacks(client: &mut Client, count: usize) -> Vec<u16> {
    let mut acked = Vec::new();
    while acked.len() < count {
        match client.recv().await {
            Packet::Puback(pid) => acked.push(pid.value()),
            other => panic!("expected PUBACK, got {other:?}"),
        }
    }
    acked
}

#[tokio::test(start_paused = true)]
async fn a_full_subscriber_holds_back_the_publishers_puback_and_loses_nothing() {
    let (broker, _) = broker_with(small_queue());
    let mut slow = Client::connect(&broker, "slow").await;
    slow.subscribe(&[("t", QoS::Level1)]).await;
    let mut publisher = Client::connect(&broker, "publisher").await;
    for i in 1..=20u16 {
        publisher.send(publish_packet("t", &i.to_string(), QosPid::Level1(pid(i)))).await;
    }
    // 2 in flight and 4 queued took the first 6; the 7th waits for room, unacknowledged, and
    // the publisher's later packets wait behind it.
    assert_eq!(pubacks(&mut publisher, 6).await, (1..=6).collect::<Vec<_>>());
    publisher.expect_nothing().await;

    // The subscriber takes its messages: every one arrives, in order, and only then is each
    // remaining PUBLISH acknowledged.
    for i in 1..=20u16 {
        let publish = slow.recv_publish().await;
        assert_eq!(payload(&publish), i.to_string());
        slow.send(Packet::Puback(publish.qos_pid.pid().unwrap())).await;
    }
    assert_eq!(pubacks(&mut publisher, 14).await, (7..=20).collect::<Vec<_>>());
    slow.expect_nothing().await;
    publisher.sync().await;
}

#[tokio::test(start_paused = true)]
async fn a_client_publishing_to_itself_past_its_queue_is_not_stuck_behind_its_own_pubacks() {
    let (broker, _) = broker_with(small_queue());
    let mut client = Client::connect(&broker, "echo").await;
    client.subscribe(&[("t", QoS::Level1)]).await;
    for i in 1..=20u16 {
        client.send(publish_packet("t", &i.to_string(), QosPid::Level1(pid(i)))).await;
    }
    // Its PUBACKs for the messages it receives are read while its own PUBLISH waits for room
    // (otherwise it would wait for ever, then be disconnected as stalled).
    let (mut received, mut acked) = (Vec::new(), Vec::new());
    while received.len() < 20 || acked.len() < 20 {
        match client.recv().await {
            Packet::Publish(publish) => {
                received.push(payload(&publish).parse::<u16>().unwrap());
                client.send(Packet::Puback(publish.qos_pid.pid().unwrap())).await;
            }
            Packet::Puback(pid) => acked.push(pid.value()),
            other => panic!("unexpected {other:?}"),
        }
    }
    assert_eq!(received, (1..=20).collect::<Vec<_>>());
    assert_eq!(acked, (1..=20).collect::<Vec<_>>());
    client.sync().await;
}

#[tokio::test(start_paused = true)]
async fn a_stalled_subscriber_holds_its_publisher_back_for_the_grace_period_only() {
    let config = BrokerConfig { stalled_reader_grace: Duration::from_secs(30), ..small_queue() };
    let (broker, hooks) = broker_with(config);
    let mut stuck = Client::connect(&broker, "stuck").await;
    stuck.subscribe(&[("t", QoS::Level1)]).await;
    let mut publisher = Client::connect(&broker, "publisher").await;
    for i in 1..=10u16 {
        publisher.send(publish_packet("t", &i.to_string(), QosPid::Level1(pid(i)))).await;
    }
    assert_eq!(pubacks(&mut publisher, 6).await, (1..=6).collect::<Vec<_>>());
    tokio::time::sleep(Duration::from_secs(29)).await;
    publisher.expect_nothing().await;
    // Past the grace period the subscriber is disconnected; its (clean) session is gone, so
    // the waiting PUBLISH and the ones behind it are acknowledged.
    assert_eq!(pubacks(&mut publisher, 4).await, (7..=10).collect::<Vec<_>>());
    stuck.expect_closed().await;
    wait_until("the stuck client is gone", || broker.connection_count() == 1).await;
    assert_eq!(*hooks.disconnected.lock().unwrap(), vec!["stuck"]);
}

#[tokio::test(start_paused = true)]
async fn qos0_and_service_publishes_never_wait_for_a_full_subscriber() {
    let (broker, _) = broker_with(small_queue());
    let mut stuck = Client::connect(&broker, "stuck").await;
    stuck.subscribe(&[("t", QoS::Level1)]).await;
    let mut publisher = Client::connect(&broker, "publisher").await;
    for i in 0..10 {
        publisher.publish("t", &i.to_string()).await;
        broker.publish("t", Bytes::from("service"), QoS::Level1);
    }
    // Handled (and the full queue's drops counted) without waiting.
    publisher.sync().await;
}
