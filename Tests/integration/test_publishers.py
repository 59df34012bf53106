"""One publisher per topic, and what viewers see when the publisher changes (tests 3 and 4)."""

from __future__ import annotations

import asyncio

from kvbharness import Publisher, Viewer, load_fixture, looped, wait_until


async def assert_refused_as_busy(relay_url: str, topic: str, where: str) -> None:
    async with await Publisher.open(relay_url, topic) as second:
        await second.send(load_fixture("vp9").chunks[0])  # a browser starts sending at once
        code, reason = await second.wait_closed(10)
    assert code == 4409, f"second publisher {where}: close code {code} ({reason!r}), expected 4409"
    assert reason.strip(), f"second publisher {where}: 4409 without a reason"
    assert second.ready is None, f"second publisher {where} was told it is ready: {second.ready}"
    print(f"refused {where}: 4409 {reason!r}; messages {second.messages}")


async def test_second_publisher_is_refused_and_first_keeps_going(kvb, topic):
    """A second publisher on the same topic gets 4409, on the same relay and on another relay
    (which only knows through Kafka); the first publisher's viewer never notices."""
    relay1 = await asyncio.to_thread(kvb.start_relay)
    relay2 = await asyncio.to_thread(kvb.start_relay)
    stream = looped(load_fixture("vp8-opus"), 3)  # about 9 s at 100 ms a chunk

    async with await Viewer.open(relay1.url, topic) as viewer:
        async with await Publisher.open(relay1.url, topic) as first:
            sending = asyncio.create_task(first.send_chunks(stream.chunks, 0.1))
            await wait_until(lambda: viewer.media_bytes > 5000, 10, lambda: f"first stream at the viewer ({viewer.describe()})")

            await assert_refused_as_busy(relay1.url, topic, "on the same relay")
            before = viewer.media_bytes
            await wait_until(lambda: viewer.media_bytes > before + 5000, 5,
                             lambda: f"viewer still receiving after the refusal ({viewer.describe()})")

            await assert_refused_as_busy(relay2.url, topic, "on another relay")
            before = viewer.media_bytes
            await wait_until(lambda: viewer.media_bytes > before + 5000, 5,
                             lambda: f"viewer still receiving after the refusal on relay 2 ({viewer.describe()})")

            assert await sending == len(stream.chunks), "the first publisher was cut off"
            assert first.close_code is None, f"first publisher closed: {first.close_code} {first.close_reason}"
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 10, lambda: f"'ended' ({viewer.describe()})")

    assert len(viewer.streams) == 1, f"the viewer was reset: {viewer.describe()}"
    got = viewer.streams[0].init + bytes(viewer.streams[0].media)
    assert got == stream.data, f"viewer got {len(got)} bytes, not the first publisher's {len(stream.data)}"


async def test_publisher_reconnect_resets_viewers(kvb, topic):
    """Publisher 1 leaves, publisher 2 connects right away (a browser reconnecting): the viewer gets
    `ended`, then `reset` with a new session, the new init segment, and the new stream exactly."""
    relay = await asyncio.to_thread(kvb.start_relay)
    first, second = load_fixture("vp8-opus"), load_fixture("vp9")

    async with await Viewer.open(relay.url, topic) as viewer:
        async with await Publisher.open(relay.url, topic) as publisher1:
            await publisher1.send_chunks(first.chunks, 0.05)
            await wait_until(lambda: publisher1.ready, 5, "ready for publisher 1")
        async with await Publisher.open(relay.url, topic) as publisher2:
            await publisher2.send(second.chunks[0])
            await wait_until(lambda: publisher2.ready or publisher2.closed.is_set(), 10, "ready for publisher 2")
            assert publisher2.close_code is None, (
                f"reconnecting publisher refused right after the old one left: {publisher2.close_code} "
                f"{publisher2.close_reason!r}")
            await publisher2.send_chunks(second.chunks[1:], 0.05)
        await wait_until(lambda: len(viewer.streams) == 2 and viewer.streams[1].ended, 15,
                         lambda: f"second stream and its end ({viewer.describe()})")

    session1, session2 = publisher1.ready["session"], publisher2.ready["session"]
    assert session1 != session2
    kinds = [doc.get("type") if kind == "text" else "binary" for _, kind, doc in viewer.events]
    first_end = kinds.index("ended")
    assert kinds[first_end + 1] == "reset", f"after 'ended' came {kinds[first_end + 1:first_end + 3]}"
    assert kinds[first_end + 2] == "binary"
    old, new = viewer.streams
    assert (old.session, new.session) == (session1, session2)
    assert old.ended and old.init + bytes(old.media) == first.data, "first stream not received exactly"
    assert new.init == second.init_segment, "the reset was not followed by the new publisher's init segment"
    assert new.init + bytes(new.media) == second.data, "second stream not received exactly"
    assert "vp9" in new.mime_type, f"reset mimeType {new.mime_type!r} for a vp9 stream"


async def test_quick_reconnects_on_the_same_relay_are_never_refused(kvb, topic):
    """Broadcasters whose sockets closed cleanly reconnect at once (a page reload, a network
    blip), over and over, on 5 topics at a time: their own relay must never call a topic busy."""
    relay = await asyncio.to_thread(kvb.start_relay)
    chunks = load_fixture("vp8-opus").chunks[:8]
    refused = []

    async def reconnect_loop(name: str) -> None:
        for attempt in range(20):
            async with await Publisher.open(relay.url, name) as publisher:
                await publisher.send_chunks(chunks, 0.01)
                await wait_until(lambda: publisher.ready or publisher.closed.is_set(), 10, "ready or close")
            if publisher.close_code not in (None, 1000):
                refused.append((name, attempt, publisher.close_code, publisher.close_reason))

    await asyncio.gather(*(reconnect_loop(f"{topic}-{i}") for i in range(5)))
    print(f"{len(refused)} of 100 immediate reconnects refused: {refused[:3]}")
    assert not refused, (
        f"RELAY BUG: {len(refused)} of 100 immediate reconnects were refused as busy because of the same "
        f"relay's own just-closed session (its end marker was not in Kafka yet): {refused[:3]}")
