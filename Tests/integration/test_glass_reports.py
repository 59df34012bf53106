"""What viewer pages report of glass to glass reaches the relay's status document and /metrics as
the `glass` stage, and only what can be a measurement does: a page's figures outside 0–60 s are
left out, at most 64 are taken from one message, and a malformed report changes nothing."""

from __future__ import annotations

import asyncio
import json

from kvbharness import Publisher, Viewer, fleet_status, http_get, load_fixture, looped, wait_until


async def wait_until_async(probe, expected: int, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (value := await probe()) != expected:
        assert asyncio.get_running_loop().time() < deadline, f"/metrics glass count {value}, expected {expected}"
        await asyncio.sleep(0.2)


def glass_of(statuses: list[dict], relay: str, topic: str) -> tuple[dict | None, list[dict]]:
    """The topic's glass stage on `relay`, and that relay's viewer sessions of the topic."""
    for status in statuses:
        if status["relay"] == relay:
            stage = next((s for t in status["topics"] if t["name"] == topic
                          for s in t["latency"] if s["stage"] == "glass"), None)
            viewers = [s for s in status["sessions"] if s["role"] == "viewer" and s["topic"] == topic]
            return stage, viewers
    return None, []


async def test_glass_reports_become_the_glass_stage(kvb, topic, broker):
    relay = await asyncio.to_thread(kvb.start_relay, "glassrelay")
    async with await Publisher.open(relay.url, topic) as publisher:
        sending = asyncio.create_task(publisher.send_chunks(looped(load_fixture("vp8-opus"), 3).chunks, 0.1))
        viewer = await Viewer.open(relay.url, topic)
        await wait_until(lambda: viewer.media_bytes > 0, 10, "the viewer receives media")

        # Nothing reported yet: no glass stage (the recording carries no clock pattern).
        stage, _ = glass_of(await asyncio.to_thread(fleet_status, broker.bootstrap), "glassrelay", topic)
        assert stage is None, f"a glass stage before any page measured one: {stage}"

        # Malformed reports are ignored, not fatal: the viewer stays connected.
        await viewer.ws.send('{"type":"stats","delay":0.2,"state":"playing","glass":"fast"}')
        await viewer.ws.send('{"type":"stats","delay":0.2,"state":"playing","glass":[200,"x"]}')
        # 70 figures, 6 of them impossible: at most 64 taken, the impossible ones left out. A page
        # reports once a second and a status document covers one second, so report like a page.
        figures = [-5, 60000, 1e12] + [200 + i for i in range(64)] + [-1, 99999, 300]
        taken = [f for f in figures[:64] if 0 <= f < 60000]
        report = json.dumps({"type": "stats", "delay": 0.2, "state": "playing", "glass": figures})
        sent = 0

        async def report_every_second() -> None:
            nonlocal sent
            while True:
                await viewer.ws.send(report)
                sent += 1
                await asyncio.sleep(1)

        reporting = asyncio.create_task(report_every_second())
        stage = viewers = None
        for _ in range(10):
            stage, viewers = glass_of(await asyncio.to_thread(fleet_status, broker.bootstrap, 1.5), "glassrelay", topic)
            if stage:
                break
        reporting.cancel()
        assert stage is not None, "no glass stage in the relay's status documents while a page reports one"
        print(f"glass stage: {stage}; viewer sessions: {[(v['id'], v.get('glassMilliseconds')) for v in viewers]}")
        assert stage["count"] > 0 and stage["count"] % len(taken) == 0, (
            f"{len(taken)} of the {len(figures)} figures a report carries can be measurements; the stage counted {stage['count']}")
        assert min(taken) <= stage["p50"] <= max(taken) and stage["max"] <= max(taken) + 1, stage
        assert [v.get("glassMilliseconds") for v in viewers] == [taken[-1]], viewers

        # /metrics: every figure taken, from every report sent, in the topic's glass histogram.
        async def glass_count() -> int:
            _, body = await asyncio.to_thread(http_get, relay.url + "/metrics")
            for line in body.decode().splitlines():
                if line.startswith("kvb_latency_seconds_count{") and 'stage="glass"' in line and f'topic="{topic}"' in line:
                    return int(float(line.rsplit(" ", 1)[1]))
            return 0
        await wait_until_async(lambda: glass_count(), sent * len(taken), 5)

        before = viewer.media_bytes
        await wait_until(lambda: viewer.media_bytes > before, 10, "the reporting viewer keeps receiving")
        assert viewer.close_code is None, f"a viewer closed for its reports: {viewer.close_code}"
        await viewer.close()
        sending.cancel()
