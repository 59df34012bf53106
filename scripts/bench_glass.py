#!/usr/bin/env python3
"""`make bench`: glass-to-glass delay through two relays, as in Tests/browser/test_glass.py.

A broadcast page on relay 1 publishes the clock test pattern; a watch page on relay 2 reads the
time back from every frame it displays, for SECONDS (default 60) per latency mode. Prints p50, p95,
max and the longest freeze for each mode beside the targets (p50 ≤ 500 ms, p95 ≤ 800 ms, no freeze
over 1 s after the first frame).

    scripts/bench_glass.py KVB_SERVER [--seconds 60] [--modes low,normal]
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import uuid
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "Tests" / "harness"))

CHROMIUM_ARGS = ["--no-sandbox", "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream",
                 "--autoplay-policy=no-user-gesture-required"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("server", help="the kvb-server binary to measure")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("GLASS_SECONDS", 60)))
    parser.add_argument("--modes", default="low,normal", help="watch page latency modes, comma-separated")
    args = parser.parse_args()
    os.environ["KVB_SERVER"] = str(Path(args.server).resolve())

    # Imported after KVB_SERVER is set: the harness reads it once.
    from playwright.sync_api import sync_playwright

    from kvbharness import glass
    from kvbharness.processes import Kvb

    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if not exe:
        print("chromium not found on PATH (make deps installs it)", file=sys.stderr)
        return 1
    rows = []
    with tempfile.TemporaryDirectory(prefix="kvb-bench-glass-") as tmp:
        kvb = Kvb(Path(tmp))
        try:
            broker = kvb.start_broker(backend="embedded")
            kvb.shared_bootstrap = broker.bootstrap
            relay1 = kvb.start_relay()
            relay2 = kvb.start_relay()
            with sync_playwright() as pw:
                browser = pw.chromium.launch(executable_path=exe, args=CHROMIUM_ARGS, headless=True)
                for mode in [m.strip() for m in args.modes.split(",") if m.strip()]:
                    topic = f"bench-glass-{mode}-{uuid.uuid4().hex[:6]}"
                    pub_ctx = browser.new_context()
                    view_ctx = browser.new_context()
                    glass.start_clock(pub_ctx.new_page(), relay1.url, topic)
                    run = glass.measure(view_ctx.new_page(), relay2.url, topic, args.seconds, query=f"&latency={mode}")
                    rows.append((mode, run))
                    print(f"latency={mode}: {run.summary()}", flush=True)
                    view_ctx.close()
                    pub_ctx.close()
                browser.close()
        finally:
            kvb.stop_all()

    print()
    print(f"glass to glass, clock pattern on relay 1 → embedded Kafka → relay 2 → Chromium, {args.seconds:.0f} s each")
    print(f"{'mode':<8} {'frames':>7} {'p50 ms':>7} {'p95 ms':>7} {'max ms':>7} {'freeze ms':>10} {'first frame':>12}")
    for mode, run in rows:
        if not run.samples:
            print(f"{mode:<8} no readable frames")
            continue
        print(f"{mode:<8} {len(run.samples):>7} {run.p50:>7.0f} {run.p95:>7.0f} {max(run.samples):>7} "
              f"{run.longest_gap_ms:>10} {run.first_frame_s:>11.2f}s")
    print(f"{'target':<8} {'':>7} {'≤ 500':>7} {'≤ 800':>7} {'':>7} {'≤ 1000':>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
