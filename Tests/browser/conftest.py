"""Fixtures for the real-browser tests.

A shared embedded Kafka (`kvb-server broker`) per test session, relays started per test with
BOOTSTRAP_SERVERS pointing at it, and the system Chromium driven by Playwright with a fake
camera. Relay and broker logs are attached to the report of a failing test.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from playwright.sync_api import sync_playwright

ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("KVB_SERVER", str(ROOT / ".build" / "debug" / "kvb-server"))
STATIC_DIR = os.environ.get("KVB_STATIC_DIR", str(ROOT / "Static"))
LOG_TAIL = 8000  # characters of each process log shown for a failing test

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-fake-device-for-media-stream",
    "--use-fake-ui-for-media-stream",
    "--autoplay-policy=no-user-gesture-required",
]


@dataclass
class Proc:
    name: str
    popen: subprocess.Popen
    log_path: Path
    url: str = ""

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def stop(self) -> None:
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)


@dataclass
class ProcRegistry:
    """Every process a test started, so its logs can go into the failure report."""

    procs: list[Proc] = field(default_factory=list)


_registry = ProcRegistry()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _require_server() -> None:
    if not os.access(SERVER, os.X_OK):
        pytest.fail(f"kvb-server binary not found at {SERVER} (build it, or set KVB_SERVER)")


def _start(name: str, args: list[str], workdir: Path, env: dict[str, str] | None = None) -> Proc:
    _require_server()
    log_path = workdir / f"{name}.log"
    log = open(log_path, "wb")
    popen = subprocess.Popen(
        [SERVER, *args],
        stdout=log,
        stderr=subprocess.STDOUT,
        stdin=subprocess.DEVNULL,
        cwd=workdir,
        env={**os.environ, **(env or {})},
    )
    log.close()
    proc = Proc(name, popen, log_path)
    _registry.procs.append(proc)
    return proc


def _wait(what: str, proc: Proc, ready, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{what} exited with {proc.popen.returncode}:\n{proc.log()[-LOG_TAIL:]}")
        if ready():
            return
        time.sleep(0.05)
    pytest.fail(f"{what} not ready after {timeout} s:\n{proc.log()[-LOG_TAIL:]}")


@pytest.fixture(scope="session")
def workdir():
    d = Path(tempfile.mkdtemp(prefix="kvb-browser-"))
    yield d
    shutil.rmtree(d, ignore_errors=True)


@pytest.fixture(scope="session")
def broker(workdir) -> str:
    """An embedded Kafka cluster in its own process; yields HOST:PORT."""
    _require_server()
    bootstrap_file = workdir / "bootstrap"
    # The embedded cluster listens on a free loopback port of its choosing.
    args = ["broker", "--bootstrap-file", str(bootstrap_file)]
    proc = _start("broker", args, workdir)

    def ready() -> bool:
        return bootstrap_file.exists() and ":" in bootstrap_file.read_text()

    _wait("kvb-server broker", proc, ready, 30)
    yield bootstrap_file.read_text().strip()
    proc.stop()


class Relays:
    def __init__(self, workdir: Path, bootstrap: str):
        self.workdir = workdir
        self.bootstrap = bootstrap
        self.started: list[Proc] = []

    def start(self, port: int | None = None) -> Proc:
        """Start a relay (on `port`, e.g. to restart one, or on a free port)."""
        port = port or free_port()
        name = f"relay{len(self.started) + 1}-{port}"
        proc = _start(
            name,
            ["--host", "127.0.0.1", "--port", str(port), "--static-dir", STATIC_DIR],
            self.workdir,
            env={"BOOTSTRAP_SERVERS": self.bootstrap},
        )
        proc.url = f"http://127.0.0.1:{port}"

        def healthy() -> bool:
            try:
                with urllib.request.urlopen(proc.url + "/healthz", timeout=1) as r:
                    return r.status == 200
            except OSError:
                return False

        _wait(f"relay {name}", proc, healthy, 30)
        self.started.append(proc)
        return proc

    def stop_all(self) -> None:
        for p in self.started:
            p.stop()


@pytest.fixture
def relays(workdir, broker, request):
    r = Relays(workdir, broker)
    request.node.kvb_procs = r.started
    yield r
    r.stop_all()


@pytest.fixture
def topic() -> str:
    return f"browser-{uuid.uuid4().hex[:10]}"


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
    if report.failed and report.when in ("call", "setup", "teardown"):
        procs = [p for p in _registry.procs if p.name == "broker"]
        procs += getattr(item, "kvb_procs", [])
        for proc in procs:
            text = proc.log()
            if text:
                report.sections.append((f"log {proc.name}", text[-LOG_TAIL:]))
        for label, lines in getattr(item, "kvb_consoles", []):
            if lines:
                report.sections.append((f"console {label}", "\n".join(lines[-100:])))
