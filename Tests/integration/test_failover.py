"""Failover on a 3-broker cluster (`kvb-server broker --brokers 3`, replication factor 3), driven
through the broker's fault injection mid-stream: the stream's partition leader moves (an
election), then a broker fails (down, its partitions' leadership moved to the others as a
controller would) and comes back. Nothing the publisher was told was acknowledged is lost;
viewers on two relays continue, with at most one reset to a keyframe; both read the same records
in the same order; the console (in tmux) shows the relays' Kafka errors while they last.

Fault injection is the embedded cluster's, so this runs on that backend only.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from kvbharness import BACKEND, Publisher, Viewer, load_fixture, looped, wait_until
from kvbharness.kafka import partition_leaders, records, session_fragments

pytestmark = pytest.mark.skipif(BACKEND != "embedded", reason="fault injection needs the embedded cluster")

BROKERS = (1, 2, 3)


def command(broker, line: str, answer: str) -> None:
    """Sends a fault-injection command and waits for its "ok: ..." answer in the broker's log."""
    before = broker.log().count(answer)
    broker.command(line)
    deadline = time.monotonic() + 10
    while broker.log().count(answer) <= before:
        assert "error:" not in broker.log()[-300:], f"{line}: {broker.log()[-300:]}"
        assert time.monotonic() < deadline, f"no '{answer}' after '{line}':\n{broker.log()[-2000:]}"
        time.sleep(0.05)


def fail_broker(broker, failing: int, election_delay: float) -> list[str]:
    """Takes a broker down and, `election_delay` seconds later (a controller notices a dead broker
    after some seconds), moves the leadership of every partition it led to a live broker. Returns
    the topics that moved."""
    leaders = partition_leaders(broker.bootstrap)
    command(broker, f"down {failing}", f"ok: broker {failing} down")
    time.sleep(election_delay)
    moved = []
    for index, (topic, (leader, _)) in enumerate(sorted(leaders.items())):
        if leader == failing:
            target = [b for b in BROKERS if b != failing][index % 2]
            command(broker, f"leader {topic} {target}", f"ok: broker {target} leads {topic}")
            moved.append(topic)
    return moved


def assert_continued(viewer: Viewer, stream, name: str) -> None:
    """At most one reset; every stream is the published bytes from a keyframe Cluster on (the
    first from the stream's start), and the last one runs to the end."""
    assert 1 <= len(viewer.streams) <= 2, f"{name}: {len(viewer.streams)} resets ({viewer.describe()[-300:]})"
    for watched in viewer.streams:
        media = bytes(watched.media)
        start = stream.data.find(media[:64], len(stream.init_segment))
        assert watched.init == stream.init_segment, f"{name}: wrong init segment"
        assert start in stream.keyframe_cluster_offsets, f"{name}: a stream starts at byte {start}, not at a keyframe Cluster"
        assert stream.data[start:start + len(media)] == media, f"{name}: bytes differ from the published stream"
    last = viewer.streams[-1]
    assert stream.data.endswith(bytes(last.media)[-10_000:]), f"{name}: did not get the stream's end"


async def test_leader_moves_and_a_broker_fails_mid_stream(kvb, topic):
    broker = await asyncio.to_thread(kvb.start_broker, args=["--brokers", "3"])
    publishing = await asyncio.to_thread(kvb.start_relay, "publishing", bootstrap=broker.bootstrap)
    watching = await asyncio.to_thread(kvb.start_relay, "watching", bootstrap=broker.bootstrap)
    console = await asyncio.to_thread(kvb.start_console, bootstrap=broker.bootstrap, width=100)
    stream = looped(load_fixture("vp8-opus"), 9)  # about 27 s at 100 ms a chunk
    viewers = {"viewer on the publishing relay": await Viewer.open(publishing.url, topic),
               "viewer on another relay": await Viewer.open(watching.url, topic)}
    publisher = await Publisher.open(publishing.url, topic)
    sending = asyncio.create_task(publisher.send_chunks(stream.chunks, 0.1))
    try:
        await wait_until(lambda: all(v.media_bytes > 20_000 for v in viewers.values()), 20, "both viewers receiving")
        leader, replicas = (await asyncio.to_thread(partition_leaders, broker.bootstrap))[topic]
        assert replicas == 3, f"the stream's topic has {replicas} replicas on a 3-broker cluster"

        # 1. An election: the stream's leader moves to another broker.
        elected = next(b for b in BROKERS if b != leader)
        await asyncio.to_thread(command, broker, f"leader {topic} {elected}", f"ok: broker {elected} leads {topic}")
        moved_at = time.monotonic()
        await wait_until(lambda: all(any(at > moved_at + 1 for at, kind, _ in v.events if kind == "binary") for v in viewers.values()),
                         10, "media at both viewers after the leader moved")
        print(f"leader of {topic}: broker {leader} -> {elected}")

        # 2. The new leader fails; 2 s later its partitions move to the other two; it comes back
        # 8 s after it failed.
        down_at = time.monotonic()
        moved = await asyncio.to_thread(fail_broker, broker, elected, 2)
        print(f"broker {elected} down; leadership moved for {moved}")
        await asyncio.to_thread(console.wait_screen, lambda lines: "with Kafka errors" in lines[0], 15,
                                "the console's title to count relays with Kafka errors")
        await asyncio.to_thread(console.wait_screen, lambda lines: any("kafka" in line.split() for line in lines[3:6]), 5,
                                "a relay row in state 'kafka'")
        await asyncio.sleep(max(0.0, 8 - (time.monotonic() - down_at)))
        await asyncio.to_thread(command, broker, f"up {elected}", f"ok: broker {elected} up")
        up_at = time.monotonic()
        await wait_until(lambda: all(any(at > up_at + 1 for at, kind, _ in v.events if kind == "binary") for v in viewers.values()),
                         15, "media at both viewers after the broker came back")
        # Errors show while they last: 10 s after the last one, the relays are "ok" again.
        await asyncio.to_thread(console.wait_screen, lambda lines: "Kafka errors" not in lines[0], 30,
                                "the console to clear the Kafka errors once they stopped")

        sent = await sending
        assert sent == len(stream.chunks), f"the publisher was cut off: {publisher.close_code} {publisher.close_reason}"
        stats = await publisher.wait_delivered(len(stream.data))
        session = publisher.ready["session"]
    finally:
        await publisher.close()

    # Nothing acknowledged is lost: Kafka holds the whole stream, each fragment once, in order.
    fragments = await asyncio.to_thread(session_fragments, await asyncio.to_thread(records, broker.bootstrap, topic), session)
    print(f"publisher stats {stats}; {len(fragments)} fragments in Kafka")
    assert stats["failed"] == 0, f"fragments failed during failover: {stats}"
    joined = stream.init_segment + b"".join(fragments[i] for i in sorted(fragments))
    assert sorted(fragments) == list(range(len(fragments))) and joined == stream.data, "Kafka does not hold the whole stream"

    for name, viewer in viewers.items():
        await wait_until(lambda: viewer.streams and viewer.streams[-1].ended, 15, lambda: f"{name}: 'ended' ({viewer.describe()[-300:]})")
        assert_continued(viewer, stream, name)
        await viewer.close()
    # Same records, same order, on both relays: their viewers' last streams end in the same bytes.
    shortest = min(len(v.streams[-1].media) for v in viewers.values())
    tails = {bytes(v.streams[-1].media)[-shortest:] for v in viewers.values()}
    assert shortest > 100_000 and len(tails) == 1, "the two relays' viewers got different bytes"
