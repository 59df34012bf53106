"""SIGTERM while streaming: everyone hears 1001, nothing accepted is lost (test 9)."""

from __future__ import annotations

import asyncio
import json

from kvbharness import Publisher, Viewer, http_get, load_fixture, looped, wait_until


async def test_sigterm_closes_with_1001_and_flushes(kvb, topic):
    broker = await asyncio.to_thread(kvb.start_broker)  # its own: the restarted relay lists its topics
    relay1 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)
    relay2 = await asyncio.to_thread(kvb.start_relay, bootstrap=broker.bootstrap)  # watches through Kafka; stays up
    stream = looped(load_fixture("vp8-opus"), 4)

    viewer1 = await Viewer.open(relay1.url, topic)
    viewer2 = await Viewer.open(relay2.url, topic)
    publisher = await Publisher.open(relay1.url, topic)
    sending = asyncio.create_task(publisher.send_chunks(stream.chunks, 0.05))
    await wait_until(lambda: publisher.stats and publisher.stats["acked"] > 20 and viewer1.media_bytes, 20,
                     lambda: f"acked fragments in stats ({publisher.stats}) and media at viewer 1")

    relay1.popen.terminate()  # SIGTERM, mid-stream
    exit_code = await asyncio.to_thread(relay1.popen.wait, 20)
    last_stats = publisher.stats
    assert exit_code == 0, f"relay exited with {exit_code} after SIGTERM"
    publisher_close = await publisher.wait_closed(5)
    viewer_close = await viewer1.wait_closed(5)
    await sending
    print(f"publisher closed with {publisher_close}, viewer with {viewer_close}; last stats {last_stats}; "
          f"publisher sent {publisher.sent_bytes} bytes")
    assert publisher_close[0] == 1001, f"publisher got close {publisher_close}, expected 1001"
    assert viewer_close[0] == 1001, f"viewer got close {viewer_close}, expected 1001"

    # Relay 2 read everything relay 1 produced before it stopped: the viewer there started at
    # sequence 0, so each binary frame after the init segment is one Kafka record.
    await wait_until(lambda: viewer2.streams and viewer2.streams[0].ended, 10,
                     lambda: f"'ended' at the viewer on relay 2 ({viewer2.describe()})")
    watched = viewer2.streams[0]
    got = watched.init + bytes(watched.media)
    fragments = len(watched.frames)
    print(f"viewer on relay 2: {fragments} fragments, {len(got)} bytes, then 'ended'")
    assert got == stream.data[: len(got)], "relay 2's viewer got bytes that are not the published stream"
    assert fragments >= last_stats["acked"], (
        f"publisher was told {last_stats['acked']} fragments were acked, but only {fragments} reached Kafka")

    # A relay started again on the same cluster sees all of it: every fragment plus the end marker.
    restarted = await asyncio.to_thread(kvb.start_relay, "relay1-restarted", bootstrap=broker.bootstrap)
    topics = {t["name"]: t for t in json.loads(http_get(restarted.url + "/api/topics", timeout=15)[1])["topics"]}
    print(f"restarted relay's /api/topics entry: {topics.get(topic)}")
    assert topic in topics, f"{topic} missing from /api/topics: {sorted(topics)}"
    assert topics[topic]["highWatermark"] == fragments + 1, (
        f"highWatermark {topics[topic]['highWatermark']}: expected {fragments} fragments + the end marker")

    # The stream ended: a new viewer waits, and the publisher reconnecting there is served.
    async with await Viewer.open(restarted.url, topic) as viewer3:
        await wait_until(lambda: viewer3.notices("waiting"), 10, lambda: f"'waiting' ({viewer3.describe()})")
        async with await Publisher.open(restarted.url, topic) as again:
            await again.send_chunks(stream.chunks[:30], 0.02)
            resumed = await viewer3.wait_for_stream(min_media=1000)
            await wait_until(lambda: len(viewer2.streams) == 2, 10, lambda: f"new session on relay 2 ({viewer2.describe()})")
        assert resumed.session == again.ready["session"] and resumed.init == stream.init_segment
    await viewer2.close()
