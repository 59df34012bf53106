"""Operator commands are signed (docs/SECURITY.md): forged, unsigned, replayed, stale, future-dated
and unreadable commands change nothing and are counted; a relay without the operator key applies
none; consoles ignore unsigned acknowledgements and status documents whose signature fails; a
console with the key still kicks, pauses and switches. Real relays on a broker of their own,
records forged with confluent-kafka, the real kvb-console."""

from __future__ import annotations

import json
import re
import threading
import time
import uuid
from types import SimpleNamespace

import pytest

from kvbharness import (ClientLoop, Kvb, PublisherLoop, TimedViewer, fleet_status, http_get, load_fixture, looped, report_logs, run_console,
                        wait_until)
from kvbharness.kafka import produce
from kvbharness.trust import counter, from_address, sign_record

TOPIC, OTHER = "cmd-a", "cmd-b"


@pytest.fixture(scope="module")
def fleet(tmp_path_factory, request):
    kvb = Kvb(tmp_path_factory.mktemp("commands"))
    clients = ClientLoop()
    publishers = []
    try:
        broker = kvb.start_broker()
        kvb.shared_bootstrap = broker.bootstrap
        r1, r2 = kvb.start_relay("r1"), kvb.start_relay("r2")
        keyless = kvb.start_relay("keyless", env={"KVB_OPERATOR_KEY": None})
        publishers = [PublisherLoop(r1.url, TOPIC, looped(load_fixture("vp8-opus"), 40), 0.1).start(clients),
                      PublisherLoop(r1.url, OTHER, looped(load_fixture("vp9"), 40), 0.1).start(clients)]
        viewers = {name: clients.run(TimedViewer.open(relay.url, TOPIC)) for name, relay in
                   (("r1", r1), ("r2", r2), ("keyless", keyless))}
        for viewer in viewers.values():
            clients.run(viewer.wait_for_stream(0, min_media=1, timeout=20), timeout=30)
        yield SimpleNamespace(kvb=kvb, broker=broker, r1=r1, r2=r2, keyless=keyless, clients=clients, viewers=viewers,
                              key=kvb.operator_key)
    finally:
        for publisher in publishers:
            try:
                publisher.stop(clients, timeout=20)
            except Exception:
                pass
        clients.close()
        kvb.stop_all()


@pytest.fixture(autouse=True)
def _logs(fleet, request):
    report_logs(request.node, fleet.kvb)


def command(action: str, issued_at: int | None = None, **fields) -> dict:
    return {"type": "command", "id": f"test-{uuid.uuid4().hex[:8]}", "action": action,
            "issuedAtMilliseconds": int(time.time() * 1000) if issued_at is None else issued_at, "issuedBy": "test", **fields}


def send_record(fleet, document: dict | bytes, key: str | None, topic: str = "kvb.control") -> bytes:
    value = document if isinstance(document, bytes) else json.dumps(document, sort_keys=True).encode()
    headers = [[("kvb-sig", sign_record(key, topic, value).encode())]] if key else None
    produce(fleet.broker.bootstrap, topic, [value], headers=headers)
    return value


def rejections(relay, reason: str) -> float:
    return counter(relay, "kvb_commands_rejected_total", reason=reason)


def assert_not_paused(fleet, since: float, seconds: float = 2.5) -> None:
    """For `seconds`, every viewer keeps receiving media and is never told 'paused'."""
    time.sleep(seconds)
    for name, viewer in fleet.viewers.items():
        assert not viewer.texts("paused", after=since), f"viewer on {name} was paused by a command that should change nothing"
        assert viewer.binaries_after(since + seconds - 1.5), f"viewer on {name} stopped receiving media"


def forged_case(fleet, document: dict | bytes, key: str | None, reason: str) -> None:
    before = {name: rejections(relay, reason) for name, relay in (("r1", fleet.r1), ("r2", fleet.r2))}
    since = time.monotonic()
    send_record(fleet, document, key)
    assert_not_paused(fleet, since)
    for name, relay in (("r1", fleet.r1), ("r2", fleet.r2)):
        assert rejections(relay, reason) == before[name] + 1, f"{name}: kvb_commands_rejected_total{{reason={reason}}} did not move"
    statuses = {s["relay"]: s for s in fleet_status(fleet.broker.bootstrap)}
    assert statuses["r1"]["commands"]["rejected"].get(reason, 0) >= 1, f"r1's status does not report the {reason} command"


def test_an_unsigned_command_changes_nothing(fleet):
    forged_case(fleet, command("pause", topic=TOPIC), None, "unsigned")


def test_a_command_signed_with_another_key_changes_nothing(fleet):
    forged_case(fleet, command("pause", topic=TOPIC), "a-guessed-operator-key-123456", "bad_signature")


def test_a_stale_command_changes_nothing(fleet):
    forged_case(fleet, command("pause", topic=TOPIC, issued_at=int(time.time() * 1000) - 60_000), fleet.key, "stale")


def test_a_future_dated_command_changes_nothing(fleet):
    forged_case(fleet, command("pause", topic=TOPIC, issued_at=int(time.time() * 1000) + 60_000), fleet.key, "future")


def test_an_unreadable_control_record_changes_nothing(fleet):
    forged_case(fleet, b'{"type":"command","action":"pause","topic":' + bytes([0xff, 0xfe]) + b"}", None, "unreadable")


def test_a_console_with_the_key_pauses_and_resumes_and_a_replay_changes_nothing(fleet):
    since = time.monotonic()
    result = run_console("send", "pause", "--topic", TOPIC, bootstrap=fleet.broker.bootstrap)
    assert result.returncode == 0, f"pause: {result.stdout} {result.stderr}"
    for name in ("r1", "r2"):
        fleet.clients.run(wait_until(lambda n=name: fleet.viewers[n].texts("paused", after=since), 10, f"{name}'s viewer paused"))
    assert not fleet.viewers["keyless"].texts("paused", after=since), "the relay without the operator key applied a command"
    result = run_console("send", "resume", "--topic", TOPIC, bootstrap=fleet.broker.bootstrap)
    assert result.returncode == 0, f"resume: {result.stdout} {result.stderr}"
    fleet.clients.run(wait_until(lambda: fleet.viewers["r1"].texts("resumed", after=since), 10, "resumed"))

    # The genuine pause, replayed byte for byte with its valid signature.
    from confluent_kafka import Consumer, TopicPartition
    consumer = Consumer({"bootstrap.servers": fleet.broker.bootstrap, "group.id": "replayer", "enable.auto.commit": False,
                         "log_level": 3})
    consumer.assign([TopicPartition("kvb.control", 0, 0)])
    genuine = None
    deadline = time.monotonic() + 15
    while genuine is None and time.monotonic() < deadline:
        message = consumer.poll(0.5)
        if message is None or message.error():
            continue
        try:
            doc = json.loads(message.value())
        except ValueError:
            continue  # the unreadable record of another test
        if doc.get("type") == "command" and doc.get("action") == "pause" and doc.get("issuedBy") == "kvb-console send":
            genuine = message
    consumer.close()
    assert genuine is not None, "the console's pause command is not on kvb.control"
    assert dict(genuine.headers() or [])["kvb-sig"], "the console's command is not signed"
    before = rejections(fleet.r1, "replayed")
    since = time.monotonic()
    produce(fleet.broker.bootstrap, "kvb.control", [genuine.value()], headers=[genuine.headers()])
    time.sleep(2.5)
    assert not fleet.viewers["r1"].texts("paused", after=since), "a replayed pause paused the topic again"
    assert rejections(fleet.r1, "replayed") == before + 1


def unverified_status(fleet) -> dict[str, dict]:
    """`kvb-console status` without the operator key: every status, unverified (a keyless relay's too)."""
    result = run_console("status", "--wait", "2.5", bootstrap=fleet.broker.bootstrap, env={"KVB_OPERATOR_KEY": None})
    assert result.returncode == 0, result.stderr
    return {s["relay"]: s for s in json.loads(result.stdout)}


def test_a_relay_without_the_operator_key_applies_nothing_and_says_so(fleet):
    assert re.search(r"no operator key .* applies no operator command", fleet.keyless.log()), "the keyless relay did not say so at start"
    assert rejections(fleet.keyless, "no_operator_key") >= 1, "the genuine pause was not counted as refused on the keyless relay"
    status = unverified_status(fleet)
    assert status["keyless"]["commands"]["operatorKey"] is False
    assert status["r1"]["commands"]["operatorKey"] is True
    # A console with the key does not take the keyless relay's unsigned status at its word.
    assert "keyless" not in {s["relay"] for s in fleet_status(fleet.broker.bootstrap)}


def test_viewer_ids_are_unique_across_the_fleet_and_a_kick_names_one_relays_viewer(fleet):
    ids = [(s["relay"], session["id"]) for s in unverified_status(fleet).values() for session in s["sessions"] if session["role"] == "viewer"]
    assert len(ids) >= 3
    assert all(re.fullmatch(r"v-[0-9a-f]{8}", i) for _, i in ids), ids
    assert len({i for _, i in ids}) == len(ids), f"viewer ids repeat across relays: {ids}"
    result = run_console("send", "kick", "--viewer", ids[0][1], bootstrap=fleet.broker.bootstrap)
    assert result.returncode != 0 and "--relay" in result.stderr, "a kick without its relay was accepted"


def test_a_kick_bans_the_client_and_its_address(fleet):
    async def open_viewer(relay, client, source):
        return await TimedViewer.open(relay.url, TOPIC, query={"client": client}, sock=from_address(relay.url, source))

    kicked = fleet.clients.run(open_viewer(fleet.r2, "tab-1", "127.0.9.1"))
    fleet.clients.run(kicked.wait_for_stream(0, min_media=1, timeout=15))
    statuses = {s["relay"]: s for s in fleet_status(fleet.broker.bootstrap)}
    viewer_id = next(s["id"] for s in statuses["r2"]["sessions"] if s["role"] == "viewer" and s["remoteAddress"].startswith("127.0.9.1:"))
    result = run_console("send", "kick", "--viewer", viewer_id, "--relay", "r2", bootstrap=fleet.broker.bootstrap)
    assert result.returncode == 0, result.stdout + result.stderr
    code, _ = fleet.clients.run(kicked.wait_closed(10))
    assert code == 4001
    # A new client id from the same address is refused; another address is not.
    again = fleet.clients.run(open_viewer(fleet.r2, "tab-2-new-id", "127.0.9.1"))
    code, reason = fleet.clients.run(again.wait_closed(10))
    assert code == 4001 and "removed by the operator" in reason, f"the kicked address came back: {code} {reason}"
    other = fleet.clients.run(open_viewer(fleet.r2, "tab-3", "127.0.9.2"))
    fleet.clients.run(other.wait_for_stream(0, min_media=1, timeout=15))
    fleet.clients.run(other.close())


def test_consoles_ignore_unsigned_statuses_and_acks(fleet):
    now = int(time.time() * 1000)

    def status(relay: str) -> dict:
        return {"version": 1, "relay": relay, "address": "http://127.0.0.1:1", "startedAtMilliseconds": now,
                "sentAtMilliseconds": int(time.time() * 1000), "sessions": [], "topics": []}

    send_record(fleet, status("ghost-unsigned"), None, topic="kvb.status")
    send_record(fleet, status("ghost-badsig"), "a-guessed-operator-key-123456", topic="kvb.status")
    send_record(fleet, status("ghost-signed"), fleet.key, topic="kvb.status")
    relays = {s["relay"] for s in fleet_status(fleet.broker.bootstrap, wait=2.5)}
    assert "ghost-signed" in relays, "a signed status was not shown (the check below would prove nothing)"
    assert "ghost-unsigned" not in relays and "ghost-badsig" not in relays, f"a forged status was shown: {relays}"

    # A forged acknowledgement does not make `kvb-console send` report success; a signed one does.
    for key, expected in ((None, 1), ("a-guessed-operator-key-123456", 1), (fleet.key, 0)):
        done = threading.Event()

        def forge_ack():
            from confluent_kafka import Consumer, TopicPartition
            consumer = Consumer({"bootstrap.servers": fleet.broker.bootstrap, "group.id": "forger", "log_level": 3})
            consumer.assign([TopicPartition("kvb.control", 0, -1)])  # from the end
            while not done.is_set():
                message = consumer.poll(0.2)
                if message is None or message.error():
                    continue
                try:
                    doc = json.loads(message.value())
                except ValueError:
                    continue
                if doc.get("type") == "command" and doc.get("relay") == "nowhere":
                    ack = {"type": "ack", "command": doc["id"], "relay": "nowhere", "ok": True, "message": "forged",
                           "atMilliseconds": int(time.time() * 1000)}
                    send_record(fleet, ack, key)
                    break
            consumer.close()

        forger = threading.Thread(target=forge_ack)
        forger.start()
        time.sleep(1.5)  # the forger is reading the end of the topic
        result = run_console("send", "pause", "--topic", "nothing-here", "--relay", "nowhere", "--wait", "4",
                             bootstrap=fleet.broker.bootstrap)
        done.set()
        forger.join(10)
        assert result.returncode == expected, f"ack signed with {key and key[:6]}: exit {result.returncode}: {result.stdout}"


def test_crafted_control_plane_records_crash_nobody(fleet):
    """Records an insider (holding the key) or a bug could write: extreme numbers, 50,000 sessions,
    unknown fields, invalid UTF-8, deep nesting, commands with absurd targets. Neither relays nor
    a console crash or hang; unsigned copies are simply ignored."""
    console = fleet.kvb.start_console()
    console.wait_screen(lambda lines: any("r1" in line for line in lines), 20, "the console showing r1")
    now = int(time.time() * 1000)
    i64_min, i64_max = -(1 << 63), (1 << 63) - 1

    def status(relay, **overrides):
        doc = {"version": 1, "relay": relay, "address": "http://127.0.0.1:1", "startedAtMilliseconds": now,
               "sentAtMilliseconds": int(time.time() * 1000), "sessions": [], "topics": []}
        doc.update(overrides)
        return doc

    extreme_session = {"id": "v-x", "role": "viewer", "topic": "t", "remoteAddress": "1.2.3.4:5", "userAgent": "u",
                       "connectedAtMilliseconds": i64_min, "bytes": i64_max, "bitrate": i64_min, "skipped": i64_max,
                       "liveDelayMilliseconds": i64_min, "state": "x" * 5000}
    extreme_topic = {"name": "t", "paused": True, "publishers": i64_max, "viewers": i64_min, "inFragmentsPerSecond": 1e308,
                     "inBytesPerSecond": -1e308, "outFragmentsPerSecond": 0, "outBytesPerSecond": 1e-308,
                     "consumer": {"partition": -2147483648, "position": i64_min, "highWatermark": i64_max, "newestAgeMilliseconds": i64_min},
                     "latency": [{"stage": "written", "count": i64_max, "p50": 1e308, "p90": -1e308, "p99": 1e308, "max": 1e308}]}
    many = [{"id": f"v-{i:08x}", "role": "viewer", "topic": f"t{i % 97}", "remoteAddress": "10.0.0.1:1", "userAgent": "",
             "connectedAtMilliseconds": now, "bytes": i, "bitrate": i, "skipped": 0} for i in range(50_000)]
    crafted = [
        json.dumps(status("crafted-extreme", startedAtMilliseconds=i64_min, sessions=[extreme_session], topics=[extreme_topic])).encode(),
        json.dumps(status("crafted-future", sentAtMilliseconds=i64_max, startedAtMilliseconds=i64_max)).encode(),
        json.dumps(status("crafted-past", sentAtMilliseconds=i64_min)).encode(),
        json.dumps(status("crafted-many", sessions=many, topics=[extreme_topic])).encode(),
        json.dumps(status("crafted-unknown", extra={"nested": [1, {"a": None}]}, version=99)).encode(),
        b'{"version":1,"relay":"crafted-utf8-\xff\xfe","address":"\xc3\x28","startedAtMilliseconds":0,"sentAtMilliseconds":0,"sessions":[],"topics":[]}',
        b"[" * 20_000 + b"]" * 20_000,
        b'{"relay":' * 5_000,
    ]
    commands = [
        command("kick", relay="r1", viewer="v-" + "f" * 10_000),
        command("switch", relay="r1", viewer="v-00000000", to="x" * 100_000),
        command("switch", topic=TOPIC, to="kvb.status"),
        command("pause", topic="__consumer_offsets"),
        {"type": "command", "id": "", "action": "explode", "issuedAtMilliseconds": now, "issuedBy": ""},
        {"type": "ack", "command": "x", "relay": "r1", "ok": True, "message": "\u0000" * 1000, "atMilliseconds": i64_min},
    ]
    from confluent_kafka import Producer
    producer = Producer({"bootstrap.servers": fleet.broker.bootstrap, "message.max.bytes": 20_000_000, "compression.type": "gzip",
                         "linger.ms": 0, "log_level": 3})
    for value in crafted:
        for key in (fleet.key, None):  # signed (reaches the decoders) and unsigned (ignored)
            headers = [("kvb-sig", sign_record(key, "kvb.status", value).encode())] if key else None
            producer.produce("kvb.status", value=value, headers=headers)
    for doc in commands:
        value = json.dumps(doc).encode()
        producer.produce("kvb.control", value=value, headers=[("kvb-sig", sign_record(fleet.key, "kvb.control", value).encode())])
    assert producer.flush(30) == 0, "crafted records not delivered"

    since = time.monotonic()
    time.sleep(4)
    for relay in (fleet.r1, fleet.r2, fleet.keyless):
        assert relay.running, f"{relay.name} died on crafted records"
        assert http_get(relay.url + "/healthz")[0] == 200, f"{relay.name} stopped answering"
    for name, viewer in fleet.viewers.items():
        assert viewer.binaries_after(since + 1), f"viewer on {name} stopped receiving after the crafted records"
    dead, status_code, _ = console.pane()
    assert not dead, f"the console died on crafted records (status {status_code}); log: {console.log()[-2000:]}"
    # Still responsive: switch views and read the screen.
    for view, title in (("2", "Sessions"), ("3", "Topics"), ("4", "Lag"), ("1", "Relays")):
        console.keys(view)
        console.wait_screen(lambda lines, t=title: any(t in line for line in lines), 10, f"the console's {title} view")
    console.keys("q")
    deadline = time.monotonic() + 10
    while console.pane()[1] is None and time.monotonic() < deadline:  # tmux may learn the status late
        time.sleep(0.1)
    assert console.pane()[:2] == (True, 0), f"the console did not quit cleanly: {console.pane()}"
