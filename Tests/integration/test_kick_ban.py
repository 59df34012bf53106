"""A kicked viewer is closed with 4001, and its client id and its address stay refused for the ban
period (the address is what the relay can check itself; the client id is what the page sends)."""

from __future__ import annotations

import asyncio

from kvbharness import Publisher, Viewer, fleet_status, load_fixture, looped, run_console, wait_until
from kvbharness.trust import from_address


async def open_viewer(relay_url: str, topic: str, client: str, source: str) -> Viewer:
    return await Viewer.open(relay_url, topic, query={"client": client}, sock=from_address(relay_url, source))


async def test_kicked_client_is_refused_on_reconnect(kvb, topic, broker):
    relay = await asyncio.to_thread(kvb.start_relay, "banrelay")
    async with await Publisher.open(relay.url, topic) as publisher:
        sending = asyncio.create_task(publisher.send_chunks(looped(load_fixture("vp8-opus"), 2).chunks, 0.1))
        kicked = await open_viewer(relay.url, topic, "tab-kicked", "127.0.5.1")
        other = await open_viewer(relay.url, topic, "tab-other", "127.0.5.2")
        await wait_until(lambda: kicked.media_bytes > 0 and other.media_bytes > 0, 10, "both viewers receiving")
        statuses = {s["relay"]: s for s in await asyncio.to_thread(fleet_status, broker.bootstrap)}
        target = next(session["id"] for session in statuses["banrelay"]["sessions"]
                      if session["role"] == "viewer" and session["remoteAddress"].startswith("127.0.5.1:"))

        result = await asyncio.to_thread(
            run_console, "send", "kick", "--viewer", target, "--relay", "banrelay", "--wait", "5",
            bootstrap=broker.bootstrap, timeout=30,
        )
        print(result.stdout.strip())
        assert result.returncode == 0, f"kick not acknowledged: {result.stdout} {result.stderr}"
        code, reason = await kicked.wait_closed(5)
        assert code == 4001 and "operator" in reason, f"kicked viewer closed with {code} {reason!r}"

        # The same tab coming back is refused, with how long it must wait; so is a new tab from the
        # same address; a tab elsewhere is fine.
        again = await open_viewer(relay.url, topic, "tab-kicked", "127.0.5.3")
        code, reason = await again.wait_closed(5)
        assert code == 4001 and "try again in" in reason, f"banned client got {code} {reason!r}"
        print(f"reconnect refused: {code} {reason!r}")
        same_address = await open_viewer(relay.url, topic, "tab-new-id", "127.0.5.1")
        code, reason = await same_address.wait_closed(5)
        assert code == 4001 and "try again in" in reason, f"a new client id from the kicked address got {code} {reason!r}"
        fresh = await open_viewer(relay.url, topic, "tab-new", "127.0.5.4")
        before = other.media_bytes
        await wait_until(lambda: fresh.media_bytes > 0 and other.media_bytes > before, 10, "other viewers unaffected")
        for viewer in (other, fresh):
            await viewer.close()
        sending.cancel()
