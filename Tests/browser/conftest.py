"""The browser suite runs on the shared harness (Tests/harness/kvbharness: the session's broker,
relays per test through `kvb`, process logs in failing reports) and adds the system Chromium
driven by Playwright with a fake camera; the pages' console output goes into failing reports too.
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "harness"))
pytest_plugins = ["kvbharness.plugin"]

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@pytest.fixture
def topic_prefix() -> str:
    return "browser"


@pytest.fixture(scope="session")
def browser():
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        pytest.fail("system chromium not found on PATH (apt-get install chromium)")
    with sync_playwright() as pw:
        b = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
        yield b
        b.close()


@pytest.fixture
def new_page(browser, request):
    """Open pages in separate contexts (like separate people); console output kept for failures."""
    contexts = []
    consoles: list[tuple[str, list[str]]] = []
    request.node.kvb_consoles = consoles

    def make(label: str):
        ctx = browser.new_context(viewport={"width": 1100, "height": 800})
        contexts.append(ctx)
        page = ctx.new_page()
        lines: list[str] = []
        consoles.append((label, lines))
        page.on("console", lambda m: lines.append(f"{m.type}: {m.text}"))
        page.on("pageerror", lambda e: lines.append(f"pageerror: {e}"))
        return page

    yield make
    for ctx in contexts:
        ctx.close()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        for label, lines in getattr(item, "kvb_consoles", []):
            if lines:
                report.sections.append((f"console {label}", "\n".join(lines[-100:])))
