"""Hundreds of short connections leave nothing behind (test 8)."""

from __future__ import annotations

import asyncio
import time

from kvbharness import Publisher, Viewer, load_fixture, wait_until

TOPICS = 5  # published topics; viewers also watch one topic nobody publishes
CHUNKS_PER_SESSION = 8  # a few clusters: every session produces fragments and an end marker
THREAD_TOLERANCE = 2
FD_TOLERANCE = 4
RSS_TOLERANCE_MB = 40


async def publish_sessions(relay_url: str, topic: str, sessions: int, refusals: list) -> None:
    """Back-to-back short sessions on one topic, like a broadcaster that keeps reconnecting."""
    chunks = load_fixture("vp8-opus").chunks[:CHUNKS_PER_SESSION]
    for _ in range(sessions):
        async with await Publisher.open(relay_url, topic) as publisher:
            await publisher.send_chunks(chunks, 0.01)
            await wait_until(lambda: publisher.ready or publisher.closed.is_set(), 10, "ready")
        if publisher.close_code not in (None, 1000):
            refusals.append((topic, publisher.close_code, publisher.close_reason))


async def watch_briefly(relay_url: str, topic: str, viewers: int, concurrently: int) -> None:
    """`viewers` watch connections, `concurrently` at a time, each staying until it got hello."""
    for start in range(0, viewers, concurrently):
        batch = [await Viewer.open(relay_url, topic) for _ in range(min(concurrently, viewers - start))]
        for viewer in batch:
            await wait_until(lambda: viewer.notices("hello"), 10, "hello")
        await asyncio.sleep(0.05)
        for viewer in batch:
            await viewer.close()


async def connection_round(relay_url: str, prefix: str, publish: int, watch: int) -> list:
    """`publish` publish sessions and `watch` watch connections, spread over the topics, in parallel."""
    refusals: list = []
    topics = [f"{prefix}-{i}" for i in range(TOPICS)]
    tasks = [publish_sessions(relay_url, t, publish // TOPICS, refusals) for t in topics]
    tasks += [watch_briefly(relay_url, t, watch // (TOPICS + 1), concurrently=5) for t in topics + [f"{prefix}-nobody"]]
    await asyncio.gather(*tasks)
    return refusals


async def settle(relay, min_wait: float, timeout: float = 40) -> dict:
    """Waits at least `min_wait` (idle feeds close 5 s after their last viewer), then until the
    thread and fd counts hold still for 3 s."""
    await asyncio.sleep(min_wait)
    deadline = time.monotonic() + timeout
    history = []
    while time.monotonic() < deadline:
        history.append((relay.threads(), relay.open_fds()))
        if len(history) >= 7 and len(set(history[-7:])) == 1:
            break
        await asyncio.sleep(0.5)
    return relay.usage()


async def test_short_connections_leave_nothing_behind(kvb):
    relay = await asyncio.to_thread(kvb.start_relay)
    prefix = f"leak-{time.monotonic_ns()}"
    start = relay.usage()

    refusals = await connection_round(relay.url, prefix, publish=10, watch=12)  # warm-up: pools, topics
    baseline = await settle(relay, min_wait=12)  # CreateTopics on the mock cluster times out after 10 s

    began = time.monotonic()
    peak = {"threads": 0, "fds": 0}

    async def watch_peak() -> None:
        while True:
            peak["threads"] = max(peak["threads"], relay.threads())
            peak["fds"] = max(peak["fds"], relay.open_fds())
            await asyncio.sleep(0.2)

    watcher = asyncio.create_task(watch_peak())
    refusals += await connection_round(relay.url, prefix, publish=100, watch=102)
    watcher.cancel()
    busy_seconds = time.monotonic() - began
    after = await settle(relay, min_wait=7)

    print(f"relay at start {start}; after warm-up {baseline}; peak during 202 connections in {busy_seconds:.1f} s "
          f"{peak}; settled after {after}")
    if refusals:  # a relay bug of its own, asserted in test_publishers.py; not a leak
        print(f"note: {len(refusals)} reconnecting publishers were refused with 4409: {refusals[:2]}")
    assert after["threads"] <= baseline["threads"] + THREAD_TOLERANCE, f"threads {baseline['threads']} -> {after['threads']}"
    assert after["fds"] <= baseline["fds"] + FD_TOLERANCE, f"open fds {baseline['fds']} -> {after['fds']}"
    assert after["rss_mb"] <= baseline["rss_mb"] + RSS_TOLERANCE_MB, f"RSS {baseline['rss_mb']} -> {after['rss_mb']} MB"

    # And it still works.
    fixture = load_fixture("vp9")
    async with await Viewer.open(relay.url, prefix + "-final") as viewer:
        async with await Publisher.open(relay.url, prefix + "-final") as publisher:
            await publisher.send_chunks(fixture.chunks, 0.01)
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 10, lambda: viewer.describe())
        assert viewer.streams[0].init + bytes(viewer.streams[0].media) == fixture.data
