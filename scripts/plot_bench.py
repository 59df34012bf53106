#!/usr/bin/env python3
"""Draws kvb-bench load results (bench-results/load.json) as a PNG: media latency percentiles and
relay CPU against viewers (the fan-out scenarios), and threads and idle CPU of the topic scenario,
one series per run label (e.g. baseline and kvb).

    python scripts/plot_bench.py [bench-results/load.json] [bench-results/load.png]
"""

import json
import sys
from collections import defaultdict

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def main() -> None:
    source = sys.argv[1] if len(sys.argv) > 1 else "bench-results/load.json"
    target = sys.argv[2] if len(sys.argv) > 2 else "bench-results/load.png"
    with open(source) as f:
        results = json.load(f)
    # The latest result per (label, scenario).
    latest = {}
    for r in results:
        latest[(r["label"], r["scenario"])] = r
    fanout = defaultdict(list)
    topics = {}
    for (label, scenario), r in latest.items():
        if scenario.startswith("fan-out"):
            fanout[label].append(r)
        elif scenario.startswith("topics"):
            topics[label] = r

    fig, axes = plt.subplots(1, 3, figsize=(16, 4.8))
    latency, cpu, topic_axis = axes
    for label, rows in sorted(fanout.items()):
        rows.sort(key=lambda r: r["viewers"])
        viewers = [r["viewers"] for r in rows]
        latency.plot(viewers, [r["latency"]["p50"] if r.get("latency") else None for r in rows], "o-", label=f"{label} p50")
        latency.plot(viewers, [r["latency"]["p99"] if r.get("latency") else None for r in rows], "s--", label=f"{label} p99")
        cpu.plot(viewers, [r["relayCPU"] for r in rows], "o-", label=f"{label} relay")
        cpu.plot(viewers, [r["generatorCPU"] for r in rows], ":", label=f"{label} load generator")
    for axis, title, unit in ((latency, "Media latency (chunk sent → viewer holds it)", "ms"), (cpu, "CPU", "% of one core")):
        axis.set_xscale("log")
        axis.set_xlabel("viewers of one stream on one relay")
        axis.set_ylabel(unit)
        axis.set_title(title)
        axis.grid(True, alpha=0.3)
        axis.legend(fontsize=8)
    latency.set_yscale("log")

    labels = sorted(topics)
    if labels:
        width = 0.38
        xs = range(len(labels))
        threads = [topics[l]["relayThreads"] for l in labels]
        idle = [(topics[l].get("idle") or {}).get("relayCPU", 0) + (topics[l].get("idle") or {}).get("brokerCPU", 0) for l in labels]
        topic_axis.bar([x - width / 2 for x in xs], threads, width, label="relay threads")
        twin = topic_axis.twinx()
        twin.bar([x + width / 2 for x in xs], idle, width, color="tab:orange", label="relay + broker CPU, all idle (%)")
        topic_axis.set_xticks(list(xs), labels)
        topic_axis.set_yscale("log")
        topic_axis.set_ylabel("threads")
        twin.set_ylabel("% of one core")
        name = topics[labels[0]]["scenario"]
        topic_axis.set_title(f"{name}, 1–10 viewers each")
        topic_axis.legend(loc="upper left", fontsize=8)
        twin.legend(loc="upper right", fontsize=8)
    fig.tight_layout()
    fig.savefig(target, dpi=110)
    print(f"plot written to {target}")


if __name__ == "__main__":
    main()
