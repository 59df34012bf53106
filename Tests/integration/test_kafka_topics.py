"""Topics as a cluster admin expects them: kvb's records fit the topic's record limit (a keyframe
larger than max.message.bytes is cut into several records, and viewers still get the exact bytes),
topics kvb creates carry its settings, and an existing topic with other settings is reported and
its limit respected.

The first test runs on every backend; the others need a broker that answers CreateTopics and
DescribeConfigs from another process (Tansu: `make tansu-test`), which the embedded cluster does not.
"""

from __future__ import annotations

import asyncio

import pytest

from kvbharness import BACKEND, Publisher, Viewer, big_keyframe_cluster, load_fixture, wait_until
from kvbharness.kafka import create_topic, record_size, records, session_fragments, topic_config
from kvbharness.trust import counter

KAFKA_DEFAULT_MAX_MESSAGE_BYTES = 1_048_588

needs_a_real_broker = pytest.mark.skipif(
    BACKEND != "tansu", reason="the embedded cluster answers neither CreateTopics nor DescribeConfigs from another process")


def stream_with_a_big_keyframe(payload_bytes: int) -> tuple[bytes, list[bytes]]:
    """The recording as MediaRecorder chunked it, then a keyframe Cluster of `payload_bytes` in one
    chunk, then the recording's media again in 20 kB chunks. Returns (all bytes, chunks)."""
    fixture = load_fixture("vp8-opus")
    media = fixture.data[fixture.cluster_offsets[0]:]
    tail = [media[i:i + 20_000] for i in range(0, len(media), 20_000)]
    chunks = [*fixture.chunks, big_keyframe_cluster(fixture, payload_bytes), *tail]
    return b"".join(chunks), chunks


async def publish_and_watch(relay, topic: str, chunks: list[bytes], data: bytes, pause_before_big: float = 0) -> Publisher:
    viewer = await Viewer.open(relay.url, topic)
    try:
        # Once the relay has found no stream on the topic, the viewer gets the next one whole.
        await wait_until(lambda: viewer.notices("waiting"), 10, "'waiting' for the viewer")
        async with await Publisher.open(relay.url, topic) as publisher:
            big = max(range(len(chunks)), key=lambda i: len(chunks[i]))
            await publisher.send_chunks(chunks[:big], 0.02)
            await asyncio.sleep(pause_before_big)
            await publisher.send_chunks(chunks[big:], 0.02)
            await publisher.wait_delivered(len(data), timeout=20)
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 20, lambda: f"'ended' ({viewer.describe()})")
        got = viewer.streams[0]
        assert got.init + bytes(got.media) == data, f"the viewer's bytes differ from the published stream: {viewer.describe()}"
        assert publisher.stats["failed"] == 0, f"fragments failed: {publisher.stats}"
        return publisher
    finally:
        await viewer.close()


async def test_a_keyframe_larger_than_a_record_is_cut_into_records_and_arrives_exact(kvb, topic):
    """A 2.5 MB keyframe against Kafka's default 1 MB record limit: several records, each within
    the limit, and the viewer's bytes exactly the publisher's."""
    relay = await asyncio.to_thread(kvb.start_relay)
    data, chunks = stream_with_a_big_keyframe(2_500_000)
    publisher = await publish_and_watch(relay, topic, chunks, data)

    messages = await asyncio.to_thread(records, relay.bootstrap, topic)
    session = publisher.ready["session"]
    fragments = session_fragments(messages, session)
    media = b"".join(fragments[i] for i in sorted(fragments))
    assert sorted(fragments) == list(range(len(fragments))), f"records missing: {sorted(fragments)}"
    assert data.endswith(media) and len(media) > 2_500_000, f"Kafka holds {len(media)} bytes of the session"
    largest = max(record_size(m) for m in messages)
    print(f"{len(fragments)} records for {len(chunks)} chunks; largest {largest} bytes (limit {KAFKA_DEFAULT_MAX_MESSAGE_BYTES})")
    assert largest <= KAFKA_DEFAULT_MAX_MESSAGE_BYTES - 100, f"a record of {largest} bytes is over the topic's limit"
    assert len([f for f in fragments.values() if len(f) > 900_000]) >= 2, "the keyframe was not cut into records near the limit"


@needs_a_real_broker
async def test_topics_kvb_creates_carry_its_settings(kvb, topic):
    broker = await asyncio.to_thread(kvb.start_broker)
    relay = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap,
                                    args=["--topic-retention-ms", "600000", "--topic-retention-bytes", "50000000"])
    fixture = load_fixture("vp9")
    async with await Publisher.open(relay.url, topic) as publisher:
        await publisher.send_chunks(fixture.chunks[:10], 0.02)
    await wait_until(lambda: "created topic " + topic in relay.log(), 10, "the relay created the topic")
    config = await asyncio.to_thread(topic_config, broker.bootstrap, topic)
    print({k: config.get(k) for k in ("retention.ms", "retention.bytes", "max.message.bytes", "min.insync.replicas")})
    assert config.get("retention.ms") == "600000" and config.get("retention.bytes") == "50000000", config
    assert config.get("max.message.bytes") == str(KAFKA_DEFAULT_MAX_MESSAGE_BYTES), config
    assert config.get("cleanup.policy") == "delete" and config.get("min.insync.replicas") == "1", config
    await wait_until(lambda: "created topic kvb.status" in relay.log(), 10, "the relay created kvb.status")
    status = await asyncio.to_thread(topic_config, broker.bootstrap, "kvb.status")
    assert status.get("retention.ms") == "600000" and status.get("retention.bytes") == "50000000", status


@needs_a_real_broker
async def test_an_existing_topic_with_other_settings_is_reported_and_its_limit_kept(kvb, topic):
    broker = await asyncio.to_thread(kvb.start_broker)
    await asyncio.to_thread(create_topic, broker.bootstrap, topic, {"max.message.bytes": "300000", "retention.ms": "60000"})
    relay = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    data, chunks = stream_with_a_big_keyframe(700_000)
    # The relay reads the topic's settings when the stream starts; the keyframe comes a second later.
    await publish_and_watch(relay, topic, chunks, data, pause_before_big=1.5)
    log = relay.log()
    assert f"topic {topic} exists with other settings" in log, log[-3000:]
    assert "max.message.bytes is 300000 (kvb would set 1048588)" in log and "retention.ms is 60000" in log, log[-3000:]
    assert counter(relay, "kvb_topics_with_other_settings_total") >= 1
    messages = await asyncio.to_thread(records, broker.bootstrap, topic)
    largest = max(record_size(m) for m in messages)
    assert largest <= 300_000 - 100, f"a record of {largest} bytes is over the topic's 300,000-byte limit"
    assert (await asyncio.to_thread(topic_config, broker.bootstrap, topic)).get("retention.ms") == "60000", \
        "kvb changed an existing topic's settings"


async def test_a_relay_reads_the_fleets_recent_statuses_by_time_where_the_cluster_can(kvb):
    """A relay joining a fleet reads the status documents of the last few seconds: found by
    offsets-for-times on a broker that answers it, a fixed number of records back on the embedded
    cluster (which does not)."""
    broker = await asyncio.to_thread(kvb.start_broker)
    first = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    await asyncio.sleep(4)  # a few status documents from the first relay
    second = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    line = await asyncio.to_thread(second.wait_for_log, r"reading kvb\.status from offset (\d+) \((.*)\)", 15)
    print(f"{BACKEND}: {line.group(0)}")
    if BACKEND == "tansu":
        assert line.group(2).startswith("offsets-for-times"), line.group(0)
        assert 0 < int(line.group(1)), f"offsets-for-times found the topic's first record: {line.group(0)}"
    else:
        assert "records back" in line.group(2), line.group(0)
    assert first.running
