"""What a viewer notices when the operator acts on it through the console: a paused stream
freezes and says so, then plays again; a switch moves the page to another topic's live picture;
a kick removes the viewer, says so, and the page stays away (docs/PROTOCOL.md, close 4001).

The operator's commands go through the real `kvb-console send` over the control topic, and the
viewer is found the way an operator finds it: in `kvb-console status`.
"""

from __future__ import annotations

import json
import time
import urllib.request

from kvbharness import fleet_status, spawn_console
from kvbpage import (assert_frames_rising, assert_picture_moves, frames, picture_difference,
                     signature, snapshot, wait_js)

STATUS_WAIT = 3.0      # seconds `kvb-console status` listens (relays publish once a second)
REACT_LIMIT = 5.0      # seconds from sending a command to what the viewer sees
KICK_WATCH = 10.0      # seconds the kicked page must stay away


def viewer_sessions(bootstrap: str, relay_id: str) -> list[dict]:
    """Browser viewer sessions on `relay_id` in the newest status document of that relay."""
    for relay in fleet_status(bootstrap, wait=STATUS_WAIT):
        if relay.get("relay") == relay_id:
            return [s for s in relay.get("sessions", [])
                    if s.get("role") == "viewer" and "Chrome" in s.get("userAgent", "")]
    return []


def wait_viewer(bootstrap: str, relay_id: str, topic: str, timeout: float = 20) -> dict:
    deadline = time.monotonic() + timeout
    seen: list[dict] = []
    while time.monotonic() < deadline:
        seen = viewer_sessions(bootstrap, relay_id)
        match = [s for s in seen if s.get("topic") == topic]
        if match:
            assert len(match) == 1, f"one browser viewer expected on {topic}, status shows {match}"
            return match[0]
    raise AssertionError(f"no browser viewer of {topic} on relay {relay_id} in status within "
                         f"{timeout} s; viewers there: {seen}")


class Command:
    """One operator command, sent in the background so the page can be watched meanwhile."""

    def __init__(self, bootstrap: str, *args: str):
        self.args = args
        self.issued = time.monotonic()
        self.proc = spawn_console("send", *args, "--wait", "5", bootstrap=bootstrap)

    def since(self) -> float:
        return time.monotonic() - self.issued

    def acknowledged(self) -> str:
        """Waits for the console: a relay must have acknowledged the command."""
        out, err = self.proc.communicate(timeout=30)
        assert self.proc.returncode == 0, (
            f"kvb-console send {' '.join(self.args)} was not acknowledged "
            f"({self.proc.returncode}):\n{out}{err}")
        print(f"  console: {out.strip()}")
        return out


def state_text(page) -> str:
    return page.locator("#state").inner_text()


def assert_frozen(page, what: str, settle: float = 8, hold: float = 2.5) -> None:
    """Nothing new reaches the screen: frames decoded stop rising and the picture stops moving.

    The media already buffered (under a second at the live edge) may play out first; on a busy
    machine the decoder can stall for a moment while doing so, so "stopped" means no new frame
    for 1.5 s in a row."""
    deadline = time.monotonic() + settle
    last = frames(page)
    still_since = time.monotonic()
    while time.monotonic() - still_since < 1.5:
        time.sleep(0.25)
        now = frames(page)
        if now != last:
            still_since = time.monotonic()
            last = now
        assert time.monotonic() < deadline, (
            f"{what}: frames decoded still rising {settle} s after the pause "
            f"({last} -> {now}); kvbWatch = {snapshot(page, 'kvbWatch')}")
    picture = signature(page, "#video")
    time.sleep(hold)
    after = frames(page)
    assert after == last, (f"{what}: {after - last} frames decoded in {hold} s while paused; "
                           f"kvbWatch = {snapshot(page, 'kvbWatch')}")
    if picture is not None:
        later = signature(page, "#video")
        changed = picture_difference(picture, later) if later is not None else 0
        assert changed < 30, f"{what}: the picture kept moving while paused ({changed} pixels changed)"


def test_viewer_sees_the_operator_pause_switch_and_kick_it(kvb, new_page):
    relay = kvb.start_relay()
    bootstrap = kvb.shared_bootstrap
    relay_id = json.loads(urllib.request.urlopen(relay.url + "/healthz").read())["relay"]
    suffix = str(time.time_ns())[-8:]
    topic_a, topic_b = f"opA-{suffix}", f"opB-{suffix}"

    pub_a = new_page("publisher A")
    pub_b = new_page("publisher B")
    viewer = new_page("viewer")
    pub_a.goto(f"{relay.url}/broadcast.html?topic={topic_a}&autostart=1")
    pub_b.goto(f"{relay.url}/broadcast.html?topic={topic_b}&autostart=1")
    for label, pub in (("A", pub_a), ("B", pub_b)):
        wait_js(pub, "window.kvbBroadcast && kvbBroadcast.state === 'live' && kvbBroadcast.session", 15,
                f"publisher {label} is live", state="kvbBroadcast")
    viewer.goto(f"{relay.url}/watch.html?topic={topic_a}")
    wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing' && kvbWatch.framesDecoded > 0", 15,
            "viewer plays A")
    session_a = pub_a.evaluate("kvbBroadcast.session")
    session_b = pub_b.evaluate("kvbBroadcast.session")
    assert viewer.evaluate("kvbWatch.session") == session_a
    assert_picture_moves(viewer, "#video", "viewer on A before the operator acts", timeout=15)

    me = wait_viewer(bootstrap, relay_id, topic_a)
    viewer_id = me["id"]
    print(f"viewer is {viewer_id} on {relay_id} ({me['userAgent'][:40]}...)")

    # (1) Pause A: the page says so and the picture freezes; resume: it plays again.
    pause = Command(bootstrap, "pause", "--topic", topic_a)
    wait_js(viewer, "kvbWatch.state === 'paused'", REACT_LIMIT, "viewer shows the pause")
    print(f"paused shown {pause.since():.2f} s after the command")
    text = state_text(viewer)
    assert text.startswith("paused") and "operator" in text, f"state shown while paused: {text!r}"
    assert viewer.locator("#state").get_attribute("data-state") == "paused"
    assert_frozen(viewer, "viewer of paused A")
    assert viewer.evaluate("kvbWatch.state") == "paused", snapshot(viewer, "kvbWatch")
    assert state_text(viewer).startswith("paused"), state_text(viewer)
    pause.acknowledged()
    paused_viewer = wait_viewer(bootstrap, relay_id, topic_a)
    assert paused_viewer["id"] == viewer_id and paused_viewer.get("state") == "paused", paused_viewer

    resume = Command(bootstrap, "resume", "--topic", topic_a)
    wait_js(viewer, "kvbWatch.state === 'playing'", 10, "viewer plays again after the resume")
    print(f"playing again {resume.since():.2f} s after the command")
    assert state_text(viewer).startswith("playing"), state_text(viewer)
    assert_frames_rising(viewer, "viewer after the resume")
    assert_picture_moves(viewer, "#video", "viewer after the resume")
    assert viewer.evaluate("kvbWatch.session") == session_a
    resume.acknowledged()

    # (2) Switch the viewer to B: the page now shows B and plays B's stream from a fresh reset.
    resets = viewer.evaluate("kvbWatch.resets")
    history = len(viewer.evaluate("kvbWatch.history"))
    switch = Command(bootstrap, "switch", "--viewer", viewer_id, "--relay", relay_id, "--to", topic_b)
    wait_js(viewer, f"kvbWatch.resets > {resets} && kvbWatch.session === {json.dumps(session_b)}",
            REACT_LIMIT + 3, "viewer resets onto B's stream")
    print(f"reset onto B {switch.since():.2f} s after the command")
    wait_js(viewer, "kvbWatch.state === 'playing' && kvbWatch.framesDecoded > 0", 10,
            "viewer plays B")
    print(f"playing B {switch.since():.2f} s after the command")
    events = [line.split(" ", 1)[1] for line in viewer.evaluate("kvbWatch.history")]
    assert "switched" in events and "reset" in events[events.index("switched"):], (
        f"expected `switched` then `reset`; recent page history: {events}")
    before_reset = events[events.index("switched"):events.index("reset", events.index("switched"))]
    assert not [e for e in before_reset if e.startswith("state playing")], (
        f"the page claimed to play {topic_b} before B's stream arrived: {events}")
    assert viewer.locator("#topic").inner_text() == topic_b
    assert topic_b in viewer.title() and topic_a not in viewer.title(), viewer.title()
    assert viewer.evaluate("location.search") == f"?topic={topic_b}"
    assert viewer.evaluate("kvbWatch.topic") == topic_b
    assert f"topic={topic_b}" in viewer.locator("#broadcast-link").get_attribute("href")
    assert_frames_rising(viewer, "viewer after the switch to B")
    assert_picture_moves(viewer, "#video", "viewer after the switch to B")
    assert viewer.evaluate("kvbWatch.errors") == [], snapshot(viewer, "kvbWatch")
    switch.acknowledged()
    moved = wait_viewer(bootstrap, relay_id, topic_b)
    assert moved["id"] == viewer_id, f"status after the switch: {moved}"

    # (3) Kick it: removed by the operator, closed with 4001, and it stays away.
    reconnects = viewer.evaluate("kvbWatch.reconnects")
    kick = Command(bootstrap, "kick", "--viewer", viewer_id, "--relay", relay_id)
    wait_js(viewer, "kvbWatch.state === 'kicked'", REACT_LIMIT, "viewer shows it was kicked")
    kicked_at = time.monotonic()
    print(f"kicked shown {kick.since():.2f} s after the command")
    assert "removed by the operator" in state_text(viewer), state_text(viewer)
    assert viewer.evaluate("kvbWatch.lastClose && kvbWatch.lastClose.code") == 4001, \
        snapshot(viewer, "kvbWatch")
    assert viewer.evaluate("kvbWatch.ws === null")
    after_kick = viewer.evaluate("kvbWatch.reconnects")
    assert after_kick <= reconnects + 1, f"reconnects {reconnects} -> {after_kick}"
    kick.acknowledged()
    while time.monotonic() - kicked_at < KICK_WATCH:
        around = viewer_sessions(bootstrap, relay_id)
        assert around == [], f"{time.monotonic() - kicked_at:.1f} s after the kick status shows {around}"
        assert viewer.evaluate("kvbWatch.state") == "kicked", snapshot(viewer, "kvbWatch")
        assert viewer.evaluate("kvbWatch.ws === null"), "the kicked page opened a new WebSocket"
        assert viewer.evaluate("kvbWatch.reconnects") == after_kick, snapshot(viewer, "kvbWatch")
    assert "removed by the operator" in state_text(viewer), state_text(viewer)

    # Nobody else was disturbed: both broadcasters are still live on their sessions.
    for label, pub, session in (("A", pub_a, session_a), ("B", pub_b, session_b)):
        assert pub.evaluate("kvbBroadcast.state") == "live", snapshot(pub, "kvbBroadcast")
        assert pub.evaluate("kvbBroadcast.session") == session, f"publisher {label} restarted"
