"""Harness for kvb's end-to-end tests: the real `kvb-server` binary in subprocesses.

- `broker` (session): `kvb-server broker`, an embedded Kafka cluster in its own process.
- `kvb` (per test): starts relays (on the shared broker, or with their own embedded cluster) and
  extra brokers, each with its cwd in a fresh temp dir, waits until /healthz answers, and stops
  them with SIGTERM at teardown. A failing test's report carries every process's log.

`async def` tests run under asyncio.run (no plugin needed).
"""

from __future__ import annotations

import asyncio
import inspect
import os
import re
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SERVER = os.environ.get("KVB_SERVER", str(ROOT / ".build" / "debug" / "kvb-server"))
STATIC_DIR = os.environ.get("KVB_STATIC_DIR", str(ROOT / "Static"))
START_TIMEOUT = 30
LOG_TAIL = 6000  # characters of each process log shown for a failing test


@dataclass
class KvbProcess:
    """One kvb-server process (relay or broker) and its log."""

    name: str
    popen: subprocess.Popen
    workdir: Path
    log_path: Path
    url: str = ""  # http://127.0.0.1:PORT for relays
    bootstrap: str = ""  # HOST:PORT for brokers

    @property
    def pid(self) -> int:
        return self.popen.pid

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    # What the kernel says about the process: for leak and memory checks.
    def rss_mb(self) -> float:
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
        raise AssertionError("no VmRSS")

    def threads(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/task"))

    def open_fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def usage(self) -> dict:
        return {"rss_mb": round(self.rss_mb(), 1), "threads": self.threads(), "fds": self.open_fds()}

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM and wait; returns the exit code (killed with SIGKILL, -9, if it hangs)."""
        if self.popen.poll() is None:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        return self.popen.returncode


def _launch(name: str, args: list[str], workdir: Path, env: dict[str, str]) -> KvbProcess:
    if not os.access(SERVER, os.X_OK):
        pytest.fail(f"kvb-server not found at {SERVER} (build it, or set KVB_SERVER)")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen(
            [SERVER, *args], stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, cwd=workdir,
            env={k: v for k, v in {**os.environ, **env}.items() if v is not None},
        )
    return KvbProcess(name, popen, workdir, log_path)


def _wait_for(proc: KvbProcess, ready, what: str, timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            pytest.fail(f"{proc.name} exited with {proc.popen.returncode} before {what}:\n{proc.log()[-LOG_TAIL:]}")
        value = ready()
        if value:
            return value
        time.sleep(0.05)
    pytest.fail(f"{proc.name}: no {what} after {timeout} s:\n{proc.log()[-LOG_TAIL:]}")


def http_get(url: str, timeout: float = 5) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


class Kvb:
    """Starts brokers and relays for one test; everything it started is stopped at teardown."""

    def __init__(self, tmp: Path, shared_bootstrap: str | None):
        self.tmp = tmp
        self.shared_bootstrap = shared_bootstrap
        self.procs: list[KvbProcess] = []

    def start_broker(self) -> KvbProcess:
        name = f"broker{sum(p.name.startswith('broker') for p in self.procs) + 1}"
        workdir = self.tmp / name
        bootstrap_file = workdir / "bootstrap"
        proc = _launch(name, ["broker", "--bootstrap-file", str(bootstrap_file)], workdir, {})
        self.procs.append(proc)
        proc.bootstrap = _wait_for(proc, lambda: _bootstrap_line(proc.log()), "bootstrap=HOST:PORT line")
        return proc

    def start_relay(self, bootstrap: str | None = "shared", name: str | None = None) -> KvbProcess:
        """A relay on `bootstrap` ("shared": the session's broker; None: its own embedded cluster)."""
        if bootstrap == "shared":
            bootstrap = self.shared_bootstrap
        name = name or f"relay{sum(p.name.startswith('relay') for p in self.procs) + 1}"
        workdir = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        args = ["--host", "127.0.0.1", "--port", "0", "--relay-id", name, "--static-dir", STATIC_DIR]
        proc = _launch(name, args, workdir, {"BOOTSTRAP_SERVERS": bootstrap, "LOG_LEVEL": "info"})
        self.procs.append(proc)
        match = _wait_for(proc, lambda: re.search(r"listening on (http://[\d.]+:\d+)", proc.log()), "'listening on' line")
        proc.url = match.group(1)
        _wait_for(proc, lambda: _healthy(proc.url), "200 from /healthz")
        return proc

    def stop_all(self) -> list[str]:
        """SIGTERMs everything still running; returns complaints about unclean exits."""
        complaints = []
        for proc in reversed(self.procs):
            running = proc.popen.poll() is None
            code = proc.terminate()
            if running and code != 0:
                complaints.append(f"{proc.name} (pid {proc.pid}) exited with {code} on SIGTERM at teardown")
        return complaints


def _bootstrap_line(log: str) -> str | None:
    match = re.search(r"^bootstrap=(\S+)$", log, re.M)
    return match.group(1) if match else None


def _healthy(url: str) -> bool:
    try:
        return http_get(url + "/healthz", timeout=1)[0] == 200
    except OSError:
        return False


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> KvbProcess:
    """One embedded Kafka cluster (`kvb-server broker`) shared by the whole session."""
    kvb = Kvb(tmp_path_factory.mktemp("shared"), None)
    proc = kvb.start_broker()
    proc.name = "shared-broker"
    yield proc
    kvb.stop_all()


@pytest.fixture
def kvb(broker, tmp_path, request) -> Kvb:
    harness = Kvb(tmp_path, broker.bootstrap)
    request.node.kvb_procs = harness.procs  # live list: logs of whatever the test started
    request.node.kvb_shared_broker = broker
    yield harness
    complaints = harness.stop_all()
    if complaints:  # SIGTERM must always end a relay cleanly (exit 0); its log is in the report
        pytest.fail("; ".join(complaints))


@pytest.fixture
def topic() -> str:
    return f"it-{uuid.uuid4().hex[:10]}"


def pytest_pyfunc_call(pyfuncitem):
    """Runs `async def` tests in a fresh event loop."""
    if inspect.iscoroutinefunction(pyfuncitem.obj):
        names = pyfuncitem._fixtureinfo.argnames
        asyncio.run(pyfuncitem.obj(**{name: pyfuncitem.funcargs[name] for name in names}))
        return True
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if report.failed:
        procs = list(getattr(item, "kvb_procs", []))
        shared = getattr(item, "kvb_shared_broker", None)
        for proc in procs + ([shared] if shared else []):
            text = proc.log()
            if text:
                report.sections.append((f"log {proc.name} (pid {proc.pid})", text[-LOG_TAIL:]))
