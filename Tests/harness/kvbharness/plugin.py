"""The pytest side of the harness, loaded by each suite's conftest.py (`pytest_plugins`).

Fixtures:
- `broker` (session): one `kvb-server broker` shared by the whole session;
- `kvb` (per test): a `Kvb` whose relays default to the shared broker; everything it started is
  stopped at teardown, and a relay that does not exit 0 on SIGTERM fails the test;
- `topic` (per test): a fresh topic name, prefixed by the `topic_prefix` fixture (a suite may
  override it);
- `clients` (per test): a `ClientLoop` (asyncio on a thread) for synchronous tests;
- `operator_key` (session): the secret every relay and console gets as KVB_OPERATOR_KEY.

Hooks: `async def` tests run under asyncio.run (no plugin needed); a failing test's report
carries the log of every process it started (`kvb`, or any `Kvb` passed to `report_logs`) and of
the shared broker.
"""

from __future__ import annotations

import asyncio
import inspect
import uuid

import pytest

from .processes import LOG_TAIL, OPERATOR_KEY, Kvb, KvbProcess
from .threaded import ClientLoop

_shared: dict[str, KvbProcess] = {}  # "broker": the session's broker, once started


def report_logs(node, kvb: Kvb) -> None:
    """Puts the logs of everything `kvb` starts (now or later) into `node`'s report if it fails:
    for a Kvb that outlives one test, e.g. a module-scoped fleet (call it from an autouse fixture)."""
    harnesses = node.__dict__.setdefault("kvb_harnesses", [])
    if kvb not in harnesses:
        harnesses.append(kvb)


@pytest.fixture(scope="session")
def operator_key() -> str:
    return OPERATOR_KEY


@pytest.fixture(scope="session")
def broker(tmp_path_factory) -> KvbProcess:
    """One embedded Kafka cluster (`kvb-server broker`) shared by the whole session."""
    kvb = Kvb(tmp_path_factory.mktemp("shared"))
    proc = kvb.start_broker(name="shared-broker")
    _shared["broker"] = proc
    yield proc
    _shared.pop("broker", None)
    kvb.stop_all()


@pytest.fixture
def kvb(broker, tmp_path, request) -> Kvb:
    harness = Kvb(tmp_path, broker.bootstrap)
    report_logs(request.node, harness)
    yield harness
    complaints = harness.stop_all()
    if complaints:  # SIGTERM must always end a relay cleanly (exit 0); its log is in the report
        pytest.fail("; ".join(complaints))


@pytest.fixture
def topic_prefix() -> str:
    return "kvb"


@pytest.fixture
def topic(topic_prefix) -> str:
    return f"{topic_prefix}-{uuid.uuid4().hex[:10]}"


@pytest.fixture
def clients():
    loop = ClientLoop()
    yield loop
    loop.close()


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
    if not report.failed:
        return
    seen = set()
    sources = [p for kvb in getattr(item, "kvb_harnesses", []) for p in [*kvb.procs, *kvb.consoles]]
    if "broker" in _shared:
        sources.append(_shared["broker"])
    for proc in sources:
        if id(proc) in seen:
            continue
        seen.add(id(proc))
        text = proc.log()
        if text:
            report.sections.append((f"log {proc.name} (pid {proc.pid})", text[-LOG_TAIL:]))
