"""Publisher and viewer clients speaking kvb's WebSocket protocol (docs/PROTOCOL.md), as a browser
would: the publisher sends MediaRecorder chunks, the viewer records everything it receives with
the time it arrived, so tests can check bytes, order, notices and delays.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from dataclasses import dataclass, field
from urllib.parse import quote, urlencode

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from .webm import CLUSTER_ID, Fixture

CONNECT_TIMEOUT = 10


def ws_url(base_url: str, kind: str, topic: str, query: dict[str, str] | None = None) -> str:
    """ws://host:port/ws/{publish|watch}/{topic}[?query], the topic percent-encoded."""
    url = base_url.replace("http://", "ws://") + f"/ws/{kind}/" + quote(topic, safe="")
    return url + ("?" + urlencode(query) if query else "")


async def wait_until(condition, timeout: float, what, interval: float = 0.02):
    """Polls `condition()` until it returns something truthy; fails after `timeout` saying what it
    waited for (`what`: a string, or a function giving one, called then to show the state)."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.1f} s waiting for {what() if callable(what) else what}")
        await asyncio.sleep(interval)


class _Socket:
    """A WebSocket plus a task that reads it until it closes; remembers the close code/reason."""

    ws: ClientConnection

    async def _open(self, url: str, read: bool = True, **kwargs) -> None:
        self.url = url
        self.ws = await asyncio.wait_for(connect(url, max_size=None, open_timeout=CONNECT_TIMEOUT, **kwargs), CONNECT_TIMEOUT)
        self.closed = asyncio.Event()
        self._reader = None
        if read:
            self.start_reading()

    def start_reading(self) -> None:
        """Starts taking messages off the socket (at once unless opened with read=False)."""
        if self._reader is None:
            self._reader = asyncio.create_task(self._read_all())

    async def _read_all(self) -> None:
        try:
            async for message in self.ws:
                self._on_message(message, time.monotonic())
        except ConnectionClosed:
            pass
        finally:
            self.closed.set()

    def _on_message(self, message, at: float) -> None:
        raise NotImplementedError

    @property
    def close_code(self) -> int | None:
        return self.ws.close_code if self.closed.is_set() else None

    @property
    def close_reason(self) -> str:
        return self.ws.close_reason or ""

    async def wait_closed(self, timeout: float = 10) -> tuple[int | None, str]:
        try:
            await asyncio.wait_for(self.closed.wait(), timeout)
        except asyncio.TimeoutError:
            raise AssertionError(f"{self.url}: the relay did not close the socket within {timeout} s") from None
        return self.ws.close_code, self.close_reason

    async def close(self) -> None:
        await self.ws.close()
        if self._reader is None:
            self.closed.set()
        await asyncio.wait_for(self.closed.wait(), 10)

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc) -> None:
        if not self.closed.is_set():
            try:
                await self.close()
            except Exception:
                pass
        if self._reader is not None:
            self._reader.cancel()


class Publisher(_Socket):
    """Publishes chunks to ws://.../ws/publish/{topic}; keeps the relay's ready/stats/error messages."""

    def __init__(self) -> None:
        self.messages: list[dict] = []
        self.ready: dict | None = None
        self.stats: dict | None = None
        self.sent_bytes = 0
        self.sent_log: list[tuple[float, int]] = []  # (monotonic time sent, stream offset after the chunk)

    @classmethod
    async def open(cls, base_url: str, topic: str, query: dict[str, str] | None = None, **kwargs) -> "Publisher":
        """`query`: e.g. {"key": KEY}; `kwargs` go to websockets' connect (origin=, sock=, ...)."""
        publisher = cls()
        await publisher._open(ws_url(base_url, "publish", topic, query), **kwargs)
        return publisher

    def _on_message(self, message, at: float) -> None:
        if isinstance(message, str):
            doc = json.loads(message)
            self.messages.append(doc)
            if doc.get("type") == "ready":
                self.ready = doc
            elif doc.get("type") == "stats":
                self.stats = doc

    async def send(self, chunk: bytes) -> bool:
        """Sends one chunk; False if the relay has closed the socket."""
        if self.closed.is_set():
            return False
        try:
            await self.ws.send(chunk)
        except ConnectionClosed:
            return False
        self.sent_bytes += len(chunk)
        self.sent_log.append((time.monotonic(), self.sent_bytes))
        return True

    async def send_chunks(self, chunks, interval: float = 0.1, stop: asyncio.Event | None = None) -> int:
        """Sends chunks paced `interval` apart (like MediaRecorder's timeslice); returns how many went."""
        count = 0
        for chunk in chunks:
            if stop is not None and stop.is_set():
                break
            if not await self.send(chunk):
                break
            count += 1
            if interval:
                await asyncio.sleep(interval)
        return count

    async def wait_delivered(self, total_bytes: int, timeout: float = 40) -> dict:
        """Waits until the relay's stats say it parsed `total_bytes` and heard back from Kafka
        for every fragment (acknowledged or failed); returns those stats."""
        await wait_until(lambda: self.stats and self.stats["bytes"] == total_bytes and
                         self.stats["acked"] + self.stats["failed"] == self.stats["fragments"], timeout,
                         lambda: f"every fragment acknowledged or failed ({self.stats})")
        return dict(self.stats)

    def sent_time_of(self, offset: int) -> float:
        """When the chunk holding stream byte `offset - 1` (the end of a fragment) was sent."""
        for at, end in self.sent_log:
            if end >= offset:
                return at
        raise AssertionError(f"byte {offset} was never sent")


@dataclass
class ViewedStream:
    """What a viewer got for one session: from its `reset` to the next one."""

    session: str
    mime_type: str
    reset_at: float
    init: bytes | None = None
    media: bytearray = field(default_factory=bytearray)
    frames: list[tuple[float, int]] = field(default_factory=list)  # (arrival time, media length after it)
    ended: bool = False


class Viewer(_Socket):
    """Watches ws://.../ws/watch/{topic} and records every message with its arrival time."""

    def __init__(self) -> None:
        self.events: list[tuple[float, str, dict | bytes]] = []  # (arrival time, "text"|"binary", doc|bytes)
        self.streams: list[ViewedStream] = []
        self.stray_binary = 0  # binary frames outside a reset (protocol violation)

    @classmethod
    async def open(cls, base_url: str, topic: str, read: bool = True, query: dict[str, str] | None = None, **kwargs) -> "Viewer":
        """read=False: connect but take nothing off the socket until start_reading(). `query`:
        e.g. {"token": T, "client": ID}; `kwargs` go to websockets' connect (origin=, sock=, ...)."""
        viewer = cls()
        await viewer._open(ws_url(base_url, "watch", topic, query), read=read, **kwargs)
        return viewer

    def _on_message(self, message, at: float) -> None:
        if isinstance(message, str):
            doc = json.loads(message)
            self.events.append((at, "text", doc))
            if doc.get("type") == "reset":
                self.streams.append(ViewedStream(session=doc["session"], mime_type=doc.get("mimeType", ""), reset_at=at))
            elif doc.get("type") == "ended" and self.streams and self.streams[-1].session == doc.get("session"):
                self.streams[-1].ended = True
        else:
            self.events.append((at, "binary", message))
            if not self.streams or self.streams[-1].ended:
                self.stray_binary += 1
            elif self.streams[-1].init is None:
                self.streams[-1].init = bytes(message)
            else:
                stream = self.streams[-1]
                stream.media += message
                stream.frames.append((at, len(stream.media)))

    def notices(self, kind: str) -> list[dict]:
        return [doc for _, what, doc in self.events if what == "text" and doc.get("type") == kind]

    @property
    def media_bytes(self) -> int:
        return sum(len(s.media) for s in self.streams)

    def describe(self) -> str:
        """A short account of what this viewer got, for failure messages."""
        parts = []
        for _, what, value in self.events:
            if what == "text":
                parts.append(value.get("type", "?"))
            elif parts and parts[-1].startswith("bin×"):
                count, total = parts[-1][4:].split("/")
                parts[-1] = f"bin×{int(count) + 1}/{int(total) + len(value)}"
            else:
                parts.append(f"bin×1/{len(value)}")
        return f"{self.url}: " + " ".join(parts) + f" close={self.ws.close_code if self.closed.is_set() else None}"

    async def wait_for_stream(self, index: int = 0, min_media: int = 1, timeout: float = 10) -> ViewedStream:
        """Waits for the index-th reset with its init segment and at least `min_media` media bytes."""
        await wait_until(
            lambda: len(self.streams) > index and self.streams[index].init is not None
            and len(self.streams[index].media) >= min_media,
            timeout, lambda: f"stream #{index} with {min_media} media bytes ({self.describe()})",
        )
        return self.streams[index]


def raw_websocket(base_url: str, path: str, receive_buffer: int = 4096) -> socket.socket:
    """A plain TCP socket that does the WebSocket handshake and then never reads: the slowest
    possible viewer. Its kernel receive buffer is made tiny so the relay feels it at once."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(10)
    sock.connect((host, int(port)))
    sock.sendall(
        f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n".encode()
    )
    response = b""
    while b"\r\n\r\n" not in response:
        piece = sock.recv(1)  # byte by byte: read the handshake and nothing of what follows
        assert piece, "the relay closed the raw WebSocket during the handshake"
        response += piece
    assert response.startswith(b"HTTP/1.1 101"), response
    return sock


def small_buffer_socket(base_url: str, receive_buffer: int = 4096) -> socket.socket:
    """A connected TCP socket with a tiny kernel receive buffer (pass as `sock=` to Viewer.open)."""
    host, port = base_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.connect((host, int(port)))
    return sock


def starts_with_cluster(data: bytes) -> bool:
    return data[:4] == CLUSTER_ID


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def assert_late_join(fixture: Fixture, stream: ViewedStream, sent_at_join: int, sent_shortly_before: int) -> int:
    """Checks what a viewer who joined mid-stream got, once the whole file has been published: the
    file's init segment, then a contiguous suffix of the file starting at a keyframe Cluster: the
    newest one the relay had when the viewer joined (`sent_shortly_before`: bytes sent about half
    a second before joining), never an older one. Returns where the viewer's media starts."""
    assert stream.init == fixture.init_segment, "late viewer's init segment is not the file's bytes up to the first Cluster"
    media = bytes(stream.media)
    assert starts_with_cluster(media), f"late viewer's media starts with {media[:8].hex()}, not a Cluster ID"
    start = len(fixture.data) - len(media)
    assert fixture.data[start:] == media, "late viewer's media is not a contiguous suffix of the stream"
    keyframes = fixture.keyframe_cluster_offsets
    assert start in keyframes, f"late viewer's media starts at byte {start}, not at a keyframe cluster"
    complete = [k for k in keyframes if fixture.keyframe_complete_at[k] <= sent_shortly_before]
    assert not complete or start >= complete[-1], (
        f"late viewer starts at keyframe {start}, but keyframe {complete[-1]} was published well before it joined")
    assert start < sent_at_join, f"late viewer starts at {start}, beyond the {sent_at_join} bytes sent when it joined"
    return start
