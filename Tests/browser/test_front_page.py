"""The front page as a wall of live previews: three streams live on two relays appear on one
relay's front page as three small players that really decode; when a broadcaster stops, its tile
goes away."""

from __future__ import annotations

from kvbpage import wait_js

TILE_TIMEOUT = 20


def wall(page) -> list[dict]:
    return page.evaluate("() => window.kvbWall ? kvbWall.snapshot() : []")


def test_the_front_page_shows_every_live_stream_of_the_fleet(kvb, topic, new_page):
    relay1 = kvb.start_relay()
    relay2 = kvb.start_relay()
    topics = [f"{topic}-a", f"{topic}-b", f"{topic}-c"]
    publishers = {}
    for name, relay in zip(topics, (relay1, relay1, relay2)):
        page = new_page(f"publisher {name}")
        page.goto(f"{relay.url}/broadcast.html?topic={name}&autostart=1")
        wait_js(page, "window.kvbBroadcast && kvbBroadcast.state === 'live' && kvbBroadcast.stats && kvbBroadcast.stats.acked > 0",
                15, f"{name} is live", state="kvbBroadcast")
        publishers[name] = page

    # The front page of relay 2: two of the streams come through relay 1, known from the fleet's
    # status documents.
    front = new_page("front page")
    front.goto(f"{relay2.url}/")
    condition = " && ".join(
        f"kvbWall.snapshot().some(t => t.topic === '{name}' && t.state === 'playing' && t.framesDecoded > 5)"
        for name in topics)
    wait_js(front, f"window.kvbWall && {condition}", TILE_TIMEOUT, "three previews decoding", state="kvbWall")
    tiles = wall(front)
    print(f"wall: {tiles}")
    ours = [t for t in tiles if t["topic"] in topics]
    assert len(ours) == 3, tiles
    for t in ours:
        assert t["state"] == "playing", t
        assert t["viewers"].endswith("watching"), t
    # Each tile links to its watch page.
    for name in topics:
        href = front.get_attribute(f".tile[data-topic='{name}']", "href")
        assert href == f"/watch.html?topic={name}", href
    # Frames keep coming on every preview (live, not a still).
    for t in ours:
        wait_js(front, f"kvbWall.snapshot().some(t => t.topic === '{t['topic']}' && t.framesDecoded >= {t['framesDecoded'] + 20})",
                8, f"the preview of {t['topic']} keeps decoding", state="kvbWall")

    # One broadcaster stops: its tile leaves the wall; the others stay and keep playing.
    publishers[topics[1]].click("#stop")
    wait_js(front, f"!kvbWall.snapshot().some(t => t.topic === '{topics[1]}')", TILE_TIMEOUT,
            f"the tile of {topics[1]} goes away", state="kvbWall")
    assert front.locator(f".tile[data-topic='{topics[1]}']").count() == 0
    remaining = {t["topic"]: t for t in wall(front)}
    for name in (topics[0], topics[2]):
        assert name in remaining and remaining[name]["state"] == "playing", remaining

    # ...and is listed under "Recorded in Kafka" as ended, with its relay, its length, and links
    # to watch it from its start and to download it (a WebM file).
    wait_js(front, f"(kvbWall.recordings || []).some(r => r.topic === '{topics[1]}' && r.session.ended)", TILE_TIMEOUT,
            f"the broadcast of {topics[1]} listed as a recording", state="kvbWall")
    row = front.locator(f"#recordings tr[data-topic='{topics[1]}']")
    assert row.count() == 1, front.inner_html("#recordings")
    cells = row.locator("td").all_inner_texts()
    print(f"recording row: {cells}")
    assert cells[1] == topics[1] and cells[4] == relay1.name and cells[5] == "ended", cells
    assert cells[2].endswith(" s") or "min" in cells[2], cells
    live = {r["topic"]: r["session"] for r in front.evaluate("kvbWall.recordings")}
    for name in (topics[0], topics[2]):
        assert name in live and not live[name]["ended"], live.get(name)
    assert front.locator(f"#recordings tr[data-topic='{topics[0]}'] td").nth(5).inner_text() == "live now"
    watch = row.locator("a.watch-from-start").get_attribute("href")
    assert watch.startswith(f"/watch.html?topic={topics[1]}&at="), watch
    download = row.locator("a.download").get_attribute("href")
    response = front.request.get(relay2.url + download)
    assert response.status == 200 and response.headers["content-type"] == "video/webm", response.status
    assert response.body()[:4] == bytes([0x1A, 0x45, 0xDF, 0xA3]), "not a WebM file"
