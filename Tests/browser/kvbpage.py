"""What the tests look at in a kvb page: state exposed on window, and real pixels."""

from __future__ import annotations

import json
import time

from playwright.sync_api import Page
from playwright.sync_api import TimeoutError as PlaywrightTimeout

# Draw the <video> into a small canvas and return grey levels (null if nothing to draw yet).
_SIGNATURE_JS = """
(sel) => {
  const v = document.querySelector(sel);
  if (!v || v.readyState < 2 || !v.videoWidth) return null;
  const w = 160, h = 120;
  const c = document.createElement('canvas');
  c.width = w; c.height = h;
  const g = c.getContext('2d', { willReadFrequently: true });
  g.drawImage(v, 0, 0, w, h);
  const d = g.getImageData(0, 0, w, h).data;
  const out = new Array(w * h);
  for (let i = 0, j = 0; i < d.length; i += 4, j++) out[j] = (d[i] + d[i + 1] + d[i + 2]) / 3 | 0;
  return out;
}
"""


def snapshot(page: Page, name: str) -> str:
    """The page's exposed state, for assertion messages."""
    try:
        value = page.evaluate(
            f"() => window.{name} ? (window.{name}.snapshot ? window.{name}.snapshot() : window.{name}) : null"
        )
        return json.dumps(value, default=str)
    except Exception as e:  # the page may be gone
        return f"<no {name}: {e}>"


def wait_js(page: Page, expression: str, timeout: float, what: str, state: str = "kvbWatch") -> float:
    """Poll a JS expression until truthy; returns seconds waited. Fails with the page state."""
    start = time.monotonic()
    try:
        page.wait_for_function(expression, timeout=timeout * 1000, polling=50)
    except PlaywrightTimeout:
        raise AssertionError(
            f"{what}: `{expression}` still false after {timeout} s; {state} = {snapshot(page, state)}"
        ) from None
    return time.monotonic() - start


def frames(page: Page, name: str = "kvbWatch") -> int:
    return page.evaluate(f"() => window.{name} ? window.{name}.framesDecoded : 0")


def assert_frames_rising(page: Page, what: str, at_least: int = 10, timeout: float = 5) -> None:
    """The viewer keeps decoding: `at_least` more frames within `timeout` seconds."""
    before = frames(page)
    wait_js(page, f"window.kvbWatch.framesDecoded >= {before + at_least}", timeout,
            f"{what}: frames decoded stopped rising (was {before})")


def signature(page: Page, selector: str) -> list[int] | None:
    return page.evaluate(_SIGNATURE_JS, selector)


def picture_difference(a: list[int], b: list[int]) -> int:
    """How many pixels changed visibly between two signatures."""
    return sum(1 for x, y in zip(a, b) if abs(x - y) > 8)


def assert_picture_moves(page: Page, selector: str, what: str, timeout: float = 10) -> int:
    """The <video> shows a real, changing picture (the fake camera moves): not blank, not frozen."""
    deadline = time.monotonic() + timeout
    first = None
    while first is None and time.monotonic() < deadline:
        first = signature(page, selector)
        if first is None:
            time.sleep(0.05)
    assert first is not None, (
        f"{what}: nothing to draw from {selector} within {timeout} s; kvbWatch = {snapshot(page, 'kvbWatch')}"
    )
    mean = sum(first) / len(first)
    spread = (sum((x - mean) ** 2 for x in first) / len(first)) ** 0.5
    assert spread > 5, f"{what}: the picture is flat (mean {mean:.0f}, spread {spread:.1f}): no image"
    changed = 0
    while time.monotonic() < deadline:
        time.sleep(0.1)
        now = signature(page, selector)
        if now is not None:
            changed = picture_difference(first, now)
            if changed >= 30:
                return changed
    raise AssertionError(
        f"{what}: picture in {selector} did not change within {timeout} s "
        f"(max {changed} pixels differ); kvbWatch = {snapshot(page, 'kvbWatch')}"
    )
