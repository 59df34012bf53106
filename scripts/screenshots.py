#!/usr/bin/env python3
"""`make screenshots`: the pictures in the README, taken from a real run.

Two relays on the embedded cluster, three broadcasts (the clock test pattern and two fake
cameras), Chromium through Playwright. Writes into docs/ (or --out):

- watch-playing.png: the watch page on relay 2 playing the clock pattern published on relay 1,
  with the stats overlay (glass-to-glass delay read from the displayed frames);
- watch-paused.png: the same page after `kvb-console send pause --topic T`;
- watch-kicked.png: the same page after `kvb-console send kick --viewer V --relay R`;
- front-page.png: relay 2's front page, a wall of the three live previews, and the broadcasts
  Kafka holds (the three live ones and a short one that has ended);
- watch-rewind.png: the watch page 20 s back (`from=-20s`), with its seek bar and "back to live";
- recordings.png: the clock topic's recordings page, one of them playing.

    scripts/screenshots.py KVB_SERVER KVB_CONSOLE [--out docs]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "harness"))
sys.path.insert(0, str(ROOT / "Tests" / "browser"))

CHROMIUM_ARGS = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required"]
VIEWPORT = {"width": 1100, "height": 720}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="the kvb-server binary")
    parser.add_argument("console", help="the kvb-console binary (sends the pause and the kick)")
    parser.add_argument("--out", default=str(ROOT / "docs"), help="folder for the PNG files")
    args = parser.parse_args()
    # Read once by the harness when it is imported.
    os.environ["KVB_SERVER"] = str(Path(args.server).resolve())
    os.environ["KVB_CONSOLE"] = str(Path(args.console).resolve())

    from playwright.sync_api import sync_playwright

    from kvbharness import fleet_status, run_console
    from kvbharness.processes import Kvb
    from kvbpage import wait_js

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("chromium not found on PATH (make deps installs it)", file=sys.stderr)
        return 1
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    suffix = uuid.uuid4().hex[:4]
    clock, studio, lobby, talk = f"clock-{suffix}", f"studio-{suffix}", f"lobby-{suffix}", f"talk-{suffix}"

    def send(*command: str) -> None:
        result = run_console("send", *command, "--wait", "5", bootstrap=kvb.shared_bootstrap)
        if result.returncode != 0:
            raise RuntimeError(f"kvb-console send {' '.join(command)}: {result.stdout}{result.stderr}")

    def shoot(page, name: str) -> None:
        path = out / name
        # The page down to the end of its content, not the empty viewport below.
        bottom = page.evaluate("Math.max(...[...document.body.children].map(e => e.getBoundingClientRect().bottom))")
        page.screenshot(path=str(path), clip={"x": 0, "y": 0, "width": VIEWPORT["width"],
                                              "height": min(VIEWPORT["height"], int(bottom) + 24)})
        print(f"wrote {path}")

    with tempfile.TemporaryDirectory(prefix="kvb-screenshots-") as tmp:
        kvb = Kvb(Path(tmp))
        try:
            kvb.shared_bootstrap = kvb.start_broker(backend="embedded").bootstrap
            relay1 = kvb.start_relay()
            relay2 = kvb.start_relay()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
                publishers = []
                for relay, topic, source in ((relay1, clock, "&source=clock"), (relay1, studio, ""), (relay2, lobby, "")):
                    page = browser.new_context(viewport=VIEWPORT).new_page()
                    page.goto(f"{relay.url}/broadcast.html?topic={topic}&autostart=1{source}")
                    wait_js(page, "window.kvbBroadcast && kvbBroadcast.state === 'live' && kvbBroadcast.stats "
                            "&& kvbBroadcast.stats.acked > 0", 20, f"broadcast {topic} is live", state="kvbBroadcast")
                    publishers.append(page)

                # The watch page, with the stats overlay, once the glass figure has settled.
                viewer = browser.new_context(viewport=VIEWPORT).new_page()
                viewer.add_init_script("localStorage.setItem('kvb.watch.stats', 'shown')")
                viewer.goto(f"{relay2.url}/watch.html?topic={clock}")
                wait_js(viewer, "window.kvbWatch && kvbWatch.state === 'playing' && kvbWatch.glass.status === 'measuring' "
                        "&& kvbWatch.glass.log.length >= 300", 40, "the watch page measures glass to glass", state="kvbWatch")

                # A short broadcast that has ended: a recording on the front page.
                short = browser.new_context(viewport=VIEWPORT).new_page()
                short.goto(f"{relay1.url}/broadcast.html?topic={talk}&autostart=1")
                wait_js(short, "window.kvbBroadcast && kvbBroadcast.state === 'live' && kvbBroadcast.stats "
                        "&& kvbBroadcast.stats.acked > 0", 20, f"broadcast {talk} is live", state="kvbBroadcast")
                time.sleep(4)
                short.click("#stop")
                short.context.close()

                # The front page, meanwhile: three previews, all decoding (the clock has that viewer),
                # and the four broadcasts Kafka holds.
                front = browser.new_context(viewport=VIEWPORT).new_page()
                front.goto(f"{relay2.url}/")
                live = " && ".join(f"kvbWall.snapshot().some(t => t.topic === '{t}' && t.framesDecoded > 30)"
                                   for t in (clock, studio, lobby))
                wait_js(front, f"window.kvbWall && {live}", 30, "three previews decoding", state="kvbWall")
                wait_js(front, f"(kvbWall.recordings || []).some(r => r.topic === '{talk}' && r.session.ended)", 20,
                        "the ended broadcast listed", state="kvbWall")
                time.sleep(2)   # the viewer counts catch up with the previews (status every second)
                shoot(front, "front-page.png")
                front.context.close()

                shoot(viewer, "watch-playing.png")

                send("pause", "--topic", clock)
                wait_js(viewer, "kvbWatch.state === 'paused'", 10, "the page shows the pause", state="kvbWatch")
                time.sleep(1.5)
                shoot(viewer, "watch-paused.png")
                send("resume", "--topic", clock)
                wait_js(viewer, "kvbWatch.state === 'playing'", 10, "the page plays again", state="kvbWatch")

                # Watching 20 s back, with the seek bar over what Kafka holds; then the recordings page.
                rewound = browser.new_context(viewport=VIEWPORT).new_page()
                rewound.add_init_script("localStorage.setItem('kvb.watch.stats', 'shown')")
                rewound.goto(f"{relay2.url}/watch.html?topic={clock}&from=-20s")
                wait_js(rewound, "window.kvbWatch && kvbWatch.state === 'playing' && kvbWatch.glass.status === 'measuring' "
                        "&& kvbWatch.glass.log.length >= 90", 40, "the rewound page plays", state="kvbWatch")
                shoot(rewound, "watch-rewind.png")
                rewound.context.close()
                recordings = browser.new_context(viewport=VIEWPORT).new_page()
                recordings.goto(f"{relay2.url}/recordings.html?topic={clock}")
                wait_js(recordings, "kvbRecordings.sessions && kvbRecordings.sessions.length > 0", 20, "the recordings are listed",
                        state="kvbRecordings")
                recordings.click("button.play")
                wait_js(recordings, "document.getElementById('video').currentTime > 2", 20, "a recording plays", state="kvbRecordings")
                shoot(recordings, "recordings.png")
                recordings.context.close()

                viewer_id = relay_id = None
                deadline = time.monotonic() + 20
                while viewer_id is None and time.monotonic() < deadline:
                    for relay in fleet_status(kvb.shared_bootstrap, wait=3):
                        for session in relay.get("sessions", []):
                            if session.get("role") == "viewer" and session.get("topic") == clock \
                                    and "Chrome" in session.get("userAgent", ""):
                                viewer_id, relay_id = session["id"], relay["relay"]
                if viewer_id is None:
                    raise RuntimeError(f"the watch page of {clock} never showed in the fleet's status")
                send("kick", "--viewer", viewer_id, "--relay", relay_id)
                wait_js(viewer, "kvbWatch.state === 'kicked'", 10, "the page shows the kick", state="kvbWatch")
                time.sleep(0.5)
                shoot(viewer, "watch-kicked.png")
                browser.close()
        finally:
            kvb.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
