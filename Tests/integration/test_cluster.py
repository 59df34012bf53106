"""Several relays on one Kafka cluster in another process (test 6)."""

from __future__ import annotations

import asyncio
import json
import time

from kvbharness import Publisher, Viewer, assert_late_join, http_get, load_fixture, looped, wait_until


async def test_relays_share_a_broker_process(kvb, topic):
    """Publish on relay 1; a viewer on relay 2 joins mid-stream, and a relay started only after the
    stream is live serves it too: both start at the latest keyframe, with nothing but Kafka."""
    broker = await asyncio.to_thread(kvb.start_broker)  # `kvb-server broker`, its own process
    relay1 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    relay2 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    health = json.loads(http_get(relay2.url + "/healthz")[1])
    assert health["kafka"] == "external" and health["bootstrap"] == broker.bootstrap, health
    stream = looped(load_fixture("vp8-opus"), 4)  # about 12 s at 100 ms a chunk

    async with await Publisher.open(relay1.url, topic) as publisher:
        sending = asyncio.create_task(publisher.send_chunks(stream.chunks, 0.1))
        joins = {}

        async def join(relay, after_chunks: int) -> Viewer:
            await wait_until(lambda: len(publisher.sent_log) >= after_chunks, 30, f"{after_chunks} chunks sent")
            joins[relay.name] = (publisher.sent_log[-6][1], publisher.sent_bytes, time.monotonic())
            return await Viewer.open(relay.url, topic)

        viewer2 = await join(relay2, 25)
        await wait_until(lambda: len(publisher.sent_log) >= 50, 30, "50 chunks sent")
        relay3 = await asyncio.to_thread(kvb.start_relay, "relay-late", bootstrap=broker.bootstrap)  # starts now
        viewer3 = await join(relay3, 55)
        viewers = {relay2.name: viewer2, relay3.name: viewer3}
        for name, viewer in viewers.items():
            stream_at_viewer = await viewer.wait_for_stream(timeout=10)
            waited = stream_at_viewer.frames[0][0] - joins[name][2]
            print(f"viewer on {name}: first media {waited * 1000:.0f} ms after joining")
        await sending
    try:
        for viewer in viewers.values():
            await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 10, lambda: f"'ended' ({viewer.describe()})")
        for name, viewer in viewers.items():
            assert len(viewer.streams) == 1 and viewer.streams[0].session == publisher.ready["session"], viewer.describe()
            sent_before, sent_at_join, _ = joins[name]
            start = assert_late_join(stream, viewer.streams[0], sent_at_join, sent_before)
            print(f"viewer on {name}: joined at byte {sent_at_join}, got bytes {start}..{len(stream.data)} (keyframe cluster)")
    finally:
        for viewer in viewers.values():
            await viewer.close()


async def test_topic_list_answers_promptly(kvb):
    """The index page and /api/topics list every stream topic of the cluster; with 20 topics they
    must answer in a couple of seconds (a person is waiting on GET /)."""
    broker = await asyncio.to_thread(kvb.start_broker)
    relay = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    chunks = load_fixture("vp9").chunks[:8]
    names = [f"listed-{i}" for i in range(20)]
    for name in names:
        async with await Publisher.open(relay.url, name) as publisher:
            await publisher.send_chunks(chunks, 0.005)
    timings = []
    for path in ["/api/topics", "/api/topics", "/"]:
        began = time.monotonic()
        status, body = await asyncio.to_thread(http_get, relay.url + path, 60)
        timings.append((path, round(time.monotonic() - began, 2)))
        assert status == 200
    listed = {t["name"] for t in json.loads(http_get(relay.url + "/api/topics", 60)[1])["topics"]}
    print(f"20 topics: {timings}")
    assert set(names) <= listed, f"missing from /api/topics: {sorted(set(names) - listed)}"
    slow = [(path, seconds) for path, seconds in timings if seconds > 3]
    assert not slow, (f"RELAY BUG: listing 20 topics took {slow} s: each topic costs serial Kafka round trips "
                      "(watermarks + reading its newest record)")
