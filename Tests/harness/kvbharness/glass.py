"""Glass-to-glass delay, measured the way a user would see it: a broadcast page publishes the clock
test pattern (`broadcast.html?source=clock`), a watch page reads the time back from every frame it
displays (Static/js/glass-meter.js), and this module collects those figures from the viewer page.
The browser test (Tests/browser/test_glass.py) and `make bench` (scripts/bench_glass.py) both
measure through `measure`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

FIRST_FRAME_TIMEOUT = 20.0


@dataclass
class GlassRun:
    """What one viewer measured: delays of every displayed frame with a readable pattern (ms), and
    the gaps between displayed frames since its first one."""

    samples: list[int]
    longest_gap_ms: int
    stalls: list[tuple[int, int]]  # (shown at, gap ms) for gaps over 1 s
    frames: int
    first_frame_s: float
    seconds: float
    player: dict = field(default_factory=dict)

    def percentile(self, p: float) -> float | None:
        if not self.samples:
            return None
        ordered = sorted(self.samples)
        return float(ordered[min(len(ordered) - 1, int((len(ordered) - 1) * p))])

    @property
    def p50(self) -> float | None:
        return self.percentile(0.5)

    @property
    def p95(self) -> float | None:
        return self.percentile(0.95)

    def summary(self) -> str:
        if not self.samples:
            return "no readable frames"
        return (f"glass p50 {self.p50:.0f} ms, p95 {self.p95:.0f} ms, max {max(self.samples)} ms over "
                f"{len(self.samples)} frames in {self.seconds:.0f} s; longest gap between frames "
                f"{self.longest_gap_ms} ms ({len(self.stalls)} over 1 s); first frame after "
                f"{self.first_frame_s:.2f} s; jumps {self.player.get('jumps')}, resets {self.player.get('resets')}, "
                f"skipped {self.player.get('skipped')}")


def wait_until(page, expression: str, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if page.evaluate(f"() => Boolean({expression})"):
            return
        time.sleep(0.05)
    state = page.evaluate("() => window.kvbWatch ? kvbWatch.snapshot() : null")
    raise AssertionError(f"{what}: `{expression}` still false after {timeout} s; kvbWatch = {state}")


def start_clock(publisher_page, relay_url: str, topic: str) -> None:
    """Opens the broadcast page on the clock pattern and starts it."""
    publisher_page.goto(f"{relay_url}/broadcast.html?topic={topic}&source=clock&autostart=1")
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if publisher_page.evaluate("() => window.kvbBroadcast && kvbBroadcast.state === 'live'"):
            return
        time.sleep(0.05)
    raise AssertionError(f"the clock broadcast never went live: "
                         f"{publisher_page.evaluate('() => window.kvbBroadcast && kvbBroadcast.snapshot()')}")


def measure(viewer_page, relay_url: str, topic: str, seconds: float, query: str = "", during=None) -> GlassRun:
    """Opens the watch page and measures from its first frame with a readable pattern on, for
    `seconds`. The publisher must already be live. `during()`, if given, runs once the viewer
    measures; its time counts in `seconds`."""
    opened = time.monotonic()
    viewer_page.goto(f"{relay_url}/watch.html?topic={topic}{query}")
    wait_until(viewer_page, "window.kvbWatch && kvbWatch.glass.status === 'measuring'", FIRST_FRAME_TIMEOUT,
               "the viewer reads the clock pattern")
    first_frame = time.monotonic() - opened
    began = time.monotonic()
    if during is not None:
        during()
    time.sleep(max(0.0, seconds - (time.monotonic() - began)))
    data = viewer_page.evaluate("""() => {
      const g = kvbWatch.glass;
      return { log: g.log, longest: g.longestGapMs, gaps: g.gaps, frames: g.frames, player: kvbWatch.snapshot() };
    }""")
    return GlassRun(
        samples=[ms for _, ms in data["log"]],
        longest_gap_ms=round(data["longest"]),
        stalls=[tuple(g) for g in data["gaps"]],
        frames=data["frames"],
        first_frame_s=first_frame,
        seconds=seconds,
        player={k: data["player"].get(k) for k in ("jumps", "resets", "skipped", "state", "errors", "history")},
    )
