"""What tests need to check kvb's trust and limits from the outside, written independently of the
Swift code (so the wire formats are checked, not just round-tripped):

- `watch_token()` and `sign_record()`: kvb's signed watch tokens and control-plane signatures;
- `metrics()` / `counter()`: a relay's Prometheus counters;
- `from_address()`: a TCP socket from another loopback address (127.0.0.0/8), for per-address limits;
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import socket
import time

from .processes import http_get

_SAMPLE = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[^}]*\})?\s+(\S+)$")
_LABEL = re.compile(r'(\w+)="((?:[^"\\]|\\.)*)"')


def watch_token(key: str, topic: str, expires_at: int | None = None, ttl: int = 3600) -> str:
    """`EXPIRY.base64url(HMAC-SHA256(key, "kvb-watch-v1\\n" + topic + "\\n" + EXPIRY))`."""
    expiry = int(time.time()) + ttl if expires_at is None else expires_at
    mac = hmac.new(key.encode(), f"kvb-watch-v1\n{topic}\n{expiry}".encode(), hashlib.sha256).digest()
    return f"{expiry}." + base64.urlsafe_b64encode(mac).decode().rstrip("=")


def sign_record(key: str, topic: str, value: bytes) -> str:
    """The `kvb-sig` header: `v1=` + hex(HMAC-SHA256(key, "kvb-record-v1\\n" + topic + "\\n" + value))."""
    return "v1=" + hmac.new(key.encode(), f"kvb-record-v1\n{topic}\n".encode() + value, hashlib.sha256).hexdigest()


def metrics(relay) -> dict[tuple[str, frozenset], float]:
    """Every sample of the relay's /metrics: (name, frozenset of (label, value)) -> value."""
    status, body = http_get(relay.url + "/metrics")
    assert status == 200, f"/metrics answered {status}"
    samples = {}
    for line in body.decode().splitlines():
        match = _SAMPLE.match(line.strip())
        if not match or line.startswith("#"):
            continue
        labels = frozenset(_LABEL.findall(match.group(2) or ""))
        try:
            samples[(match.group(1), labels)] = float(match.group(3))
        except ValueError:
            continue
    return samples


def counter(relay, name: str, **labels: str) -> float:
    """One counter's value (0 when it has not been created yet)."""
    return metrics(relay).get((name, frozenset(labels.items())), 0.0)


def rejected(relay, reason: str) -> float:
    """`kvb_rejected_total{reason=...}`."""
    return counter(relay, "kvb_rejected_total", reason=reason)


def from_address(relay_url: str, source_ip: str) -> socket.socket:
    """A TCP socket connected to the relay from `source_ip` (any 127.x.y.z works on Linux):
    pass it as `sock=` to Publisher.open / Viewer.open."""
    host, port = relay_url.removeprefix("http://").split(":")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind((source_ip, 0))
    sock.connect((host, int(port)))
    return sock
