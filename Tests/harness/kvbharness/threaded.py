"""Clients that keep running while a plain (synchronous) test waits on the wall clock or drives a
terminal: an asyncio loop on its own thread, a publisher that keeps a topic live with exact ground
truth, and a viewer that remembers when things happened."""

from __future__ import annotations

import asyncio
import threading
import time

from .clients import Publisher, Viewer, wait_until


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
