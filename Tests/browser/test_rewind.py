"""Watching the past, from Kafka: a clock pattern broadcast for 40 s on relay 1; a viewer on relay
2 opens the watch page with `from=-30s` and the time in the frames it shows is about 30 s old
(the clock in the picture proves where it plays from, not the page's word); the seek bar covers
what Kafka holds; one click on "back to live" brings the live picture, a fraction of a second old.
Rewound with "then catch up", the page plays faster until it has caught up, then goes live by itself.
"""

from __future__ import annotations

import statistics
import time

from kvbharness import glass
from kvbpage import wait_js

PUBLISH_SECONDS = 40
REWIND_SECONDS = 30


def glass_for(page, seconds: float) -> list[int]:
    """Glass-to-glass figures of the frames shown over the next `seconds`."""
    page.evaluate("kvbWatch.glass.clear()")
    time.sleep(seconds)
    return [ms for _, ms in page.evaluate("kvbWatch.glass.log")]


def test_watch_from_thirty_seconds_back_then_back_to_live(kvb, topic, new_page):
    relay1 = kvb.start_relay()
    relay2 = kvb.start_relay()
    publisher = new_page("publisher (clock)")
    glass.start_clock(publisher, relay1.url, topic)
    time.sleep(PUBLISH_SECONDS)

    viewer = new_page("viewer")
    viewer.goto(f"{relay2.url}/watch.html?topic={topic}&from=-{REWIND_SECONDS}s")
    wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing' && kvbWatch.glass.status === 'measuring'", 20,
            "the rewound page plays the clock pattern")
    behind = glass_for(viewer, 8)
    median = statistics.median(behind)
    print(f"from=-{REWIND_SECONDS}s: the frames shown are {median / 1000:.1f} s old (median of {len(behind)})")
    # The keyframe at or before the time may be up to a second earlier; the page may take a moment.
    assert REWIND_SECONDS * 1000 - 1500 <= median <= REWIND_SECONDS * 1000 + 3000, median
    assert len(behind) > 8 * 15, f"only {len(behind)} frames in 8 s while watching the past"
    assert viewer.locator("#live").inner_text() == "back to live"
    seek = viewer.evaluate("(() => { const s = document.getElementById('seek'); return { hidden: s.hidden, min: +s.min, max: +s.max, value: +s.value }; })()")
    print(f"seek bar: {seek}")
    assert not seek["hidden"] and seek["max"] - seek["min"] >= (PUBLISH_SECONDS - 5) * 1000, seek
    assert abs((seek["max"] - seek["value"]) - REWIND_SECONDS * 1000) < 3000, seek

    # One click: live again, a fraction of a second behind the camera.
    viewer.click("#live")
    wait_js(viewer, "window.kvbWatch && !kvbWatch.from && kvbWatch.state === 'playing' && kvbWatch.glass.status === 'measuring'", 20,
            "back to live")
    live = glass_for(viewer, 5)
    print(f"back to live: frames {statistics.median(live):.0f} ms old (median of {len(live)})")
    assert statistics.median(live) < 2000, statistics.median(live)
    assert "from=" not in viewer.url

    # Rewinding 10 s with "then catch up": the page plays faster until the relay has sent it
    # everything, then goes live by itself.
    viewer.goto(f"{relay2.url}/watch.html?topic={topic}&from=-10s&catchup=1")
    wait_js(viewer, "window.kvbWatch && kvbWatch.catchUp && kvbWatch.state === 'playing'", 20, "the page catches up")
    opened = time.monotonic()
    wait_js(viewer, "window.kvbWatch && !kvbWatch.from && kvbWatch.state === 'playing' && kvbWatch.glass.status === 'measuring'", 60,
            "the page caught up and went live by itself")
    print(f"caught up with live {time.monotonic() - opened:.1f} s after rewinding 10 s")
    assert statistics.median(glass_for(viewer, 3)) < 2000
