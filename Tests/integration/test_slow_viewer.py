"""A viewer that stops reading costs bounded memory and slows nobody (test 5)."""

from __future__ import annotations

import asyncio
import statistics

import pytest

from kvbharness import (
    BACKEND, Publisher, Viewer, load_fixture, looped, percentile, raw_websocket, small_buffer_socket,
    starts_with_cluster, wait_until,
)

REPEATS = 300  # the recording looped into one ~21 MB session
CHUNK_INTERVAL = 0.001  # ~2 MB/s: far faster than a camera, to fill the slow viewers quickly
RSS_GROWTH_LIMIT_MB = 150
# Publisher send -> normal viewer receipt once the stream runs. Loose on purpose: this 2-core
# machine is shared (steady state here is ~20-60 ms; CPU contention gives spikes of ~1 s); a
# relay that let a slow viewer hold up the others would stall the normal one for many seconds.
P95_DELAY_S = 1.0
MAX_DELAY_S = 3.0
WARMUP_S = 2.0  # a brand-new topic's first second or so is slower (Kafka metadata); judged apart


# Measured: Tansu 0.6's in-memory engine falls behind this firehose (about 7,000 records in 15 s)
# even with no slow viewer at all, one viewer's delay growing to 15 s by the end, so on Tansu this
# test would judge the broker, not the relay's fan-out.
@pytest.mark.skipif(BACKEND == "tansu", reason="Tansu's in-memory engine cannot keep up with a 1.3 MB/s firehose of small records")
async def test_slow_viewer_is_bounded_and_slows_nobody(kvb, topic):
    # Stalled viewers are cut off after --stalled-viewer-timeout (Tests/security covers that);
    # here the stall is shorter than that, and the stalled viewer must come back skipped forward.
    relay = await asyncio.to_thread(kvb.start_relay, args=["--stalled-viewer-timeout", "300", "--idle-publisher-timeout", "300"])
    stream = looped(load_fixture("vp8-opus"), REPEATS)

    # Warm up (first feed, first publisher, Kafka handles), then measure from there.
    async with await Viewer.open(relay.url, topic + "-warmup") as warm:
        async with await Publisher.open(relay.url, topic + "-warmup") as publisher:
            await publisher.send_chunks(stream.chunks[:200], 0)
        await wait_until(lambda: warm.streams and warm.streams[0].ended, 10, "warm-up stream")
    baseline = relay.usage()

    normal = await Viewer.open(relay.url, topic)
    never_reads = raw_websocket(relay.url, f"/ws/watch/{topic}")  # handshake, then silence
    stalled = await Viewer.open(relay.url, topic, read=False, sock=small_buffer_socket(relay.url),
                                max_queue=1, ping_interval=None)  # stops reading, drains at the end
    # The relay has looked for the topic and found none: the normal viewer gets the stream from its
    # first byte. (A viewer whose feed first sees the topic once records are in joins at a keyframe.)
    await wait_until(lambda: normal.notices("waiting"), 10, "'waiting' for the normal viewer")

    rss_samples = []

    async def sample_rss(stop: asyncio.Event) -> None:
        while not stop.is_set():
            rss_samples.append(relay.rss_mb())
            await asyncio.sleep(0.2)

    done = asyncio.Event()
    sampler = asyncio.create_task(sample_rss(done))
    async with await Publisher.open(relay.url, topic) as publisher:
        sent = await publisher.send_chunks(stream.chunks, CHUNK_INTERVAL)
        assert sent == len(stream.chunks), f"publisher cut off after {sent} chunks: {publisher.close_code} {publisher.close_reason}"
        await wait_until(lambda: normal.media_bytes >= len(stream.data) - len(stream.init_segment), 30,
                         lambda: f"the whole stream at the normal viewer ({normal.describe()[-300:]})")
        seconds = publisher.sent_log[-1][0] - publisher.sent_log[0][0]
    done.set()
    await sampler
    after = relay.usage()

    # The normal viewer got every byte, in order, promptly.
    watched = normal.streams[0]
    assert len(normal.streams) == 1 and not normal.notices("skipped"), f"normal viewer was disturbed: {normal.describe()[-300:]}"
    assert watched.init + bytes(watched.media) == stream.data, "normal viewer's bytes differ from the published stream"
    init_len = len(stream.init_segment)
    started = publisher.sent_log[0][0]
    sent_and_delay = [(publisher.sent_time_of(init_len + length), arrived) for arrived, length in watched.frames]
    first = [arrived - sent for sent, arrived in sent_and_delay if sent - started < WARMUP_S]
    delays = [arrived - sent for sent, arrived in sent_and_delay if sent - started >= WARMUP_S]
    print(f"published {len(stream.data) / 1e6:.1f} MB in {seconds:.1f} s ({len(stream.data) / 1e6 / seconds:.1f} MB/s); "
          f"normal viewer delay over {len(delays)} fragments after the first {WARMUP_S:.0f} s: "
          f"median {statistics.median(delays) * 1000:.1f} ms, p95 {percentile(delays, 95) * 1000:.1f} ms, "
          f"max {max(delays) * 1000:.1f} ms (first {WARMUP_S:.0f} s: max {max(first) * 1000:.0f} ms)")
    print(f"relay before {baseline}, after {after}; RSS peak {max(rss_samples):.1f} MB "
          f"(+{max(rss_samples) - baseline['rss_mb']:.1f} MB)")
    assert percentile(delays, 95) < P95_DELAY_S and max(delays) < MAX_DELAY_S, (
        f"normal viewer lagged behind the publisher: p95 {percentile(delays, 95):.2f} s, max {max(delays):.2f} s")
    assert max(rss_samples) - baseline["rss_mb"] < RSS_GROWTH_LIMIT_MB, (
        f"relay RSS grew from {baseline['rss_mb']:.0f} to {max(rss_samples):.0f} MB with a viewer that never reads")

    # The stalled viewer, once it reads again, was skipped forward to a keyframe cluster.
    stalled.start_reading()
    await wait_until(lambda: stalled.notices("ended"), 30, lambda: f"'ended' at the stalled viewer ({stalled.describe()[-300:]})")
    kinds = [(kind, doc) for _, kind, doc in stalled.events]
    skips = [i for i, (kind, doc) in enumerate(kinds) if kind == "text" and doc.get("type") == "skipped"]
    print(f"stalled viewer got {stalled.media_bytes / 1e6:.1f} of {len(stream.data) / 1e6:.1f} MB, "
          f"{len(skips)} 'skipped' notices: {[kinds[i][1] for i in skips][:5]}")
    assert skips, f"a viewer that stopped reading for {seconds:.0f} s was never told it skipped: {stalled.describe()[-300:]}"
    assert stalled.media_bytes < len(stream.data) / 2, "the stalled viewer was sent (almost) everything: not bounded"
    for i in skips:
        kind, frame = kinds[i + 1]
        assert kind == "binary" and starts_with_cluster(frame), f"after 'skipped' came {kind} {frame if kind == 'text' else frame[:8].hex()}"
        assert any(stream.data[k : k + len(frame)] == frame for k in stream.keyframe_cluster_offsets[:8]), (
            "after 'skipped' the stream does not resume at a keyframe cluster")
    never_reads.close()
    await normal.close()
    await stalled.close()
