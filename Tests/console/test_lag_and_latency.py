"""The numbers the console shows (consumer lag, high watermark, latency by stage) and the relay's
/metrics, checked against ground truth: what the publisher's relay said Kafka acknowledged.

- A relay whose topic consumer is held back on purpose (KVB_CONSUMER_THROTTLE_MS=100: it sleeps
  100 ms per record) and a publisher at about 3× real time (30 chunks, so 30 records, a second):
  lag = high watermark − position,
  growing; the high watermark is the number of records the topic really holds.
- A normal relay: acknowledged ≤ consumed ≤ written, all well under half a second; /metrics has
  the same topic's counters, lag gauge and latency histogram, and fragments in = fragments acked.
"""

from __future__ import annotations

import re
import time
import uuid

from kvbharness import PublisherLoop, TimedViewer, fleet_status, http_get, load_fixture

STATUS_WAIT = 2.5


def topic_status(bootstrap: str, relay: str, topic: str) -> dict | None:
    for status in fleet_status(bootstrap, wait=STATUS_WAIT):
        if status["relay"] == relay:
            return next((t for t in status["topics"] if t["name"] == topic), None)
    return None


def test_lag_is_high_watermark_minus_position_and_matches_ground_truth(kvb, clients):
    relay = kvb.start_relay("slow-relay", env={"KVB_CONSUMER_THROTTLE_MS": "100"})
    topic = f"lag-{uuid.uuid4().hex[:8]}"
    viewer = clients.run(TimedViewer.open(relay.url, topic))  # a viewer: the relay consumes the topic
    fixture = load_fixture("vp8-opus")
    publisher = PublisherLoop(relay.url, topic, fixture, 0.1 / 3).start(clients)  # ~3× real time, repeated

    missing_lag = []
    samples = []  # (monotonic, lag, highWatermark, position, ground truth at the time)
    deadline = time.monotonic() + 40
    while len(samples) < 5:
        assert time.monotonic() < deadline, f"only {len(samples)} status samples in 40 s"
        truth_before = publisher.acked_total + publisher.finished
        status = topic_status(kvb.shared_bootstrap, "slow-relay", topic)
        truth_after = publisher.acked_total + publisher.finished
        if not status or not status.get("consumer"):
            continue
        consumer = status["consumer"]
        if "lag" not in consumer:  # checked at the end, after the numbers it should equal
            missing_lag.append(consumer)
        hw, position = consumer["highWatermark"], consumer["position"]
        lag = consumer.get("lag", hw - position)
        print(f"lag {lag:5d} = hw {hw:5d} - position {position:5d}; ground truth {truth_before}..{truth_after} "
              f"(acked {publisher.acked_total} + {publisher.finished} end markers)")
        assert lag == hw - position, f"lag {lag} != highWatermark {hw} - position {position}"
        samples.append((time.monotonic(), lag, hw, position, truth_before, truth_after))

    lags = [s[1] for s in samples]
    assert all(lag > 0 for lag in lags[1:]), f"no lag behind a consumer throttled to ~10 records/s: {lags}"
    assert lags[-1] > lags[0] + 50, f"lag does not grow while the publisher outpaces the consumer: {lags}"
    positions = [s[3] for s in samples]
    assert positions[-1] > positions[0], f"the throttled consumer does not advance at all: {positions}"

    # While publishing, the high watermark and the ground truth each trail reality by up to about a
    # second (status document every second; publisher stats every second).
    rate = (samples[-1][5] - samples[0][4]) / max(0.1, samples[-1][0] - samples[0][0])
    slack = max(20, int(1.5 * rate))
    for _, _, hw, _, lo, hi in samples:
        assert lo - slack <= hw <= hi + slack, f"high watermark {hw} vs ground truth {lo}..{hi} (slack {slack}, {rate:.0f} records/s)"

    # Quiescent: the publisher stops (its last pass fully acknowledged, then closed); the high
    # watermark must be exactly the records written.
    publisher.stop(clients, timeout=30)
    assert not publisher.errors, publisher.errors
    truth = publisher.acked_total + publisher.finished
    time.sleep(2)
    for attempt in range(4):
        status = topic_status(kvb.shared_bootstrap, "slow-relay", topic)
        hw = status["consumer"]["highWatermark"]
        if hw == truth:
            break
    print(f"stopped: high watermark {hw}, ground truth {truth} = {publisher.acked_total} acked fragments "
          f"+ {publisher.finished} end markers over {len(publisher.sessions)} sessions; position {status['consumer']['position']}")
    assert hw == truth, f"high watermark {hw} != {truth} records written ({publisher.acked_total} acked + {publisher.finished} ends)"
    status_code, body = http_get(relay.url + "/api/topics")
    listed = {t["name"]: t for t in __import__("json").loads(body)["topics"]}
    assert listed[topic]["highWatermark"] == truth, f"/api/topics says highWatermark {listed[topic]['highWatermark']}, truth {truth}"
    assert not viewer.closed.is_set()
    assert not missing_lag, (f"{len(missing_lag)} of {len(samples)} status documents have no consumer.lag "
                             f"(docs/PROTOCOL.md: the status carries consumer position, high watermark and lag): {missing_lag[0]}")


def metric(text: str, name: str, topic: str, **labels) -> list[tuple[dict, float]]:
    """Samples of `name` whose labels include topic=`topic` (and `labels`)."""
    out = []
    for line in text.splitlines():
        match = re.match(rf"^{re.escape(name)}\{{(.*)\}} (\S+)$", line)
        if not match:
            continue
        found = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', match.group(1)))
        if found.get("topic") == topic and all(found.get(k) == v for k, v in labels.items()):
            out.append((found, float(match.group(2))))
    return out


def test_latency_stages_are_ordered_and_metrics_agree(kvb, clients):
    relay = kvb.start_relay("fast-relay")
    topic = f"lat-{uuid.uuid4().hex[:8]}"
    viewer = clients.run(TimedViewer.open(relay.url, topic))
    publisher = PublisherLoop(relay.url, topic, load_fixture("vp8-opus"), 0.1).start(clients)  # real time
    clients.run(viewer.wait_for_stream(0, min_media=10_000, timeout=15), timeout=20)
    time.sleep(3)

    stages = {}
    for attempt in range(5):
        status = topic_status(kvb.shared_bootstrap, "fast-relay", topic)
        stages = {s["stage"]: s for s in (status or {}).get("latency", [])}
        if all(stages.get(k, {}).get("count", 0) > 0 for k in ("acknowledged", "consumed", "written")):
            break
    for name in ("acknowledged", "consumed", "written"):
        s = stages.get(name)
        assert s and s["count"] > 0, f"no {name} latency in the status document: {stages}"
        print(f"{name:12s} p50 {s['p50']:7.2f} ms  p90 {s['p90']:7.2f}  p99 {s['p99']:7.2f}  max {s['max']:7.2f}  n={s['count']}")
        assert s["p50"] < 500, f"{name} p50 {s['p50']} ms"
        assert s["p50"] <= s["p90"] <= s["p99"] <= s["max"], s
    ack, cons, written = (stages[k]["p50"] for k in ("acknowledged", "consumed", "written"))
    assert ack <= cons + 1, f"acknowledged p50 {ack} > consumed p50 {cons} + 1 ms"
    assert cons <= written + 1, f"consumed p50 {cons} > written p50 {written} + 1 ms"
    assert status["consumer"]["position"] <= status["consumer"]["highWatermark"], status["consumer"]

    publisher.stop(clients, timeout=30)
    assert not publisher.errors, publisher.errors
    time.sleep(1.5)
    code, body = http_get(relay.url + "/metrics")
    assert code == 200
    text = body.decode()
    fragments_in = metric(text, "kvb_fragments_in_total", topic)
    lag = metric(text, "kvb_consumer_lag_records", topic)
    buckets = metric(text, "kvb_latency_seconds_bucket", topic)
    assert fragments_in, f"no kvb_fragments_in_total{{topic=\"{topic}\"}} in /metrics"
    assert lag, f"no kvb_consumer_lag_records for {topic}"
    assert buckets, f"no kvb_latency_seconds_bucket for {topic}"
    stages_in_metrics = {labels.get("stage") for labels, _ in buckets}
    assert {"acknowledged", "consumed", "written"} <= stages_in_metrics, stages_in_metrics
    total_in = sum(v for _, v in fragments_in)
    acked = publisher.acked_total
    fragments = sum(p.stats["fragments"] for p in publisher.sessions if p.stats)
    print(f"/metrics: fragments_in {total_in:.0f}, publisher stats acked {acked} (fragments {fragments}) over "
          f"{len(publisher.sessions)} sessions; lag gauge {lag[0][1]:.0f}")
    assert total_in == acked == fragments, f"kvb_fragments_in_total {total_in} vs acked {acked} / fragments {fragments}"
