"""Harness for the console tests: reuses Tests/integration's process harness (kvb-server brokers and
relays in subprocesses, logs in failing reports) and its WebSocket clients, and adds:

- `ClientLoop`: an asyncio loop on a thread, so publishers and viewers keep running while a plain
  (synchronous) test drives the console in tmux and waits on the wall clock;
- `PublisherLoop`: keeps a topic live by publishing a recording over and over, and keeps exact
  ground truth (fragments the relay acknowledged, sessions finished);
- `Tmux`: the real `kvb-console` in a private tmux server (`send-keys`, `capture-pane`);
- `fleet_status()`: `kvb-console status` JSON; `start_relay()` with extra environment.
"""

from __future__ import annotations

import asyncio
import importlib.util
import json
import os
import re
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
INTEGRATION = HERE.parent / "integration"
sys.path.insert(0, str(INTEGRATION))

# Tests/integration/conftest.py under another name (both folders have a `conftest` module).
_spec = importlib.util.spec_from_file_location("kvb_harness", INTEGRATION / "conftest.py")
harness = importlib.util.module_from_spec(_spec)
sys.modules["kvb_harness"] = harness
_spec.loader.exec_module(harness)

from kvbclient import Publisher, Viewer, wait_until  # noqa: E402

ROOT = harness.ROOT
CONSOLE = os.environ.get("KVB_CONSOLE", str(ROOT / ".build" / "debug" / "kvb-console"))
Kvb = harness.Kvb
KvbProcess = harness.KvbProcess
http_get = harness.http_get

# Fixtures and hooks of the integration harness, re-exported so pytest finds them here.
broker = harness.broker
pytest_pyfunc_call = harness.pytest_pyfunc_call
pytest_runtest_makereport = harness.pytest_runtest_makereport


def start_relay(kvb: Kvb, name: str, env: dict[str, str] | None = None, bootstrap: str | None = None) -> KvbProcess:
    """Like Kvb.start_relay (shared broker, --relay-id NAME, port 0), with extra environment."""
    bootstrap = bootstrap or kvb.shared_bootstrap
    workdir = kvb.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
    args = ["--host", "127.0.0.1", "--port", "0", "--relay-id", name, "--static-dir", harness.STATIC_DIR]
    proc = harness._launch(name, args, workdir, {"BOOTSTRAP_SERVERS": bootstrap, "LOG_LEVEL": "info", **(env or {})})
    kvb.procs.append(proc)
    match = harness._wait_for(proc, lambda: re.search(r"listening on (http://[\d.]+:\d+)", proc.log()), "'listening on' line")
    proc.url = match.group(1)
    harness._wait_for(proc, lambda: harness._healthy(proc.url), "200 from /healthz")
    return proc


def fleet_status(bootstrap: str, wait: float = 2.5) -> list[dict]:
    """What `kvb-console status` prints: every live relay's latest status document."""
    result = subprocess.run([CONSOLE, "status", "--bootstrap", bootstrap, "--wait", str(wait)],
                            capture_output=True, text=True, timeout=wait + 20)
    assert result.returncode == 0, f"kvb-console status exited {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)


def api_topics(relay: KvbProcess) -> dict[str, dict]:
    status, body = http_get(relay.url + "/api/topics")
    assert status == 200, body
    return {t["name"]: t for t in json.loads(body)["topics"]}


class ClientLoop:
    """An asyncio event loop on its own thread: clients live across synchronous test steps."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, name="client-loop", daemon=True)
        self.thread.start()

    def run(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def spawn(self, coro):
        return asyncio.run_coroutine_threadsafe(coro, self.loop)

    def close(self) -> None:
        async def cancel_all():
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        try:
            self.run(cancel_all(), timeout=15)
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)


class TimedViewer(Viewer):
    """A Viewer that also remembers when its socket closed (monotonic), and its local port."""

    closed_at: float | None = None

    async def _read_all(self) -> None:
        try:
            await super()._read_all()
        finally:
            self.closed_at = time.monotonic()

    @property
    def local_port(self) -> int:
        return self.ws.local_address[1]

    def binaries_after(self, t: float) -> list[tuple[float, bytes]]:
        return [(at, value) for at, what, value in list(self.events) if what == "binary" and at > t]

    def texts(self, kind: str | None = None, after: float = 0) -> list[tuple[float, dict]]:
        return [(at, value) for at, what, value in list(self.events)
                if what == "text" and at > after and (kind is None or value.get("type") == kind)]


class PublisherLoop:
    """Keeps `topic` live on a relay: publishes `fixture`'s chunks `interval` apart, over and over,
    each pass a new WebSocket (a new session). Before closing a pass it waits for a stats message
    saying the relay parsed every byte and Kafka acknowledged every fragment, so
    `acked_total + finished` is exactly what the pass put into the topic (fragments + end marker)."""

    def __init__(self, base_url: str, topic: str, fixture, interval: float) -> None:
        self.base_url, self.topic, self.fixture, self.interval = base_url, topic, fixture, interval
        self.sessions: list[Publisher] = []
        self.finished = 0  # passes closed after everything was acknowledged
        self.errors: list[str] = []
        self._stop: asyncio.Event | None = None
        self.future = None

    def start(self, clients: ClientLoop) -> "PublisherLoop":
        self.future = clients.spawn(self._run())
        return self

    def stop(self, clients: ClientLoop, timeout: float = 30) -> None:
        async def _stop():
            self._stop.set()
        if self._stop is not None:
            clients.run(_stop())
        if self.future is not None:
            self.future.result(timeout)

    @property
    def acked_total(self) -> int:
        return sum(p.stats["acked"] for p in list(self.sessions) if p.stats)

    @property
    def current(self) -> Publisher | None:
        return self.sessions[-1] if self.sessions else None

    async def _run(self) -> None:
        self._stop = asyncio.Event()
        while not self._stop.is_set():
            try:
                publisher = await Publisher.open(self.base_url, self.topic)
            except Exception as error:  # relay gone or refusing: retry a bit later
                self.errors.append(f"open: {error!r}")
                await asyncio.sleep(0.5)
                continue
            self.sessions.append(publisher)
            try:
                await publisher.send_chunks(self.fixture.chunks, self.interval, self._stop)
                sent = publisher.sent_bytes
                stats_seen = len(publisher.messages)
                try:
                    await wait_until(
                        lambda: any(m.get("type") == "stats" and m["bytes"] == sent and m["acked"] == m["fragments"]
                                    for m in publisher.messages[stats_seen:]),
                        10, f"{self.topic}: stats acknowledging all {sent} bytes")
                except AssertionError as error:
                    if not publisher.closed.is_set():
                        self.errors.append(str(error))
                    continue
                await publisher.close()
                self.finished += 1
            finally:
                if not publisher.closed.is_set():
                    try:
                        await publisher.close()
                    except Exception:
                        pass


class Tmux:
    """A private tmux server (its own -L socket) running one command in an 80×24 window."""

    def __init__(self, command: str, width: int = 80, height: int = 24) -> None:
        self.socket = f"kvbtest-{os.getpid()}-{uuid.uuid4().hex[:6]}"
        self.target = "console"
        self._tmux("-f", "/dev/null", "new-session", "-d", "-s", self.target, "-x", str(width), "-y", str(height), command,
                   ";", "set-option", "-t", self.target, "remain-on-exit", "on")

    def _tmux(self, *args: str, check: bool = True) -> str:
        # os.environ, not the C environment: under pytest, readline has put LINES/COLUMNS there,
        # and ncurses takes those over the terminal's real size (the console would ignore resizes).
        env = {k: v for k, v in os.environ.items() if k not in ("LINES", "COLUMNS")}
        result = subprocess.run(["tmux", "-L", self.socket, *args], capture_output=True, text=True, timeout=10, env=env)
        if check and result.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args)}: {result.stderr.strip()}")
        return result.stdout

    def keys(self, *keys: str) -> float:
        """Sends keys (tmux names: Down, Enter, Escape, or literal text); returns the monotonic time
        taken just before sending."""
        at = time.monotonic()
        self._tmux("send-keys", "-t", self.target, *keys)
        return at

    def screen(self) -> list[str]:
        return self._tmux("capture-pane", "-p", "-t", self.target).split("\n")

    def text(self) -> str:
        return "\n".join(self.screen())

    def wait_screen(self, predicate, timeout: float, what: str):
        """Polls the screen until predicate(lines) is truthy; fails showing the last screen."""
        deadline = time.monotonic() + timeout
        while True:
            lines = self.screen()
            value = predicate(lines)
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out after {timeout} s waiting for {what}; screen:\n" + "\n".join(lines))
            time.sleep(0.05)

    def pane(self) -> tuple[bool, int | str | None, int]:
        """(dead, exit status or "signal N", pid) of the console's pane."""
        out = self._tmux("list-panes", "-t", self.target, "-F",
                         "#{pane_dead}|#{pane_dead_status}|#{pane_dead_signal}|#{pane_pid}").strip().split("|")
        dead = out[0] == "1"
        status: int | str | None = None
        if dead and out[1].strip():
            status = int(out[1])
        elif dead and out[2].strip():
            status = f"signal {out[2]}"
        return dead, status, int(out[3])

    def resize(self, width: int, height: int) -> None:
        self._tmux("resize-window", "-t", self.target, "-x", str(width), "-y", str(height))

    def size(self) -> tuple[int, int]:
        w, h = self._tmux("display-message", "-p", "-t", self.target, "#{window_width} #{window_height}").split()
        return int(w), int(h)

    def kill(self) -> None:
        socket_path = self._tmux("display-message", "-p", "#{socket_path}", check=False).strip()
        self._tmux("kill-server", check=False)
        if socket_path:
            Path(socket_path).unlink(missing_ok=True)


kvb = harness.kvb  # per test: relays on the session's shared broker, SIGTERMed at teardown


@pytest.fixture
def clients():
    loop = ClientLoop()
    yield loop
    loop.close()
