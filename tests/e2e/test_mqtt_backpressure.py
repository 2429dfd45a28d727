"""QoS 1 back-pressure, over real mutual-TLS sockets with paho-mqtt: a subscriber that stops
reading its socket makes its publisher wait for its PUBACKs instead of losing messages; when it
reads again, it receives every one, and `/metrics` counts no QoS 1 drop."""

from __future__ import annotations

from e2elib.identity import allow, policy
from e2elib.mqtt import MqttClient
from e2elib.util import eventually
from test_metrics import scrape, value

# 64 KiB payloads: the subscriber session's 1 MiB bound is full after about 16 unacknowledged.
PAYLOAD = 64 * 1024
COUNT = 120


def qos1_drops(samples) -> float:
    return sum(v for (name, labels), v in samples.items()
               if name == "fleetjobs_mqtt_messages_dropped_total" and ("qos", "1") in labels)


def test_a_subscriber_that_stops_reading_holds_its_publisher_back_and_loses_nothing(server, make_device,
                                                                                  arn_prefix):
    identity = make_device("bp-dev", policy(
        allow("iot:Connect", f"{arn_prefix}:client/*"),
        allow(["iot:Publish", "iot:Receive"], f"{arn_prefix}:topic/bp/*"),
        allow("iot:Subscribe", f"{arn_prefix}:topicfilter/bp/*"),
    ))
    subscriber = MqttClient(identity, server.mqtt_port, client_id="bp-subscriber").connect()
    publisher = MqttClient(identity, server.mqtt_port, client_id="bp-publisher").connect()
    try:
        subscriber.subscribe_ok("bp/t", qos=1)
        before = scrape(server)

        # The subscriber's client stops reading its socket (and so acknowledges nothing).
        subscriber._client.loop_stop()
        infos = [publisher._client.publish("bp/t", b"%06d" % i + b"x" * (PAYLOAD - 6), qos=1)
                 for i in range(COUNT)]

        def publisher_waits():
            samples = scrape(server)
            assert value(samples, "fleetjobs_mqtt_publish_waits_total") > value(
                before, "fleetjobs_mqtt_publish_waits_total")
            return samples

        eventually(publisher_waits, timeout=20)
        unacked = [i for i, info in enumerate(infos) if not info.is_published()]
        assert unacked, "every PUBLISH was acknowledged although the subscriber read nothing"
        assert qos1_drops(scrape(server)) == qos1_drops(before)

        # It reads again: every message arrives, in order, and every PUBLISH is acknowledged.
        subscriber._client.loop_start()

        def all_received():
            got = [int(m.payload[:6]) for m in subscriber.received(lambda m: m.topic == "bp/t")]
            assert len(got) >= COUNT, f"{len(got)} of {COUNT}"
            return got

        got = eventually(all_received, timeout=60)
        assert got == list(range(COUNT))

        def all_acknowledged():
            left = [i for i, info in enumerate(infos) if not info.is_published()]
            assert not left, f"not acknowledged: {left[:10]}"

        eventually(all_acknowledged, timeout=30)
        after = scrape(server)
        assert qos1_drops(after) == qos1_drops(before), "a QoS 1 message was dropped"
        assert subscriber.connected and publisher.connected
    finally:
        publisher.close()
        subscriber.close()
