"""Bad input gets a clear close code and reason, and harms nobody else (test 7)."""

from __future__ import annotations

import asyncio

from kvbharness import Publisher, Viewer, http_get, load_fixture, looped, wait_until

INVALID_TOPICS = ["bad$name", "__consumer_offsets", "x" * 300, "kvb.status", "..", "has space"]


async def publish_and_expect_close(relay_url: str, topic: str, chunks: list[bytes]) -> tuple[int, str, list]:
    async with await Publisher.open(relay_url, topic) as publisher:
        for chunk in chunks:
            if not await publisher.send(chunk):
                break
        code, reason = await publisher.wait_closed(10)
    return code, reason, publisher.messages


async def test_bad_input_is_refused_and_harms_nobody(kvb, topic):
    relay = await asyncio.to_thread(kvb.start_relay)
    healthy = looped(load_fixture("vp8-opus"), 3)
    fixture = load_fixture("vp9")
    bystander = await Viewer.open(relay.url, topic)
    publisher = await Publisher.open(relay.url, topic)
    sending = asyncio.create_task(publisher.send_chunks(healthy.chunks, 0.05))
    await wait_until(lambda: bystander.media_bytes > 0, 10, lambda: f"bystander stream ({bystander.describe()})")
    results = []

    # Not WebM at all.
    code, reason, messages = await publish_and_expect_close(relay.url, topic + "-notwebm", [b"hello, this is not a video\n" * 20])
    results.append(("not WebM", code, reason))
    assert code == 4415 and "EBML" in reason, f"non-WebM first frame: close {code} {reason!r} (expected 4415, EBML)"
    assert any(m.get("type") == "error" for m in messages), f"no error message before the close: {messages}"

    # A valid header, then garbage where the next element should be.
    garbage = bytes([0x00, 0x00, 0x00, 0x00]) + b"\xff" * 64
    code, reason, messages = await publish_and_expect_close(relay.url, topic + "-broken", [fixture.init_segment, garbage])
    results.append(("broken", code, reason))
    assert code == 4422, f"valid header + garbage: close {code} {reason!r} (expected 4422)"
    assert reason.strip(), "4422 without a reason"

    # Garbage in the middle of a healthy stream, after clusters were accepted.
    code, reason, _ = await publish_and_expect_close(relay.url, topic + "-midbroken", fixture.chunks[:12] + [garbage])
    results.append(("broken mid-stream", code, reason))
    assert code == 4422, f"garbage after 12 good chunks: close {code} {reason!r} (expected 4422)"

    # Invalid topic names, for publish and for watch.
    for bad in INVALID_TOPICS:
        code, reason, messages = await publish_and_expect_close(relay.url, bad, fixture.chunks[:3])
        results.append((f"publish {bad[:24]!r}", code, reason))
        assert code == 4400 and reason.strip(), f"publish to invalid topic {bad[:40]!r}: close {code} {reason!r}"
        if len(bad) > 249:  # the close reason is cut to 123 bytes; the error message must say why
            said = reason + " ".join(m.get("message", "") for m in messages)
            assert "249" in said, f"a 300-character topic was refused without saying why: {reason!r} {messages}"
        async with await Viewer.open(relay.url, bad) as viewer:
            code, reason = await viewer.wait_closed(10)
        results.append((f"watch {bad[:24]!r}", code, reason))
        assert code == 4400 and reason.strip(), f"watch invalid topic {bad[:40]!r}: close {code} {reason!r}"
        assert not viewer.streams, f"a viewer of an invalid topic got a stream: {viewer.describe()}"

    for what, code, reason in results:
        print(f"{what:32} -> {code} {reason!r}")

    # Meanwhile the healthy stream went on untouched, and the relay takes new work.
    assert await sending == len(healthy.chunks), f"healthy publisher cut off: {publisher.close_code} {publisher.close_reason}"
    await publisher.close()
    await wait_until(lambda: bystander.streams and bystander.streams[0].ended, 10, lambda: f"'ended' ({bystander.describe()})")
    assert len(bystander.streams) == 1, bystander.describe()
    assert bystander.streams[0].init + bytes(bystander.streams[0].media) == healthy.data, "bystander's stream was disturbed"
    await bystander.close()

    async with await Viewer.open(relay.url, topic + "-after") as viewer:
        async with await Publisher.open(relay.url, topic + "-after") as publisher:
            await publisher.send_chunks(fixture.chunks, 0.02)
        await wait_until(lambda: viewer.streams and viewer.streams[0].ended, 10, lambda: f"'ended' ({viewer.describe()})")
        assert viewer.streams[0].init + bytes(viewer.streams[0].media) == fixture.data
    assert relay.popen.poll() is None, "relay died"


async def test_an_oversized_message_is_closed_with_1009(kvb, topic):
    """A message over the 8 MiB limit (sent as two frames, each within the frame limit) gets 1009,
    not a silent normal close; the relay keeps serving others."""
    relay = await asyncio.to_thread(kvb.start_relay)
    async with await Publisher.open(relay.url, topic) as publisher:
        fixture = load_fixture("vp8-opus")
        # A valid stream up to its first Cluster's header, then a SimpleBlock announcing 7 MiB
        # (within the element limit): its payload arrives as one 10 MiB message in two frames.
        first_cluster = fixture.cluster_offsets[0]
        await publisher.send(fixture.data[: first_cluster + 12] + bytes([0xA3, 0x10, 0x70, 0x00, 0x00]))
        half = b"\0" * (5 << 20)

        async def fragments():
            yield half
            yield half

        try:
            await publisher.ws.send(fragments())
        except Exception:
            pass  # the relay may close before the second frame is out
        code, reason = await publisher.wait_closed(10)
    assert code == 1009, f"oversized message: close {code} {reason!r} (expected 1009)"
    status, _ = await asyncio.to_thread(http_get, relay.url + "/healthz")
    assert status == 200, "the relay still answers after refusing the oversized message"
