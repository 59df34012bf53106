"""Several relays on one Kafka cluster in another process (test 6)."""

from __future__ import annotations

import asyncio
import json
import time

from kvbharness import Publisher, Viewer, assert_late_join, http_get, load_fixture, looped, wait_until
from kvbharness.trust import counter


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


async def test_an_idle_watched_topic_wakes_for_a_new_stream(kvb, topic):
    """A topic watched on relay 2 whose publisher (on relay 1) went away stops being fetched once
    it is quiet; when a publisher comes back, relay 2's viewer gets the new stream from its first
    byte, exactly, within a couple of seconds. A brand-new topic watched before it exists too."""
    broker = await asyncio.to_thread(kvb.start_broker)
    relay1 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    relay2 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    fixture = load_fixture("vp8-opus")
    waiting = await Viewer.open(relay2.url, topic + "-new")  # the topic does not exist yet
    viewer = await Viewer.open(relay2.url, topic)
    try:
        async with await Publisher.open(relay1.url, topic) as first:
            await first.send_chunks(fixture.chunks, 0.02)
        await viewer.wait_for_stream(0, min_media=len(fixture.data) - len(fixture.init_segment), timeout=15)
        await wait_until(lambda: viewer.streams[0].ended, 10, lambda: f"'ended' ({viewer.describe()})")
        # Quiet for longer than the reader's 3 s (and its 1 s check): relay 2 stops fetching it.
        await wait_until(lambda: counter(relay2, "kvb_idle_topics_not_fetched") >= 1, 10,
                         "relay 2 stops fetching the quiet topic (kvb_idle_topics_not_fetched)")
        for target, watcher in ((topic, viewer), (topic + "-new", waiting)):
            index = len(watcher.streams)
            started = time.monotonic()
            async with await Publisher.open(relay1.url, target) as publisher:
                sending = asyncio.create_task(publisher.send_chunks(fixture.chunks, 0.1))
                stream = await watcher.wait_for_stream(index, min_media=1, timeout=10)
                print(f"{target}: first media {(stream.frames[0][0] - started) * 1000:.0f} ms after the publisher connected")
                assert stream.frames[0][0] - started < 4, f"the idle topic woke late: {watcher.describe()}"
                await sending
            await wait_until(lambda: watcher.streams[index].ended, 10, lambda: f"'ended' ({watcher.describe()})")
            got = watcher.streams[index]
            assert got.init + bytes(got.media) == fixture.data, f"not byte-exact from the first byte: {watcher.describe()}"
    finally:
        await viewer.close()
        await waiting.close()
