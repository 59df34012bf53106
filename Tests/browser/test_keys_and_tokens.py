"""What broadcasters and viewers see on a relay that needs a publish key and watch tokens: the
broadcast page is refused without the key and says why, takes the key, streams, and remembers it
for the tab; the watch page plays with the token from its URL."""

from kvbharness import SERVER

import subprocess

from kvbpage import assert_frames_rising, wait_js

PUBLISH_KEY = "browser-publish-key-1"
WATCH_KEY = "browser-watch-token-key-0123456789"


def test_the_broadcast_page_asks_for_the_key_and_the_watch_page_uses_its_token(kvb, topic, new_page):
    relay = kvb.start_relay(args=["--publish-key", f"{topic}={PUBLISH_KEY}"], env={"KVB_WATCH_TOKEN_KEY": WATCH_KEY})
    publisher = new_page("publisher")
    publisher.goto(f"{relay.url}/broadcast.html?topic={topic}")
    publisher.click("#start")
    wait_js(publisher, "kvbBroadcast.state === 'error'", 15, "the page refused without a key", state="kvbBroadcast")
    assert "publish key" in publisher.locator("#error").inner_text(), "the page does not say a key is needed"
    assert "needed" in (publisher.locator("#key-row").get_attribute("class") or ""), "the key field is not highlighted"

    publisher.fill("#key", PUBLISH_KEY)
    publisher.click("#start")
    wait_js(publisher, "kvbBroadcast.state === 'live' && kvbBroadcast.stats && kvbBroadcast.stats.acked > 0", 15,
            "the page streams with its key", state="kvbBroadcast")
    assert "needed" not in (publisher.locator("#key-row").get_attribute("class") or ""), "the key field still says a key is needed"
    # Remembered for the tab: a reload has it, and the key never went into a URL.
    publisher.reload()
    assert publisher.input_value("#key") == PUBLISH_KEY, "the key was not remembered for the tab"
    assert PUBLISH_KEY not in publisher.url
    publisher.click("#start")
    wait_js(publisher, "kvbBroadcast.state === 'live'", 15, "the reloaded page streams", state="kvbBroadcast")

    url = subprocess.run([SERVER, "token", "--topic", topic, "--ttl", "10m", "--base-url", relay.url], capture_output=True,
                         text=True, timeout=20, env={"KVB_WATCH_TOKEN_KEY": WATCH_KEY, "PATH": "/usr/bin:/bin"}).stdout.strip()
    viewer = new_page("viewer")
    viewer.goto(url)
    wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing'", 20, "the viewer with a token plays")
    assert_frames_rising(viewer, "the viewer with a token")

    refused = new_page("viewer without a token")
    refused.goto(f"{relay.url}/watch.html?topic={topic}")
    wait_js(refused, "kvbWatch.state === 'error'", 15, "the viewer without a token is refused")
    assert "watch token" in refused.locator("#state").inner_text()
