"""Bounded whatever it is fed (docs/SECURITY.md, done-when 3): a relay with its default limits,
on a broker of its own, against (1) streams of endless elements before the first Cluster,
(2) 2,000 publish sockets that send nothing, (3) 500 watchers of random topics. Its RSS, threads,
descriptors and the cluster's topic count stay bounded, and come back once the load is gone.
Prints the figures."""

from __future__ import annotations

import asyncio
import time
import uuid

from kvbharness import Publisher, Viewer, load_fixture, wait_until
from kvbharness.kafka import cluster_topics
from kvbharness.trust import from_address, rejected

VP8 = load_fixture("vp8-opus")


def usage(relay) -> dict:
    return relay.usage()


async def settle(relay, baseline: dict, what: str, timeout: float = 40) -> dict:
    """Waits until threads and descriptors are back near the baseline."""
    def settled():
        now = usage(relay)
        # A few dispatch worker threads may idle on a while after a burst.
        return now["threads"] <= baseline["threads"] + 4 and now["fds"] <= baseline["fds"] + 8
    await wait_until(settled, timeout, lambda: f"{what}: back to the baseline {baseline} (now {usage(relay)})", interval=0.5)
    return usage(relay)


async def open_many(kind, url: str, topics: list[str], sources: list[str], at_once: int = 200) -> list:
    """Opens one socket per topic, spread over `sources`, `at_once` at a time."""
    gate = asyncio.Semaphore(at_once)

    async def one(index, topic):
        async with gate:
            try:
                return await kind.open(url, topic, sock=from_address(url, sources[index % len(sources)]))
            except Exception:
                return None

    opened = await asyncio.gather(*(one(i, t) for i, t in enumerate(topics)))
    return [sock for sock in opened if sock is not None]


class Peak:
    """Samples the relay's usage every 0.2 s while a load runs."""

    def __init__(self, relay) -> None:
        self.relay, self.peak, self.stop = relay, {"rss_mb": 0, "threads": 0, "fds": 0}, asyncio.Event()

    async def run(self) -> None:
        while not self.stop.is_set():
            now = usage(self.relay)
            self.peak = {k: max(self.peak[k], now[k]) for k in now}
            await asyncio.sleep(0.2)


async def test_the_relay_stays_bounded_under_junk(kvb):
    broker = await asyncio.to_thread(kvb.start_broker)
    relay = await asyncio.to_thread(kvb.start_relay, "bounded", bootstrap=broker.bootstrap)
    # Warm up: one real stream end to end, so the baseline includes the usual threads and handles.
    async with await Viewer.open(relay.url, "warmup") as viewer:
        async with await Publisher.open(relay.url, "warmup") as publisher:
            await publisher.send_chunks(VP8.chunks, 0.01)
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 15, "the warm-up stream")
    await asyncio.sleep(6)  # the warm-up feed lingers 5 s
    baseline = usage(relay)
    topics_before = await asyncio.to_thread(cluster_topics, broker.bootstrap)
    print(f"\nbaseline: {baseline}, {len(topics_before)} topics")

    # 1. Endless elements before the first Cluster: 1 MiB Void elements, 100 publishers, 200 MB offered.
    segment = VP8.data.index(bytes([0x18, 0x53, 0x80, 0x67]))
    start = VP8.data[: segment + 12]
    void = bytes([0xEC, 0x10, 0x10, 0x00, 0x00]) + bytes(1 << 20)  # a Void announcing 1 MiB, and its 1 MiB
    codes = []
    peak = baseline["rss_mb"]
    for i in range(100):
        async with await Publisher.open(relay.url, f"voids-{i}") as publisher:
            await publisher.send(start)
            for _ in range(2):
                if not await publisher.send(void):
                    break
            code, _ = await publisher.wait_closed(10)
            codes.append(code)
        peak = max(peak, usage(relay)["rss_mb"])
    after_voids = usage(relay)
    print(f"1. endless Voids before the first Cluster, 100 publishers: closed with {sorted(set(codes))}; "
          f"RSS {baseline['rss_mb']} -> peak {peak} -> {after_voids['rss_mb']} MB")
    assert set(codes) == {4413}, codes
    assert peak - baseline["rss_mb"] < 40, "the relay grew with elements before the first Cluster"

    async def loads(round_: int) -> dict:
        # 2. 2,000 publish sockets that send nothing, from 10 addresses (the limit is 128 per address).
        sources = [f"127.0.{76 + round_}.{i}" for i in range(1, 11)]
        timeouts_before = rejected(relay, "handshake_timeout")
        refused_before = rejected(relay, "connections_per_address")
        peak = Peak(relay)
        sampling = asyncio.create_task(peak.run())
        opened_at = time.monotonic()
        silent = await open_many(Publisher, relay.url, [f"silent-{round_}-{i}" for i in range(2000)], sources)
        await wait_until(lambda: all(s.closed.is_set() for s in silent), 40, "every silent socket closed (refused or timed out)")
        closed_after = time.monotonic() - opened_at
        peak.stop.set()
        await sampling
        timed_out = rejected(relay, "handshake_timeout") - timeouts_before
        refused = rejected(relay, "connections_per_address") - refused_before
        codes = sorted({s.close_code for s in silent})
        for sock in silent:
            await sock.close()
        after_silent = await settle(relay, baseline, "after the silent sockets")
        print(f"2.{round_} 2,000 silent publish sockets from 10 addresses: {len(silent)} opened, {int(refused)} refused at once (4429), "
              f"{int(timed_out)} closed by the handshake timeout (4408), all gone {closed_after:.1f} s after the first; "
              f"close codes {codes}; peak {peak.peak}; after {after_silent}")
        assert set(codes) <= {4408, 4429} and timed_out + refused >= len(silent) - 5, "silent sockets must not take real publishers' slots"
        # The per-address limit, plus sockets being refused or closing (200 are opened at a time).
        assert peak.peak["fds"] <= baseline["fds"] + 128 * len(sources) + 260, "more sockets open at once than the per-address limit allows"
        assert peak.peak["threads"] <= baseline["threads"] + 4

        # 3. 500 watchers of random topics, from 5 addresses (the relay watches at most 100 topics).
        refused_before = rejected(relay, "feeds_per_relay")
        peak = Peak(relay)
        sampling = asyncio.create_task(peak.run())
        watchers = await open_many(Viewer, relay.url, [f"random-{uuid.uuid4().hex[:12]}" for _ in range(500)],
                                   [f"127.0.{90 + round_}.{i}" for i in range(1, 6)])
        await asyncio.sleep(3)
        live = sum(1 for w in watchers if not w.closed.is_set())
        refused = rejected(relay, "feeds_per_relay") - refused_before
        for watcher in watchers:
            await watcher.close()
        await asyncio.sleep(1)
        peak.stop.set()
        await sampling
        after_watchers = await settle(relay, baseline, "after the watchers", timeout=60)
        print(f"3.{round_} 500 watchers of random topics: {live} watching, {int(refused)} refused (4503); peak {peak.peak}; "
              f"after they left {after_watchers}")
        assert live <= 100 and refused >= 395

        return usage(relay)
    # Round after round: the allocator keeps some memory after a burst (arenas, the thread-stack
    # cache after 500 consumer threads) and reuses it; a leak would grow by the same amount each
    # round. LeakSanitizer finds nothing in kvb's code (docs/SECURITY.md).
    after = [baseline["rss_mb"]]
    for round_ in range(1, 5):
        after.append((await loads(round_))["rss_mb"])
        growth = after[-1] - after[-2]
        print(f"RSS after round {round_}: {after[-1]} MB (+{growth:.1f})")
        if round_ >= 2 and growth < 15:
            break
    growths = [b - a for a, b in zip(after[1:], after[2:])] or [0]
    first = after[1] - after[0]
    assert growths[-1] < 15 or growths[-1] <= first / 3, f"RSS kept growing round after round: {after}"
    assert max(after) < 400, f"RSS not bounded: {after}"
    final = usage(relay)
    assert final["threads"] <= baseline["threads"] + 4 and final["fds"] <= baseline["fds"] + 8

    topics_after = await asyncio.to_thread(cluster_topics, broker.bootstrap)
    new_topics = sorted(topics_after - topics_before)
    print(f"topics: {len(topics_before)} before, {len(topics_after)} after; new: {new_topics[:5]}")
    assert not new_topics, f"junk created topics: {new_topics[:10]}"
