"""A broadcaster on one relay, a viewer from the start on the same relay, and a late viewer on
a second relay process that shares the Kafka cluster: both see the live picture."""

import time

from kvbpage import assert_frames_rising, assert_picture_moves, snapshot, wait_js

STREAM_SECONDS = 10
LATE_JOIN_AFTER = 5
FIRST_FRAME_LIMIT = 3.0   # a late viewer sees the picture within ~one keyframe interval
DELAY_LIMIT = 3.0         # live delay a viewer would still call "live"


def test_viewers_on_two_relays_see_the_live_picture(kvb, topic, new_page):
    relay1 = kvb.start_relay()
    relay2 = kvb.start_relay()
    publisher = new_page("publisher")
    viewer_a = new_page("viewer A")
    viewer_b = new_page("viewer B")

    publisher.goto(f"{relay1.url}/broadcast.html?topic={topic}&autostart=1")
    started = time.monotonic()
    viewer_a.goto(f"{relay1.url}/watch.html?topic={topic}")

    wait_js(publisher, "window.kvbBroadcast && kvbBroadcast.bytesSent > 0", 10,
            "publisher sends its camera", state="kvbBroadcast")
    wait_js(viewer_a, "window.kvbWatch && kvbWatch.framesDecoded > 0", 10,
            "viewer A sees the first frame")

    # Viewer B arrives later, on the other relay process.
    time.sleep(max(0.0, LATE_JOIN_AFTER - (time.monotonic() - started)))
    opened = time.monotonic()
    viewer_b.goto(f"{relay2.url}/watch.html?topic={topic}")
    wait_js(viewer_b, "window.kvbWatch && kvbWatch.framesDecoded > 0", 15,
            "viewer B (late, other relay) sees the first frame")
    first_frame = time.monotonic() - opened
    print(f"viewer B first frame {first_frame:.2f} s after opening the page")
    assert first_frame < FIRST_FRAME_LIMIT, (
        f"late viewer B waited {first_frame:.2f} s for its first frame "
        f"(limit {FIRST_FRAME_LIMIT} s); kvbWatch = {snapshot(viewer_b, 'kvbWatch')}")

    def both_viewers_see_live_video(moment):
        for label, page in (("A", viewer_a), ("B", viewer_b)):
            assert_frames_rising(page, f"viewer {label} {moment}")
            assert_picture_moves(page, "#video", f"viewer {label} {moment}")

    both_viewers_see_live_video("after B joined")

    # Keep streaming to at least STREAM_SECONDS, then look again.
    time.sleep(max(0.0, STREAM_SECONDS - (time.monotonic() - started)))
    both_viewers_see_live_video(f"after {STREAM_SECONDS} s")

    for label, page in (("A", viewer_a), ("B", viewer_b)):
        wait_js(page, "kvbWatch.state === 'playing' && kvbWatch.delaySeconds !== null", 5,
                f"viewer {label} shows it is playing")
        delay = page.evaluate("kvbWatch.delaySeconds")
        print(f"viewer {label} live delay {delay:.2f} s")
        assert delay < DELAY_LIMIT, (
            f"viewer {label} is {delay:.2f} s behind the live edge; "
            f"kvbWatch = {snapshot(page, 'kvbWatch')}")
        errors = page.evaluate("kvbWatch.errors")
        assert errors == [], f"viewer {label} reported errors: {errors}"

    # The broadcaster sees the relay confirm that Kafka took the stream.
    pub = publisher.evaluate("kvbBroadcast.snapshot()")
    print(f"publisher: state {pub['state']}, sent {pub['bytesSent']} bytes, relay stats {pub['stats']}")
    assert pub["state"] == "live", f"publisher state {pub}"
    assert pub["stats"] and pub["stats"].get("acked", 0) > 0, f"no fragments acked by Kafka: {pub}"
    assert pub["stats"].get("keyframes", 0) >= STREAM_SECONDS // 2, f"too few keyframes: {pub}"
