#!/usr/bin/env python3
"""`make bench`: what rewinding viewers and downloads cost a relay. A stream is published for
WARMUP seconds (so there is something to rewind), then REPLAYS viewers watch from 25 s back,
DOWNLOADS clients download its latest session over and over, and LISTINGS clients ask for the
recordings of every topic every 2 s (as open front pages do), all at once, for SECONDS. Prints the
relay's RSS and threads each few seconds beside the baseline: they should stay flat (each rewinding
viewer and download reads with a bounded consumer; nothing holds the media in memory).

    scripts/bench_replay.py KVB_SERVER [--replays 20] [--downloads 5] [--listings 5] [--seconds 40] [--warmup 30]
"""

from __future__ import annotations

import argparse
import asyncio
import os
import sys
import tempfile
import threading
import time
import urllib.request
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "harness"))


def status(pid: int) -> tuple[int, int]:
    """RSS (KiB) and threads of a process, from /proc."""
    rss = threads = 0
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                rss = int(line.split()[1])
            elif line.startswith("Threads:"):
                threads = int(line.split()[1])
    return rss, threads


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server")
    parser.add_argument("--replays", type=int, default=20)
    parser.add_argument("--downloads", type=int, default=5)
    parser.add_argument("--listings", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=40)
    parser.add_argument("--warmup", type=float, default=30)
    args = parser.parse_args()
    os.environ["KVB_SERVER"] = str(Path(args.server).resolve())

    from kvbharness import ClientLoop, PublisherLoop, Viewer, load_fixture, looped
    from kvbharness.processes import Kvb

    topic = f"bench-replay-{uuid.uuid4().hex[:6]}"
    with tempfile.TemporaryDirectory(prefix="kvb-bench-replay-") as tmp:
        kvb = Kvb(Path(tmp))
        clients = ClientLoop()
        stop = threading.Event()
        downloaded = [0, 0]  # files, bytes
        listed = [0, 0]  # answers, failures
        try:
            kvb.shared_bootstrap = kvb.start_broker(backend="embedded").bootstrap
            # One reader more than the downloads: the listing's.
            relay = kvb.start_relay(args=["--max-recording-readers", str(max(1, args.downloads + (1 if args.listings else 0))),
                                          "--max-replay-viewers", str(max(1, args.replays))])
            publisher = PublisherLoop(relay.url, topic, looped(load_fixture("vp8-opus"), 60), 0.1).start(clients)
            time.sleep(args.warmup)
            base = status(relay.pid)
            print(f"baseline after {args.warmup:.0f} s of publishing: RSS {base[0] / 1024:.1f} MiB, {base[1]} threads", flush=True)

            viewers = [clients.run(Viewer.open(relay.url, topic, query={"from": "-25s"})) for _ in range(args.replays)]

            def download() -> None:
                while not stop.is_set():
                    try:
                        with urllib.request.urlopen(f"{relay.url}/api/topics/{topic}/recording.webm", timeout=60) as response:
                            size = len(response.read())
                        downloaded[0] += 1
                        downloaded[1] += size
                    except Exception as error:  # noqa: BLE001 - a bench reports, it does not stop
                        print(f"download: {error}", flush=True)
                        time.sleep(1)
            def listing() -> None:
                while not stop.is_set():
                    try:
                        with urllib.request.urlopen(f"{relay.url}/api/recordings", timeout=30) as response:
                            response.read()
                        listed[0] += 1
                    except Exception as error:  # noqa: BLE001 - a bench reports, it does not stop
                        listed[1] += 1
                        print(f"listing: {error}", flush=True)
                    stop.wait(2)
            workers = [threading.Thread(target=download, daemon=True) for _ in range(args.downloads)]
            workers += [threading.Thread(target=listing, daemon=True) for _ in range(args.listings)]
            for worker in workers:
                worker.start()

            samples = []
            began = time.monotonic()
            while time.monotonic() - began < args.seconds:
                time.sleep(5)
                rss, threads = status(relay.pid)
                media = sum(v.media_bytes for v in viewers)
                samples.append((time.monotonic() - began, rss, threads))
                print(f"{samples[-1][0]:5.0f} s  RSS {rss / 1024:6.1f} MiB  threads {threads:4d}  "
                      f"replayed {media / 1e6:6.1f} MB to {sum(1 for v in viewers if v.media_bytes)} viewers  "
                      f"downloads {downloaded[0]} ({downloaded[1] / 1e6:.1f} MB)  listings {listed[0]}", flush=True)
            stop.set()
            closed = sum(1 for v in viewers if v.close_code is not None)
            half = [rss for at, rss, _ in samples if at >= args.seconds / 2]
            print()
            print(f"{args.replays} rewinding viewers, {args.downloads} downloads and {args.listings} listings at once for {args.seconds:.0f} s, "
                  f"relay {Path(args.server).parent.name} build")
            print(f"RSS: baseline {base[0] / 1024:.1f} MiB, peak {max(s[1] for s in samples) / 1024:.1f} MiB, "
                  f"second half {min(half) / 1024:.1f}–{max(half) / 1024:.1f} MiB "
                  f"(growth {(half[-1] - half[0]) / 1024:+.1f} MiB)")
            print(f"threads: baseline {base[1]}, peak {max(s[2] for s in samples)}; viewers closed early: {closed}; "
                  f"downloads: {downloaded[0]} files, {downloaded[1] / 1e6:.1f} MB; listings: {listed[0]} answered, {listed[1]} failed")
            publisher.stop(clients, timeout=60)
        finally:
            stop.set()
            clients.close()
            kvb.stop_all()
    return 0


if __name__ == "__main__":
    sys.exit(main())
