"""What viewers receive is exactly what the publisher sent (tests 1 and 2)."""

from __future__ import annotations

import asyncio
import time

import pytest

from kvbharness import FIXTURE_NAMES, Fixture, Publisher, Viewer, assert_late_join, load_fixture, wait_until

CHUNK_INTERVAL = 0.1  # MediaRecorder's timeslice, as in the recordings
JOIN_AFTER_CHUNKS = 20


@pytest.mark.parametrize("name", FIXTURE_NAMES)
async def test_viewers_get_the_published_bytes_exactly(kvb, topic, name):
    """Early viewer: every binary frame concatenated == the file. Late viewer: reset, init, then a
    contiguous suffix of the file that starts at the latest keyframe Cluster."""
    fixture = load_fixture(name)
    relay = await asyncio.to_thread(kvb.start_relay, bootstrap=None)  # its own embedded Kafka

    async with await Viewer.open(relay.url, topic) as early:
        await wait_until(lambda: early.notices("hello"), 10, "hello")
        async with await Publisher.open(relay.url, topic) as publisher:
            await publisher.send_chunks(fixture.chunks[:JOIN_AFTER_CHUNKS], CHUNK_INTERVAL)
            sent_shortly_before = publisher.sent_log[-6][1]  # what had been sent 0.5 s ago
            sent_at_join = publisher.sent_bytes
            async with await Viewer.open(relay.url, topic) as late:
                await publisher.send_chunks(fixture.chunks[JOIN_AFTER_CHUNKS:], CHUNK_INTERVAL)
                assert publisher.ready, f"no ready message: {publisher.messages}"
                session = publisher.ready["session"]

                stream = await early.wait_for_stream(min_media=len(fixture.data) - len(fixture.init_segment))
                late_stream = await late.wait_for_stream()
                tail = fixture.data[-32:]
                await wait_until(lambda: bytes(late_stream.media[-32:]) == tail, 10,
                                 lambda: f"the file's last bytes at the late viewer ({late.describe()})")
        await wait_until(lambda: stream.ended, 10, lambda: f"'ended' for the early viewer ({early.describe()})")

    assert early.stray_binary == 0 and late.stray_binary == 0, "binary frames outside a reset"
    assert len(early.streams) == 1 and stream.session == session, early.describe()
    received = stream.init + bytes(stream.media)
    assert len(received) == len(fixture.data), f"early viewer got {len(received)} bytes, the file has {len(fixture.data)}"
    assert received == fixture.data, "early viewer's bytes differ from the published file"

    assert len(late.streams) == 1 and late_stream.session == session, late.describe()
    assert late.events[0][2]["type"] == "hello"
    assert late_stream.init == fixture.init_segment, "late viewer's init segment is not the file's header up to the first Cluster"
    start = assert_late_join(fixture, late_stream, sent_at_join, sent_shortly_before)
    print(f"{name}: early viewer {len(received)} bytes exact; late viewer joined at byte {sent_at_join}, "
          f"started at keyframe cluster {start} (keyframes {fixture.keyframe_cluster_offsets})")


async def test_two_topics_never_mix(kvb):
    """Two publishers on two topics at once: each topic's viewers get exactly their own file."""
    relay = await asyncio.to_thread(kvb.start_relay)
    suffix = str(time.monotonic_ns())
    plan = {f"mix-a-{suffix}": load_fixture("vp8-opus"), f"mix-b-{suffix}": load_fixture("vp9")}
    viewers = {name: [await Viewer.open(relay.url, name) for _ in range(2)] for name in plan}

    async def publish(name: str, fixture: Fixture) -> None:
        async with await Publisher.open(relay.url, name) as publisher:
            await publisher.send_chunks(fixture.chunks, 0.05)
        await wait_until(lambda: all(v.streams and v.streams[-1].ended for v in viewers[name]), 10,
                         lambda: f"'ended' on {name}: " + "; ".join(v.describe() for v in viewers[name]))

    await asyncio.gather(*(publish(name, fixture) for name, fixture in plan.items()))
    for name, fixture in plan.items():
        for viewer in viewers[name]:
            assert len(viewer.streams) == 1, viewer.describe()
            got = viewer.streams[0].init + bytes(viewer.streams[0].media)
            assert got == fixture.data, (
                f"viewer of {name} ({fixture.name}) got {len(got)} bytes that are not its file "
                f"({len(fixture.data)} bytes)")
            await viewer.close()
