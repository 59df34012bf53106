"""The original page, /static/index.html: your camera beside itself replayed through Kafka."""

from kvbpage import assert_frames_rising, assert_picture_moves, snapshot, wait_js


def test_original_page_plays_your_camera_back_through_kafka(kvb, new_page):
    relay = kvb.start_relay()
    page = new_page("index")
    page.goto(f"{relay.url}/static/index.html")  # default topic `video`, as in the original

    wait_js(page, "window.kvbBroadcast && kvbBroadcast.bytesSent > 0", 10,
            "the page publishes the camera", state="kvbBroadcast")
    wait_js(page, "window.kvbWatch && kvbWatch.framesDecoded > 0", 15,
            "the replay shows the first frame")
    assert_picture_moves(page, "#camera", "camera preview")
    assert_frames_rising(page, "replay")
    assert_picture_moves(page, "#replay", "replay through Kafka")

    wait_js(page, "kvbWatch.state === 'playing' && kvbWatch.delaySeconds !== null", 5,
            "the replay shows it is playing")
    w = page.evaluate("kvbWatch.snapshot()")
    wall = w["wallDelaySeconds"]
    print(f"replay live delay {w['delaySeconds']:.2f} s"
          + (f", camera to screen {wall:.2f} s" if wall is not None else ""))
    assert w["delaySeconds"] < 3.0, f"replay is far behind live: {w}"
    assert w["errors"] == [], f"replay reported errors: {w}"
    assert page.evaluate("kvbBroadcast.state") == "live", snapshot(page, "kvbBroadcast")
