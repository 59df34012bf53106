"""Viewers of the past (`/ws/watch/T?from=…`): they get the recorded stream from a keyframe at or
before the time asked, byte for byte as it was published and at the pace it was recorded, and
its end; at most `--max-replay-viewers` at once (4503 beyond, with the reason); a time that is not
one, or one the topic holds nothing of, is closed with 4404; the operator sees them in the status
(state "replay") and can kick them. Live viewers are not disturbed."""

from __future__ import annotations

import asyncio
import time

from kvbharness import Publisher, Viewer, fleet_status, load_fixture, run_console, wait_until


async def test_replay_viewers_get_the_recording_at_its_pace_within_their_limit(kvb, topic, broker):
    relay = await asyncio.to_thread(kvb.start_relay, "replayrelay", args=["--max-replay-viewers", "2"])
    fixture = load_fixture("vp8-opus")
    live = await Viewer.open(relay.url, topic)
    async with await Publisher.open(relay.url, topic) as publisher:
        started = time.time()
        await publisher.send_chunks(fixture.chunks, 0.1)
        await publisher.wait_delivered(len(fixture.data))
    recorded = time.time() - started
    await wait_until(lambda: live.streams and live.streams[-1].ended, 10, "the live viewer sees the end")

    # Two viewers from before the session began: the whole session, from its first keyframe,
    # byte for byte, taking about as long as it took to record.
    since = int(time.time() - recorded - 5)
    opened = time.monotonic()
    replays = [await Viewer.open(relay.url, topic, query={"from": f"-{int(time.time()) - since}s"}) for _ in range(2)]
    for replay in replays:
        await wait_until(lambda: replay.streams and replay.streams[-1].ended, recorded + 15,
                         lambda: f"the replay reaches the session's end: {replay.describe()}")
    took = time.monotonic() - opened
    published = fixture.data[fixture.keyframe_cluster_offsets[0]:]
    for replay in replays:
        stream = replay.streams[-1]
        assert stream.init == fixture.init_segment, "the replay's init segment is the publisher's"
        assert bytes(stream.media) == published, f"replayed {len(stream.media)} bytes, published {len(published)}"
        spread = stream.frames[-1][0] - stream.frames[0][0]
        print(f"replay: {len(stream.media)} bytes over {spread:.2f} s (recorded in {recorded:.2f} s); done {took:.2f} s after opening")
        assert spread >= recorded * 0.6, f"sent in {spread:.2f} s, not at the recorded pace ({recorded:.2f} s)"

    # A third at once is refused, with the reason; a time that is not one, or before anything: 4404.
    third = await Viewer.open(relay.url, topic, query={"from": "-1m"})
    code, reason = await third.wait_closed(10)
    assert code == 4503 and "earlier time" in reason, (code, reason)

    for replay in replays:
        await replay.close()
    for bad in ("yesterday", "-x"):
        viewer = await Viewer.open(relay.url, topic, query={"from": bad})
        code, reason = await viewer.wait_closed(10)
        assert code == 4404 and "not a time" in reason, (bad, code, reason)
    nothing = await Viewer.open(relay.url, f"{topic}-empty", query={"from": "-10s"})
    code, reason = await nothing.wait_closed(10)
    assert code == 4404, (code, reason)

    # Their places are free again once they left.
    again = await Viewer.open(relay.url, topic, query={"from": "-1m"})
    await wait_until(lambda: again.media_bytes > 0, 10, lambda: f"a new replay plays: {again.describe()}")

    # The operator sees it (state "replay") and can kick it: its socket is closed with 4001.
    statuses = {s["relay"]: s for s in await asyncio.to_thread(fleet_status, broker.bootstrap)}
    rewinding = [s for s in statuses["replayrelay"]["sessions"] if s["role"] == "viewer" and s.get("state") == "replay"]
    assert len(rewinding) == 1, statuses["replayrelay"]["sessions"]
    result = await asyncio.to_thread(run_console, "send", "kick", "--viewer", rewinding[0]["id"], "--relay", "replayrelay",
                                     "--wait", "5", bootstrap=broker.bootstrap, timeout=30)
    assert result.returncode == 0, result.stdout + result.stderr
    code, reason = await again.wait_closed(5)
    assert code == 4001, (code, reason)
    assert live.close_code is None, "the live viewer was disturbed"
    await live.close()


async def test_a_replay_that_catches_up_is_sent_faster_and_told_when_it_is_live(kvb, topic):
    relay = await asyncio.to_thread(kvb.start_relay)
    fixture = load_fixture("vp8-opus")
    async with await Publisher.open(relay.url, topic) as publisher:
        started = time.time()
        await publisher.send_chunks(fixture.chunks, 0.1)
        await publisher.wait_delivered(len(fixture.data))
    recorded = time.time() - started

    behind = await Viewer.open(relay.url, topic, query={"from": "-1m"})
    catching = await Viewer.open(relay.url, topic, query={"from": "-1m", "catchup": "1"})
    await wait_until(lambda: catching.notices("caughtUp"), recorded + 10, lambda: f"told it caught up: {catching.describe()}")
    fast = catching.streams[-1]
    assert bytes(fast.media) == fixture.data[fixture.keyframe_cluster_offsets[0]:], "the catching-up replay is the recording"
    spread = fast.frames[-1][0] - fast.frames[0][0]
    print(f"catching up: the {recorded:.2f} s recording sent in {spread:.2f} s, then caughtUp")
    assert spread < recorded * 0.85, f"not faster than recorded: {spread:.2f} s for {recorded:.2f} s"
    await wait_until(lambda: behind.streams and behind.streams[-1].ended, recorded + 10, "the other replay ends too")
    assert not behind.notices("caughtUp"), "a replay that stays behind is not told to go live"
    for viewer in (behind, catching):
        await viewer.close()
