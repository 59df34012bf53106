"""A kicked viewer is closed with 4001, and its client id stays refused for the ban period."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

from kvbclient import Publisher, Viewer, wait_until, ws_url
from webm import load_fixture, looped

CONSOLE = os.environ.get("KVB_CONSOLE", str(Path(os.environ.get("KVB_SERVER", ".build/debug/kvb-server")).with_name("kvb-console")))


async def open_viewer(relay_url: str, topic: str, client: str) -> Viewer:
    viewer = Viewer()
    await viewer._open(ws_url(relay_url, "watch", topic) + f"?client={client}")
    return viewer


async def test_kicked_client_is_refused_on_reconnect(kvb, topic, broker):
    relay = await asyncio.to_thread(kvb.start_relay, name="banrelay")
    async with await Publisher.open(relay.url, topic) as publisher:
        sending = asyncio.create_task(publisher.send_chunks(looped(load_fixture("vp8-opus"), 2).chunks, 0.1))
        kicked = await open_viewer(relay.url, topic, "tab-kicked")
        other = await open_viewer(relay.url, topic, "tab-other")
        await wait_until(lambda: kicked.media_bytes > 0 and other.media_bytes > 0, 10, "both viewers receiving")

        result = await asyncio.to_thread(
            subprocess.run,
            [CONSOLE, "send", "kick", "--bootstrap", broker.bootstrap, "--viewer", "v-1", "--relay", "banrelay", "--wait", "5"],
            capture_output=True, text=True, timeout=30,
        )
        print(result.stdout.strip())
        assert result.returncode == 0, f"kick not acknowledged: {result.stdout} {result.stderr}"
        code, reason = await kicked.wait_closed(5)
        assert code == 4001 and "operator" in reason, f"kicked viewer closed with {code} {reason!r}"

        # The same tab coming back is refused, with how long it must wait; another tab is fine.
        again = await open_viewer(relay.url, topic, "tab-kicked")
        code, reason = await again.wait_closed(5)
        assert code == 4001 and "try again in" in reason, f"banned client got {code} {reason!r}"
        print(f"reconnect refused: {code} {reason!r}")
        fresh = await open_viewer(relay.url, topic, "tab-new")
        before = other.media_bytes
        await wait_until(lambda: fresh.media_bytes > 0 and other.media_bytes > before, 10, "other viewers unaffected")
        for viewer in (other, fresh):
            await viewer.close()
        sending.cancel()
