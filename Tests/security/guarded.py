"""A relay with every protection on and small limits, and a healthy stream beside the bad input.

`GuardedRelay` starts one relay on the session's broker with publish keys, watch tokens, topic
patterns, an origin allow-list and limits small enough to reach in a test. A `Bystander` keeps a
stream live on it the whole time (one publisher, one viewer, both keyed); after every bad input
`check()` proves the bystander's viewer is still byte-exact with what was published and still
receiving. Each catalogue test then asserts what the offender got (close code and reason) and
which counter moved.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from dataclasses import dataclass, field

from kvbharness import ClientLoop, Kvb, Publisher, Viewer, load_fixture, looped, wait_until
from kvbharness.trust import from_address, rejected, watch_token

PUBLISH_KEY = "publish-secret-sec"          # for sec-* topics
OTHER_KEY = "publish-secret-other"          # for other-* topics
WATCH_KEY = "watch-token-key-for-tests-0123456789"
ALLOWED_ORIGIN = "https://studio.example.com"

LIMITS = {
    "max-publish-message-bytes": 256 << 10,
    "max-watch-message-bytes": 1024,
    "max-publish-bitrate": 8_000_000,
    "publish-burst-seconds": 2,
    "max-init-segment-bytes": 64 << 10,
    "max-element-bytes": 512 << 10,
    "max-publishers": 3,
    "max-viewers": 12,
    "max-viewers-per-topic": 4,
    "max-feeds": 5,
    "max-connections-per-address": 6,
    "max-viewer-messages-per-second": 5,
    "handshake-timeout": 2,
    "idle-publisher-timeout": 3,
    "stalled-viewer-timeout": 3,
}

ARGS = [
    "--publish-key", f"sec-*={PUBLISH_KEY}",
    "--publish-key", f"other-*={OTHER_KEY}",
    "--topic-pattern", "sec-*", "--topic-pattern", "other-*", "--topic-pattern", "misc-*",
    "--allowed-origin", ALLOWED_ORIGIN,
] + [item for name, value in LIMITS.items() for item in (f"--{name}", str(value))]

_addresses = (f"127.0.{a}.{b}" for a, b in itertools.product(range(10, 250), range(1, 250)))


def fresh_address() -> str:
    """A loopback address no other test used: per-address limits start from zero there."""
    return next(_addresses)


@dataclass
class Bystander:
    """A healthy stream that must not notice anything: a keyed publisher at the recording's pace
    and a viewer with a token, on a topic of their own."""

    url: str
    topic: str
    fixture = None
    publisher: Publisher | None = None
    viewer: Viewer | None = None
    sending: asyncio.Task | None = None
    checked_bytes: int = 0
    checks: int = 0

    async def start(self) -> None:
        self.fixture = looped(load_fixture("vp8-opus"), 150)
        self.viewer = await Viewer.open(self.url, self.topic, query={"token": watch_token(WATCH_KEY, self.topic)})
        self.publisher = await Publisher.open(self.url, self.topic, query={"key": PUBLISH_KEY})
        self.sending = asyncio.create_task(self.publisher.send_chunks(self.fixture.chunks, 0.1))
        await wait_until(lambda: self.viewer.media_bytes > 0, 15, lambda: f"the bystander's first media ({self.viewer.describe()})")

    async def check(self) -> int:
        """The viewer got exactly a prefix of what was published, in one stream, nothing skipped,
        and it keeps coming. Returns the bytes checked."""
        await wait_until(lambda: self._received() > self.checked_bytes, 5,
                         lambda: f"the bystander to keep receiving ({self.viewer.describe()})")
        assert not self.publisher.closed.is_set(), f"bystander publisher closed: {self.publisher.close_code} {self.publisher.close_reason}"
        assert not self.viewer.closed.is_set(), f"bystander viewer closed: {self.viewer.close_code} {self.viewer.close_reason}"
        assert len(self.viewer.streams) == 1, f"the bystander was reset: {self.viewer.describe()}"
        assert not self.viewer.notices("skipped"), "the bystander's viewer was skipped forward"
        stream = self.viewer.streams[0]
        got = bytes(stream.init) + bytes(stream.media)
        assert got == self.fixture.data[: len(got)], "the bystander's bytes differ from what was published"
        self.checked_bytes = len(got)
        self.checks += 1
        return len(got)

    def _received(self) -> int:
        stream = self.viewer.streams[0] if self.viewer and self.viewer.streams else None
        return len(stream.init or b"") + len(stream.media) if stream else 0

    async def stop(self) -> None:
        if self.sending:
            self.sending.cancel()
        for sock in (self.publisher, self.viewer):
            if sock and not sock.closed.is_set():
                try:
                    await sock.close()
                except Exception:
                    pass


@dataclass
class Outcome:
    """What an offender got."""

    code: int | None
    reason: str
    messages: list = field(default_factory=list)


class GuardedRelay:
    def __init__(self, kvb: Kvb) -> None:
        self.kvb = kvb
        # At debug level: the log must hold no secret even then.
        self.relay = kvb.start_relay("guarded", args=ARGS, env={"KVB_WATCH_TOKEN_KEY": WATCH_KEY, "LOG_LEVEL": "debug"})
        self.url = self.relay.url
        self.loop = ClientLoop()
        self.bystander = Bystander(self.url, "sec-bystander")
        self.loop.run(self.bystander.start())
        self.rows: list[tuple] = []

    def run(self, coro, timeout: float = 60):
        return self.loop.run(coro, timeout)

    def expect(self, what: str, scenario, code: int, reason: str, counter: str | None, timeout: float = 60,
               already_counted: bool = False) -> Outcome:
        """Runs `scenario` (a coroutine giving an Outcome) and checks the offender got `code` with
        `reason` in its close reason or error message, that `kvb_rejected_total{reason=counter}`
        went up by one (`already_counted`: the scenario waited for that itself), and that the
        bystander is untouched."""
        before = rejected(self.relay, counter) if counter and not already_counted else None
        outcome: Outcome = self.run(scenario, timeout)
        said = outcome.reason + " " + " ".join(m.get("message", "") for m in outcome.messages if isinstance(m, dict))
        assert outcome.code == code, f"{what}: closed with {outcome.code} {outcome.reason!r}, expected {code}"
        assert reason.lower() in said.lower(), f"{what}: the reason {said!r} does not say {reason!r}"
        if before is not None:
            deadline = time.monotonic() + 3
            while rejected(self.relay, counter) < before + 1 and time.monotonic() < deadline:
                time.sleep(0.05)
            assert rejected(self.relay, counter) == before + 1, f"{what}: kvb_rejected_total{{reason={counter}}} did not move by one"
        checked = self.run(self.bystander.check())
        self.rows.append((what, outcome.code, outcome.reason, counter, checked))
        print(f"{what:48} -> {outcome.code} {outcome.reason[:70]!r} [{counter}] bystander {checked} B exact")
        assert self.relay.running, "the relay died"
        return outcome

    def close(self) -> None:
        try:
            self.run(self.bystander.stop())
        finally:
            self.loop.close()


async def publish(url: str, topic: str, chunks=(), query=None, interval: float = 0.0, hello: dict | None = None,
                  source: str | None = None, wait: float = 10, **kwargs) -> Outcome:
    """Publishes `chunks` (after a text `hello`, if given) and waits for the relay to close."""
    if source:
        kwargs["sock"] = from_address(url, source)
    async with await Publisher.open(url, topic, query=query, **kwargs) as publisher:
        if hello is not None:
            import json
            await publisher.ws.send(json.dumps(hello))
        for chunk in chunks:
            if not await publisher.send(chunk):
                break
            if interval:
                await asyncio.sleep(interval)
        code, reason = await publisher.wait_closed(wait)
    return Outcome(code, reason, publisher.messages)


async def watch(url: str, topic: str, query=None, source: str | None = None, wait: float = 10, **kwargs) -> Outcome:
    """Opens a viewer and waits for the relay to close it."""
    if source:
        kwargs["sock"] = from_address(url, source)
    async with await Viewer.open(url, topic, query=query, **kwargs) as viewer:
        code, reason = await viewer.wait_closed(wait)
    return Outcome(code, reason, [doc for _, kind, doc in viewer.events if kind == "text"])


async def one_too_many(url: str, held: list[tuple[str, str]], extra: tuple[str, str]) -> Outcome:
    """Holds a viewer for each (topic, source address) in `held`, checks that every one was
    accepted, then opens one more from (topic, source address) and returns what it got."""
    viewers = []
    try:
        for topic, source in held:
            viewers.append(await Viewer.open(url, topic, query=token(topic), sock=from_address(url, source)))
        await asyncio.sleep(0.3)
        refused = [v.describe() for v in viewers if v.closed.is_set()]
        assert not refused, f"viewers within the limits were refused: {refused}"
        topic, source = extra
        return await watch(url, topic, query=token(topic), source=source)
    finally:
        for viewer in viewers:
            await viewer.close()


def token(topic: str, **kwargs) -> dict[str, str]:
    return {"token": watch_token(WATCH_KEY, topic, **kwargs)}
