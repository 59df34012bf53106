"""Faults, proven with real processes (docs/SECURITY.md): Kafka going away for 10 s and 60 s,
a relay starting while Kafka is away, SIGTERM with a viewer that stopped reading, and a publisher
that vanishes without closing its connection. (A relay SIGKILLed mid-stream is in
Tests/browser/test_recovery.py, with real pages; crafted control-plane records are in
test_operator_commands.py.)"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import time

from kvbharness import Publisher, Viewer, http_get, load_fixture, looped, raw_websocket, wait_until
from kvbharness.kafka import records, session_fragments

VP8 = load_fixture("vp8-opus")


def health(relay) -> tuple[int, dict]:
    try:
        status, body = http_get(relay.url + "/healthz", timeout=3)
    except OSError as error:
        return 0, {"error": str(error)}
    return status, json.loads(body or b"{}")


async def wait_health(relay, status: int, timeout: float) -> dict:
    found = {}

    def check():
        code, doc = health(relay)
        found.update(doc, code=code)
        return code == status

    deadline = time.monotonic() + timeout
    while not await asyncio.to_thread(check):
        assert time.monotonic() < deadline, f"/healthz of {relay.name} did not answer {status} within {timeout} s: {found}"
        await asyncio.sleep(0.25)
    return found


def assert_resumed_at_keyframes(viewer: Viewer, stream, after: float, what: str) -> None:
    """Every stream the viewer got is the published bytes from a keyframe Cluster on (a skip
    continues at a keyframe), and media arrived after `after`."""
    assert any(at > after for at, kind, _ in viewer.events if kind == "binary"), f"{what}: no media after Kafka came back ({viewer.describe()[-200:]})"
    for watched in viewer.streams:
        media = bytes(watched.media)
        assert watched.init == stream.init_segment, f"{what}: wrong init segment"
        start = stream.data.find(media[:64], len(stream.init_segment))
        assert start in stream.keyframe_cluster_offsets, f"{what}: a stream starts at byte {start}, not at a keyframe Cluster"
        if not any(doc.get("type") == "skipped" for _, kind, doc in viewer.events if kind == "text"):
            assert stream.data[start:start + len(media)] == media, f"{what}: bytes differ from the published stream"


async def broker_outage(kvb, topic: str, seconds: float) -> None:
    broker = await asyncio.to_thread(kvb.start_broker)
    publishing = await asyncio.to_thread(kvb.start_relay, "publishing", bootstrap=broker.bootstrap)
    watching = await asyncio.to_thread(kvb.start_relay, "watching", bootstrap=broker.bootstrap)
    late_relay = await asyncio.to_thread(kvb.start_relay, "late", bootstrap=broker.bootstrap)
    stream = looped(VP8, int((seconds + 25) / 3) + 2)  # ~3 s per pass at 100 ms a chunk
    viewers = [await Viewer.open(publishing.url, topic), await Viewer.open(watching.url, topic)]
    publisher = await Publisher.open(publishing.url, topic)
    sending = asyncio.create_task(publisher.send_chunks(stream.chunks, 0.1))
    await wait_until(lambda: all(v.media_bytes > 20_000 for v in viewers), 20, "both viewers receiving")

    await asyncio.to_thread(broker.command, "down 1")
    down_at = time.monotonic()
    sent_before = publisher.sent_bytes
    unhealthy = await wait_health(publishing, 503, 10)
    assert unhealthy["status"] == "kafka_unreachable" and unhealthy.get("reason"), f"/healthz during the outage: {unhealthy}"
    await wait_until(lambda: publisher.stats and publisher.stats.get("kafka", "ok").startswith("unreachable"), 10,
                     lambda: f"the publisher told Kafka is unreachable (stats {publisher.stats})")
    # A feed started while Kafka is away: it must not replay the topic from its start later.
    late = await Viewer.open(late_relay.url, topic)
    await asyncio.sleep(max(0.0, seconds - (time.monotonic() - down_at)))
    assert not publisher.closed.is_set(), f"the publisher was cut off during the outage: {publisher.close_code} {publisher.close_reason}"
    await asyncio.to_thread(broker.command, "up 1")
    up_at = time.monotonic()
    print(f"broker down for {up_at - down_at:.1f} s; /healthz said {unhealthy}")
    await wait_health(publishing, 200, 20)
    await wait_until(lambda: publisher.stats and publisher.stats.get("kafka") == "ok", 15, lambda: f"stats say Kafka is ok again ({publisher.stats})")
    await wait_until(lambda: all(any(at > up_at for at, kind, _ in v.events if kind == "binary") for v in viewers), 30,
                     lambda: "media again at both viewers: " + " | ".join(v.describe()[-160:] for v in viewers))
    await wait_until(lambda: late.streams and len(late.streams[0].media) > 0, 30, lambda: f"media at the late viewer ({late.describe()})")

    sent = await sending
    assert sent == len(stream.chunks), f"the publisher was cut off: {publisher.close_code} {publisher.close_reason}"
    stats = await publisher.wait_delivered(len(stream.data))
    session = publisher.ready["session"]
    await publisher.close()

    # Nothing the relay acknowledged is lost: every acknowledged fragment is in Kafka, in order.
    fragments = await asyncio.to_thread(session_fragments, await asyncio.to_thread(records, broker.bootstrap, topic), session)
    print(f"publisher stats {stats}; {len(fragments)} fragments of the session in Kafka")
    assert len(fragments) >= stats["acked"], f"{stats['acked']} acknowledged but only {len(fragments)} in Kafka"
    if stats["failed"] == 0:
        joined = stream.init_segment + b"".join(fragments[i] for i in sorted(fragments))
        assert sorted(fragments) == list(range(len(fragments))) and joined == stream.data, "Kafka does not hold the whole stream"
    else:
        position = len(stream.init_segment)
        for sequence in sorted(fragments):  # what is there is the published bytes, in order, with holes
            found = stream.data.find(fragments[sequence], position)
            assert found >= position, f"fragment {sequence} is not the published bytes in order"
            position = found + len(fragments[sequence])

    for viewer, name in zip(viewers, ("viewer on the publishing relay", "viewer on another relay")):
        assert_resumed_at_keyframes(viewer, stream, up_at, name)
    # The late feed started at a recent keyframe, not at the topic's first record.
    start = stream.data.find(bytes(late.streams[0].media)[:64], len(stream.init_segment))
    assert start > sent_before - 200_000, (
        f"the feed started during the outage replayed the topic from byte {start} (the outage began at byte {sent_before})")
    assert_resumed_at_keyframes(late, stream, up_at, "viewer whose feed started during the outage")
    for viewer in viewers + [late]:
        await viewer.close()


async def test_kafka_away_for_10_seconds(kvb, topic):
    await broker_outage(kvb, topic, 10)


async def test_kafka_away_for_60_seconds(kvb, topic):
    await broker_outage(kvb, topic, 60)


async def test_a_relay_started_while_kafka_is_away(kvb, topic):
    broker = await asyncio.to_thread(kvb.start_broker)
    await asyncio.to_thread(broker.command, "down 1")
    relay = await asyncio.to_thread(kvb.start_relay, "starting", bootstrap=broker.bootstrap, wait_healthy=False)
    await asyncio.to_thread(relay.wait_for_log, r"listening on", 30)
    await wait_health(relay, 503, 15)
    async with await Publisher.open(relay.url, topic) as refused:
        await refused.send(VP8.chunks[0])
        code, reason = await refused.wait_closed(15)
    assert code == 4503 and "Kafka" in reason, f"a publisher while Kafka is away got {code} {reason!r}"
    await asyncio.to_thread(broker.command, "up 1")
    await wait_health(relay, 200, 20)
    async with await Viewer.open(relay.url, topic) as viewer:
        async with await Publisher.open(relay.url, topic) as publisher:
            await publisher.send_chunks(VP8.chunks, 0.05)
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 20, lambda: viewer.describe())
        assert viewer.streams[0].init + bytes(viewer.streams[0].media) == VP8.data


async def test_sigterm_with_a_viewer_that_stopped_reading(kvb, topic):
    relay = await asyncio.to_thread(kvb.start_relay)  # stalled viewers are cut after 15 s by default
    stream = looped(VP8, 8)
    never_reads = await asyncio.to_thread(raw_websocket, relay.url, f"/ws/watch/{topic}")
    publisher = await Publisher.open(relay.url, topic)
    await publisher.send_chunks(stream.chunks, 0.005)  # ~0.5 MB fast: the viewer's socket fills
    await wait_until(lambda: publisher.stats and publisher.stats["bytes"] == len(stream.data), 20, lambda: f"parsed ({publisher.stats})")
    started = time.monotonic()
    relay.popen.send_signal(signal.SIGTERM)
    code = await asyncio.to_thread(relay.popen.wait, 30)
    elapsed = time.monotonic() - started
    close = await publisher.wait_closed(5)
    last = publisher.stats
    print(f"exited {code} {elapsed:.1f} s after SIGTERM; publisher got {close}; last stats {last}")
    assert code == 0 and elapsed < 10, f"exit {code} after {elapsed:.1f} s (bound: 10 s)"
    assert close[0] == 1001
    never_reads.close()
    # What the publisher sent was flushed to Kafka.
    fragments = await asyncio.to_thread(session_fragments, await asyncio.to_thread(records, kvb.shared_bootstrap, topic), publisher.ready["session"])
    joined = stream.init_segment + b"".join(fragments[i] for i in sorted(fragments))
    assert joined == stream.data, f"Kafka holds {len(joined)} of the {len(stream.data)} bytes the publisher sent"


PUBLISHER_SCRIPT = r"""
import asyncio, sys
sys.path.insert(0, sys.argv[1])
from kvbharness import Publisher, load_fixture, looped
async def main():
    publisher = await Publisher.open(sys.argv[2], sys.argv[3])
    print("open", flush=True)
    await publisher.send_chunks(looped(load_fixture("vp8-opus"), 30).chunks, 0.1)
asyncio.run(main())
"""


async def test_a_publisher_that_vanishes_without_closing(kvb, topic):
    """A publisher process frozen (SIGSTOP) holds its connection open but sends nothing, as a
    client gone without a FIN would: the topic is freed within the idle timeout, and the
    publisher can come back."""
    relay = await asyncio.to_thread(kvb.start_relay, args=["--idle-publisher-timeout", "3"])
    harness = os.path.join(os.path.dirname(__file__), "..", "harness")
    child = subprocess.Popen([sys.executable, "-c", PUBLISHER_SCRIPT, harness, relay.url, topic], stdout=subprocess.PIPE, text=True)
    try:
        assert (await asyncio.to_thread(child.stdout.readline)).strip() == "open"
        async with await Viewer.open(relay.url, topic) as viewer:
            await viewer.wait_for_stream(0, min_media=5000, timeout=15)
            child.send_signal(signal.SIGSTOP)
            stopped = time.monotonic()
            # The relay frees the topic: its viewer is told the session ended.
            await wait_until(lambda: viewer.streams[0].ended, 15, lambda: f"'ended' after the publisher froze ({viewer.describe()[-200:]})")
            freed_after = time.monotonic() - stopped
            print(f"topic freed {freed_after:.1f} s after the publisher froze (idle timeout 3 s)")
            assert freed_after < 8
            # A publisher (the same one, come back) is accepted on the topic.
            async with await Publisher.open(relay.url, topic) as again:
                await again.send_chunks(VP8.chunks, 0.02)
                stream = await viewer.wait_for_stream(1, min_media=len(VP8.data) - len(VP8.init_segment), timeout=15)
                assert stream.init + bytes(stream.media) == VP8.data
    finally:
        child.send_signal(signal.SIGCONT)
        child.kill()
        child.wait(5)
