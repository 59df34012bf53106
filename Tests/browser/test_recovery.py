"""What a viewer notices when the broadcast stops and starts again, or its relay restarts:
the page says so and comes back to the live picture by itself, without a reload."""

from kvbpage import assert_frames_rising, assert_picture_moves, wait_js


def test_viewer_follows_the_broadcaster_stopping_and_starting_again(kvb, topic, new_page):
    relay = kvb.start_relay()
    publisher = new_page("publisher")
    viewer = new_page("viewer")
    publisher.goto(f"{relay.url}/broadcast.html?topic={topic}&autostart=1")
    viewer.goto(f"{relay.url}/watch.html?topic={topic}")
    wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing'", 15, "viewer plays")

    publisher.click("#stop")
    wait_js(publisher, "kvbBroadcast.state === 'stopped'", 5, "publisher stops", state="kvbBroadcast")
    wait_js(viewer, "kvbWatch.state === 'ended'", 5, "viewer shows the broadcast ended")
    assert viewer.locator("#state").inner_text().startswith("ended")

    publisher.click("#start")
    wait_js(viewer, "kvbWatch.resets >= 2 && kvbWatch.state === 'playing'", 15,
            "viewer plays the new session")
    assert_frames_rising(viewer, "viewer after the restart")
    assert_picture_moves(viewer, "#video", "viewer after the restart")
    assert viewer.evaluate("kvbWatch.errors") == []


def test_pages_come_back_after_their_relay_restarts(kvb, topic, new_page):
    relay = kvb.start_relay()
    publisher = new_page("publisher")
    viewer = new_page("viewer")
    publisher.goto(f"{relay.url}/broadcast.html?topic={topic}&autostart=1")
    viewer.goto(f"{relay.url}/watch.html?topic={topic}")
    wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing'", 15, "viewer plays")
    resets = viewer.evaluate("kvbWatch.resets")

    relay.terminate()
    wait_js(viewer, "kvbWatch.state === 'reconnecting'", 5, "viewer shows it is reconnecting")
    wait_js(publisher, "kvbBroadcast.state === 'reconnecting'", 5,
            "publisher shows it is reconnecting", state="kvbBroadcast")

    kvb.restart(relay)  # the same port: the pages reconnect to it by themselves
    wait_js(publisher, "kvbBroadcast.state === 'live'", 20, "publisher is live again",
            state="kvbBroadcast")
    wait_js(viewer, f"kvbWatch.resets > {resets} && kvbWatch.state === 'playing'", 20,
            "viewer plays again")
    assert_frames_rising(viewer, "viewer after the relay restart")
    assert_picture_moves(viewer, "#video", "viewer after the relay restart")


def test_pages_come_back_after_their_relay_is_killed_and_other_relays_are_unaffected(kvb, topic, new_page):
    """A relay SIGKILLed mid-stream (no 1001, no flush): its pages reconnect to it when it
    returns; a viewer on another relay keeps its connection and plays the new session."""
    relay = kvb.start_relay()
    other = kvb.start_relay()
    publisher = new_page("publisher")
    viewer = new_page("viewer")
    elsewhere = new_page("viewer-elsewhere")
    publisher.goto(f"{relay.url}/broadcast.html?topic={topic}&autostart=1")
    viewer.goto(f"{relay.url}/watch.html?topic={topic}")
    elsewhere.goto(f"{other.url}/watch.html?topic={topic}")
    for page in (viewer, elsewhere):
        wait_js(page, "window.kvbWatch && kvbWatch.state === 'playing'", 20, f"{page} plays")
    resets = viewer.evaluate("kvbWatch.resets")
    elsewhere_reconnects = elsewhere.evaluate("kvbWatch.reconnects")

    relay.kill()
    wait_js(viewer, "kvbWatch.state === 'reconnecting'", 5, "viewer shows it is reconnecting")
    wait_js(publisher, "kvbBroadcast.state === 'reconnecting'", 5, "publisher shows it is reconnecting", state="kvbBroadcast")

    kvb.restart(relay)  # the same port
    wait_js(publisher, "kvbBroadcast.state === 'live'", 25, "publisher is live again", state="kvbBroadcast")
    wait_js(viewer, f"kvbWatch.resets > {resets} && kvbWatch.state === 'playing'", 25, "viewer plays again")
    wait_js(elsewhere, "kvbWatch.resets >= 2 && kvbWatch.state === 'playing'", 25, "the other relay's viewer plays the new session")
    assert elsewhere.evaluate("kvbWatch.reconnects") == elsewhere_reconnects, "the viewer on the other relay lost its connection"
    assert_frames_rising(viewer, "viewer after the relay came back")
    assert_picture_moves(elsewhere, "#video", "viewer on the other relay")
