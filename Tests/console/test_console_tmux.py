"""The real operator console (kvb-console in tmux, 80×24) against a real fleet: a `kvb-server broker`
process, two relays on it, live publishers of two topics and viewers on both relays. What the
operator sees on the screen, and what the viewers notice when the operator acts.

The tests run in file order and share one fleet and one console (module fixture): the session
list, kick, pause/resume, switch, resizing, garbage on the status topic, a relay dying, quit.
"""

from __future__ import annotations

import re
import subprocess
import time
from types import SimpleNamespace

import pytest

from kvbharness import (CLUSTER_ID, ClientLoop, Kvb, PublisherLoop, TimedViewer, Tmux, api_topics, fleet_status,
                        load_fixture, looped, report_logs)
from kvbharness.trust import sign_record

TOPIC_A, TOPIC_B = "topicA", "topicB"


# MARK: - The fleet


@pytest.fixture(scope="module")
def fleet(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("console")
    kvb = Kvb(tmp)
    clients = ClientLoop()
    tmux = None
    publishers: list[PublisherLoop] = []
    try:
        broker = kvb.start_broker()  # a broker of its own: no other test's relays on the status topic
        kvb.shared_bootstrap = broker.bootstrap
        r1 = kvb.start_relay("r1")
        r2 = kvb.start_relay("r2")
        fixture_a = looped(load_fixture("vp8-opus"), 40)  # ~2 minutes per session at 100 ms a chunk
        fixture_b = looped(load_fixture("vp9"), 40)
        publishers = [PublisherLoop(r1.url, TOPIC_A, fixture_a, 0.1).start(clients),
                      PublisherLoop(r2.url, TOPIC_B, fixture_b, 0.1).start(clients)]

        async def open_viewer(relay, topic):
            viewer = await TimedViewer.open(relay.url, topic)
            return viewer

        viewers = {
            "a1": clients.run(open_viewer(r1, TOPIC_A)), "b1": clients.run(open_viewer(r1, TOPIC_B)),
            "sw": clients.run(open_viewer(r1, TOPIC_A)),
            "a2": clients.run(open_viewer(r2, TOPIC_A)), "b2": clients.run(open_viewer(r2, TOPIC_B)),
            "kick": clients.run(open_viewer(r2, TOPIC_A)), "kick2": clients.run(open_viewer(r1, TOPIC_B)),
        }
        for name, viewer in viewers.items():
            clients.run(viewer.wait_for_stream(0, min_media=1, timeout=20), timeout=30)

        tmux = kvb.start_console()  # kvb-console --bootstrap BROKER --log-file ..., 80×24
        yield SimpleNamespace(kvb=kvb, broker=broker, r1=r1, r2=r2, clients=clients, tmux=tmux, viewers=viewers,
                              publishers=publishers, fixture_a=fixture_a, fixture_b=fixture_b, console_log=tmux.log_path)
    finally:
        if tmux is not None:
            tmux.kill()
        for publisher in publishers:
            try:
                publisher.stop(clients, timeout=20)
            except Exception:
                pass
        clients.close()
        kvb.stop_all()


@pytest.fixture(autouse=True)
def _logs(fleet, request):
    """Failing reports carry the broker's, relays' and console's logs."""
    report_logs(request.node, fleet.kvb)


# MARK: - Reading the screen


def title(lines: list[str]) -> str:
    return lines[0]


def status_line(lines: list[str]) -> str:
    nonblank = [line for line in lines if line.strip()]
    return nonblank[-1] if nonblank else ""


def table_rows(lines: list[str]) -> list[list[str]]:
    """The rows under the header line (line 3), split into cells, up to the first blank line."""
    rows = []
    for line in lines[3:-1]:
        if not line.strip():
            break
        rows.append(line.split())
    return rows


def goto_view(tmux: Tmux, number: int, header: str) -> list[str]:
    tmux.keys(str(number))
    return tmux.wait_screen(lambda lines: lines if len(lines) > 2 and lines[2].startswith(header) else None, 5,
                            f"view {number} with header {header!r}")


def identity(fleet, viewer: TimedViewer, timeout: float = 10) -> tuple[str, str]:
    """(relay, viewer id) the relays report for this client, matched by its TCP port."""
    deadline = time.monotonic() + timeout
    while True:
        for status in fleet_status(fleet.broker.bootstrap, wait=1.5):
            for session in status["sessions"]:
                if session["role"] == "viewer" and session["remoteAddress"].endswith(f":{viewer.local_port}"):
                    return status["relay"], session["id"]
        assert time.monotonic() < deadline, f"no relay reports a viewer from port {viewer.local_port}"


def select_row(tmux: Tmux, header: str, view: int, matches) -> int:
    """Goes to `view`, finds the first row whose cells satisfy `matches`, moves the selection there
    with g and j (down) presses; returns the row index."""
    lines = goto_view(tmux, view, header)
    rows = tmux.wait_screen(lambda ls: [r for r in table_rows(ls) if matches(r)] and table_rows(ls), 10,
                            f"a matching row in view {view}")
    index = next(i for i, row in enumerate(rows) if matches(row))
    tmux.keys("g", *(["j"] * index))
    return index


def select_session(tmux: Tmux, relay: str, viewer_id: str) -> None:
    """Selects the viewer's row in view 2 and checks it with the details view (Enter, Esc)."""
    for attempt in range(5):
        select_row(tmux, " ROLE", 2, lambda cells: len(cells) > 3 and cells[0] == "VIEW" and cells[1] == viewer_id
                   and cells[3] == relay)
        tmux.keys("Enter")
        lines = tmux.wait_screen(lambda ls: ls if "Details" in ls[2] else None, 5, "the details view")
        details = {line.split()[0]: line.split()[1] for line in lines[3:] if len(line.split()) >= 2}
        tmux.keys("Escape")
        tmux.wait_screen(lambda ls: ls[2].startswith(" ROLE"), 5, "the session list again")
        if details.get("session") == viewer_id and details.get("relay") == relay:
            return
    raise AssertionError(f"could not select viewer {viewer_id} on {relay}; last details: {details}")


def process_report(pid: int) -> str:
    """What a process and its children are doing (state and kernel wait channel of each thread)."""
    out = subprocess.run(["ps", "-L", "-o", "pid,lwp,stat,wchan:32,comm", "--ppid", str(pid), "-p", str(pid)],
                         capture_output=True, text=True).stdout
    return out or f"(pid {pid} is gone)"


def assert_alive(tmux: Tmux) -> None:
    dead, code, _ = tmux.pane()
    assert not dead, f"the console exited (status {code}); screen:\n{tmux.text()}"


def others_keep_receiving(fleet, names: list[str], since: float, timeout: float = 3) -> None:
    deadline = time.monotonic() + timeout
    while True:
        missing = [n for n in names if not fleet.viewers[n].binaries_after(since)]
        if not missing:
            return
        assert time.monotonic() < deadline, f"viewers {missing} got no binary frame for {timeout} s: " + "; ".join(
            fleet.viewers[n].describe()[-300:] for n in missing)
        time.sleep(0.05)


def is_keyframe_fragment(fixture, frame: bytes) -> bool:
    """The frame is the start of one of the recording's keyframe Clusters."""
    return frame[:4] == CLUSTER_ID and any(fixture.data.startswith(frame[:4096], k) for k in fixture.keyframe_cluster_offsets)


def control_timeline(bootstrap: str) -> str:
    """kvb.control as a timeline (command issued → record timestamp → acks), for the report."""
    try:
        from confluent_kafka import Consumer, TopicPartition
    except ImportError:
        return "(confluent-kafka not installed: no control topic timeline)"
    import json
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "timeline", "enable.auto.commit": False})
    try:
        low, high = consumer.get_watermark_offsets(TopicPartition("kvb.control", 0), timeout=5)
        consumer.assign([TopicPartition("kvb.control", 0, low)])
        out, issued = [], {}
        while len(out) < high - low:
            message = consumer.poll(2)
            if message is None:
                break
            if message.error():
                continue
            out.append(message)
        lines = []
        for message in out:
            try:
                doc = json.loads(message.value())
            except ValueError:
                continue
            stamp = message.timestamp()[1]
            if doc.get("type") == "command":
                issued[doc["id"]] = doc["issuedAtMilliseconds"]
                lines.append(f"  {doc['id']} {doc['action']}: issued {doc['issuedAtMilliseconds']}, in Kafka at +{stamp - doc['issuedAtMilliseconds']} ms")
            elif doc.get("type") == "ack" and doc.get("command") in issued:
                start = issued[doc["command"]]
                lines.append(f"    ack from {doc['relay']} at +{doc.get('atMilliseconds', 0) - start} ms (record +{stamp - start} ms): {doc.get('message')}")
        return "control topic:\n" + "\n".join(lines)
    finally:
        consumer.close()


# MARK: - Tests


def test_a_sessions_of_both_relays_are_listed(fleet):
    tmux = fleet.tmux
    lines = tmux.wait_screen(lambda ls: ls if re.search(r"2 relays", title(ls)) else None, 15, "'2 relays' in the title")
    print("\n" + "\n".join(lines))
    goto_view(tmux, 2, " ROLE")
    expected = {(relay, topic, role) for relay, topic, role in [
        ("r1", TOPIC_A, "PUB"), ("r2", TOPIC_B, "PUB"), ("r1", TOPIC_A, "VIEW"), ("r1", TOPIC_B, "VIEW"),
        ("r2", TOPIC_A, "VIEW"), ("r2", TOPIC_B, "VIEW")]}

    def listed(ls):
        seen = {(cells[3], cells[2], cells[0]) for cells in table_rows(ls) if len(cells) > 3}
        return ls if expected <= seen and len(table_rows(ls)) == 9 else None

    lines = tmux.wait_screen(listed, 10, "2 publishers and 7 viewers of both relays in view 2")
    print("\n".join(lines))
    assert re.search(r"9 sessions", title(lines)), title(lines)


def test_b_kick_closes_that_viewer_with_4001(fleet):
    """Two kicks: the first command on a fresh cluster (kvb.control is auto-created by it), then
    one more; each closes exactly that viewer's socket with 4001 within a second of 'y'."""
    watcher = ControlWatcher(fleet.broker.bootstrap)
    try:
        first = kick(fleet, "kick", "r2", TOPIC_A, bystanders=["a1", "a2", "b1", "b2", "sw", "kick2"])
        second = kick(fleet, "kick2", "r1", TOPIC_B, bystanders=["a1", "a2", "b1", "b2", "sw"])
    finally:
        watcher.stop()
    print("control topic as seen by an outside consumer (ms after 'y'):\n" + "\n".join(
        f"  +{1000 * (at - pressed):.0f} {doc.get('type')} {doc.get('id') or doc.get('command')}"
        for at, doc in watcher.seen for pressed in [max([p for p in KICK_PRESSES if p <= at] or [at])]))
    print(control_timeline(fleet.broker.bootstrap))
    assert first < 1.0 and second < 1.0, f"kicks took {first:.2f} s and {second:.2f} s from 'y' to the socket closing"


KICK_PRESSES: list[float] = []


class ControlWatcher:
    """Diagnosis: an independent consumer of kvb.control noting when each record shows up."""

    def __init__(self, bootstrap: str) -> None:
        import threading
        self.seen: list[tuple[float, dict]] = []
        self._stop = threading.Event()
        try:
            from confluent_kafka import Consumer, TopicPartition
        except ImportError:
            self.thread = None
            return
        consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "watcher", "fetch.wait.max.ms": 5,
                             "enable.auto.commit": False})
        consumer.assign([TopicPartition("kvb.control", 0, -1)])  # from the end

        def run():
            import json
            while not self._stop.is_set():
                message = consumer.poll(0.05)
                if message is not None and not message.error():
                    try:
                        self.seen.append((time.monotonic(), json.loads(message.value())))
                    except ValueError:
                        pass
            consumer.close()
        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        time.sleep(1)

    def stop(self) -> None:
        self._stop.set()
        if self.thread:
            self.thread.join(5)


def kick(fleet, name: str, expected_relay: str, topic: str, bystanders: list[str]) -> float:
    tmux = fleet.tmux
    target = fleet.viewers[name]
    relay, viewer_id = identity(fleet, target)
    assert relay == expected_relay
    question = f"Kick viewer {viewer_id} of {topic} on {relay}? (y/n)"
    for attempt in range(5):
        select_session(tmux, relay, viewer_id)
        tmux.keys("x")
        lines = tmux.wait_screen(lambda ls: ls if "(y/n)" in status_line(ls) else None, 5, "the kick confirmation")
        if question in status_line(lines):
            break
        tmux.keys("n")  # the rows moved under us: cancel and select again
    else:
        raise AssertionError(f"never got {question!r}; last: {status_line(lines)!r}")
    assert target.closed_at is None, "the viewer was kicked before the operator confirmed"
    pressed = tmux.keys("y")
    KICK_PRESSES.append(pressed)
    deadline = pressed + 5
    while target.closed_at is None and time.monotonic() < deadline:
        time.sleep(0.005)
    assert target.closed_at is not None, f"the kicked viewer is still connected 5 s after 'y': {target.describe()[-300:]}"
    latency = target.closed_at - pressed
    print(f"\nkick: 'y' → socket closed {latency * 1000:.0f} ms, code {target.close_code} {target.close_reason!r}")
    assert target.close_code == 4001, (target.close_code, target.close_reason)
    lines = tmux.wait_screen(lambda ls: ls if f"{relay}: kicked {viewer_id} ({topic})" in status_line(ls) else None, 5,
                             "the relay's acknowledgement on the status line")
    print(status_line(lines))
    others_keep_receiving(fleet, bystanders, since=time.monotonic())
    for other in bystanders:
        assert not fleet.viewers[other].closed.is_set(), f"{other} was closed too: {fleet.viewers[other].describe()[-200:]}"
    assert_alive(tmux)
    return latency


def test_c_pause_and_resume_a_topic_on_every_relay(fleet):
    tmux, viewers = fleet.tmux, fleet.viewers
    watchers_a = ["a1", "a2", "sw"]
    select_row(tmux, " TOPIC", 3, lambda cells: cells[0] == TOPIC_A)
    tmux.keys("p")
    tmux.wait_screen(lambda ls: f"Pause {TOPIC_A} on every relay? (y/n)" in status_line(ls), 5, "the pause confirmation")
    acked_before = fleet.publishers[0].acked_total
    marks_before = {r.name: api_topics(r)[TOPIC_A]["highWatermark"] for r in (fleet.r1, fleet.r2)}
    pressed = tmux.keys("y")

    paused_at = {}
    deadline = pressed + 5
    while len(paused_at) < len(watchers_a) and time.monotonic() < deadline:
        for name in watchers_a:
            notices = viewers[name].texts("paused", after=pressed)
            if notices and name not in paused_at:
                assert notices[0][1].get("topic") == TOPIC_A, notices[0]
                paused_at[name] = notices[0][0]
        time.sleep(0.01)
    assert len(paused_at) == len(watchers_a), f"'paused' reached only {sorted(paused_at)} of {watchers_a}: " + "; ".join(
        viewers[n].describe()[-200:] for n in watchers_a)
    print(f"\npause: 'y' → paused notice " + ", ".join(f"{n} {1000 * (t - pressed):.0f} ms" for n, t in paused_at.items()))
    lines = tmux.wait_screen(lambda ls: ls if re.search(rf"r[12]: paused {TOPIC_A}", status_line(ls)) else None, 5,
                             "the pause acknowledgement")
    tmux.wait_screen(lambda ls: any(c[:2] == [TOPIC_A, "PAUSED"] for c in table_rows(ls)), 5, f"{TOPIC_A} shown PAUSED")

    time.sleep(2.5)  # the stream keeps going into Kafka; paused viewers get nothing
    for name in watchers_a:
        late = viewers[name].binaries_after(paused_at[name])
        assert not late, f"{name} got {len(late)} binary frames after 'paused' (first {late[0][0] - paused_at[name]:.2f} s after)"
    others_keep_receiving(fleet, ["b1", "b2"], since=time.monotonic() - 2.0, timeout=0.1)
    acked_after = fleet.publishers[0].acked_total
    marks_after = {r.name: api_topics(r)[TOPIC_A]["highWatermark"] for r in (fleet.r1, fleet.r2)}
    print(f"pause: publisher acked {acked_before} → {acked_after}; high watermark {marks_before} → {marks_after}")
    assert acked_after > acked_before + 10, "the publisher's fragments stopped being acknowledged while paused"
    for name in marks_before:
        assert marks_after[name] > marks_before[name], f"{name}'s high watermark of {TOPIC_A} did not rise while paused"

    # p again resumes at once, without asking.
    resumed = tmux.keys("p")
    lines = tmux.wait_screen(lambda ls: ls if "resume" in status_line(ls) else None, 5, "the resume being sent")
    assert "(y/n)" not in status_line(lines), f"resume asked for confirmation: {status_line(lines)!r}"
    tmux.wait_screen(lambda ls: re.search(rf"r[12]: resumed {TOPIC_A}", status_line(ls)), 5, "the resume acknowledgement")
    tmux.wait_screen(lambda ls: any(c[:2] == [TOPIC_A, "live"] for c in table_rows(ls)), 5, f"{TOPIC_A} shown live again")
    for name in watchers_a:
        viewer = viewers[name]
        clients_wait = time.monotonic() + 5
        while not (viewer.texts("resumed", after=resumed) and len(viewer.binaries_after(resumed)) >= 2):
            assert time.monotonic() < clients_wait, f"{name} did not resume: {viewer.describe()[-300:]}"
            time.sleep(0.02)
        at_resumed = viewer.texts("resumed", after=resumed)[0][0]
        events = [(at, what, value) for at, what, value in list(viewer.events) if at >= at_resumed]
        first_binary = next(i for i, e in enumerate(events) if e[1] == "binary")
        before = [value.get("type") for _, what, value in events[:first_binary] if what == "text"]
        frames = [value for _, what, value in events[first_binary:] if what == "binary"]
        gap = events[first_binary][0] - at_resumed
        if "reset" in before:
            assert frames[0] == fleet.fixture_a.init_segment, f"{name}: after resumed+reset the first frame is not the init segment"
            media = frames[1]
            how = "reset + init"
        else:
            assert "skipped" in before, f"{name}: after 'resumed' neither a reset nor a skipped notice came first: {before}"
            media = frames[0]
            how = "skipped"
        assert is_keyframe_fragment(fleet.fixture_a, media), (
            f"{name}: media after resume does not start at a keyframe Cluster: {media[:16].hex()}")
        print(f"resume {name}: notices {before}, first binary {gap * 1000:.0f} ms after 'resumed' ({how}), keyframe ok")


def test_d_switch_a_viewer_to_another_topic(fleet):
    tmux = fleet.tmux
    target = fleet.viewers["sw"]
    relay, viewer_id = identity(fleet, target)
    assert relay == "r1"
    select_session(tmux, relay, viewer_id)
    tmux.keys("t")
    lines = tmux.wait_screen(lambda ls: ls if "Switch to which topic?" in ls[2] else None, 5, "the topic list")
    choices = [line.strip() for line in lines[3:-1] if line.strip()]
    assert TOPIC_B in choices and TOPIC_A not in choices, choices
    tmux.keys(*(["Down"] * choices.index(TOPIC_B)), "Enter")
    tmux.wait_screen(lambda ls: f"Move viewer {viewer_id} to {TOPIC_B}? (y/n)" in status_line(ls), 5, "the switch confirmation")
    pressed = tmux.keys("y")

    def switched():
        texts = target.texts(after=pressed)
        return next((at for at, doc in texts if doc.get("type") == "switched"), None)

    deadline = pressed + 5
    while switched() is None:
        assert time.monotonic() < deadline, f"no 'switched' notice: {target.describe()[-300:]}"
        time.sleep(0.01)
    at = switched()
    notice = next(doc for t, doc in target.texts("switched", after=pressed))
    assert notice["topic"] == TOPIC_B, notice
    print(f"\nswitch: 'y' → switched notice {1000 * (at - pressed):.0f} ms")
    deadline = time.monotonic() + 5
    while len(target.binaries_after(at)) < 3:
        assert time.monotonic() < deadline, f"no stream of {TOPIC_B} after switching: {target.describe()[-300:]}"
        time.sleep(0.02)
    events = [(t, what, value) for t, what, value in list(target.events) if t >= at]
    kinds = [value.get("type") if what == "text" else "binary" for _, what, value in events]
    assert kinds[0] == "switched" and kinds[1] == "reset", f"after 'switched' expected 'reset' next, got {kinds[:6]}"
    binaries = [value for _, what, value in events if what == "binary"]
    assert binaries[0] == fleet.fixture_b.init_segment, (
        f"first frame after the switch is not {TOPIC_B}'s init segment ({len(binaries[0])} bytes, {binaries[0][:8].hex()})")
    assert binaries[0] != fleet.fixture_a.init_segment
    assert is_keyframe_fragment(fleet.fixture_b, binaries[1]), f"{TOPIC_B} media does not start at a keyframe Cluster"
    for frame in binaries[1:]:
        assert bytes(frame) in fleet.fixture_b.data, "a frame after the switch is not from topic B's stream"
    tmux.wait_screen(lambda ls: f"r1: moved 1 viewer to {TOPIC_B}" in status_line(ls), 5, "the switch acknowledgement")
    # The console lists it under B now.
    goto_view(tmux, 2, " ROLE")
    tmux.wait_screen(lambda ls: any(c[1] == viewer_id and c[3] == "r1" and c[2] == TOPIC_B for c in table_rows(ls) if len(c) > 3),
                     5, f"{viewer_id} listed under {TOPIC_B}")


def test_d2_recordings_of_what_kafka_holds(fleet):
    """View 5 lists the sessions Kafka holds, read by the console from Kafka itself: the live ones
    of A and B, and one of C that ended; its details give a download link that serves the
    broadcast, its Clusters byte for byte as published. `kvb-console recordings` prints the same."""
    import urllib.request
    from kvbharness import Publisher, wait_until
    tmux = fleet.tmux
    topic_c = "topicC"
    fixture = load_fixture("vp8-opus")

    async def publish() -> str:
        async with await Publisher.open(fleet.r1.url, topic_c) as publisher:
            await wait_until(lambda: publisher.ready is not None or publisher.messages, 10, "the relay answers")
            await publisher.send_chunks(fixture.chunks, 0.02)
            await publisher.wait_delivered(sum(len(c) for c in fixture.chunks))
            return publisher.ready["session"]

    session = fleet.clients.run(publish(), timeout=60)
    tmux.keys("5")
    tmux.wait_screen(lambda ls: ls if len(ls) > 2 and "STARTED" in ls[2] else None, 5, "view 5 (Recordings)")

    def listed(ls):
        # The newest session of each topic (rows are newest first); STATE is the last cells
        # ("live", or "live, cut" once retention has taken the beginning of a long one).
        rows = {}
        for cells in table_rows(ls):
            rows.setdefault(cells[0], cells)
        def live(topic):
            return topic in rows and rows[topic][-1] in ("live", "cut") and "live" in " ".join(rows[topic][-2:])
        return rows if topic_c in rows and rows[topic_c][-1] == "ended" and live(TOPIC_A) and live(TOPIC_B) else None

    rows = tmux.wait_screen(listed, 30, f"{topic_c} ended, {TOPIC_A} and {TOPIC_B} live")
    print(f"\nrecordings: {rows}")
    assert rows[topic_c][-2] == "r1", rows[topic_c]
    assert "r2" in rows[TOPIC_B], rows[TOPIC_B]
    # The newest first: C started last.
    order = [cells[0] for cells in table_rows(tmux.screen())]
    assert order[0] == topic_c, order

    select_row(tmux, " TOPIC", 5, lambda cells: cells and cells[0] == topic_c)
    tmux.keys("Enter")
    lines = tmux.wait_screen(lambda ls: ls if "Details" in ls[2] and any(" download" in line for line in ls) else None, 5,
                             "the recording's details")
    details, label = {}, None
    for line in lines[3:-1]:
        if line[:16].strip():
            label = line[:16].strip()
            details[label] = line[16:].strip()
        elif label and line.strip():
            details[label] += line[16:].strip()  # a long value goes on over the next lines
    print(f"details: {details}")
    assert details["session"] == session and details["relay"] == "r1" and details["state"] == "ended", details
    url = details["download"]
    assert url == f"{fleet.r1.url}/api/topics/{topic_c}/recording.webm?session={session}", url
    with urllib.request.urlopen(url, timeout=30) as response:
        assert response.status == 200 and response.headers["Content-Type"] == "video/webm"
        file = response.read()
    assert file[file.index(CLUSTER_ID):] == fixture.data[fixture.keyframe_cluster_offsets[0]:], \
        "the download's Clusters are not what was published"
    tmux.keys("Escape")
    goto_view(tmux, 1, " RELAY")

    # The same for scripts: `kvb-console recordings` prints the list as JSON.
    import json
    from kvbharness.processes import run_console
    result = run_console("recordings", "--wait", "30", bootstrap=fleet.broker.bootstrap, timeout=60)
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert not listing["pendingTopics"], listing["pendingTopics"]
    newest = listing["recordings"][0]
    assert newest["topic"] == topic_c and newest["session"]["id"] == session and newest["session"]["ended"], newest
    assert {r["topic"] for r in listing["recordings"]} >= {TOPIC_A, TOPIC_B, topic_c}


def test_e_resize(fleet):
    tmux = fleet.tmux
    for width, height in [(80, 24), (100, 30), (80, 24), (60, 15), (30, 6), (120, 40), (80, 24)]:
        tmux.resize(width, height)
        assert tmux.size() == (width, height)
        if width >= 40 and height >= 8:
            lines = tmux.wait_screen(
                lambda ls: ls if len(ls) >= height and ls[0].startswith(" kvb console") and ls[1].lstrip().startswith("1 Relays")
                and len(ls[0].rstrip()) <= width and status_line(ls).strip() else None, 5, f"a redraw at {width}×{height}")
        else:
            lines = tmux.wait_screen(lambda ls: ls if "Terminal too small" in ls[0] else None, 5, f"the too-small note at {width}×{height}")
        assert_alive(tmux)
        print(f"\n{width}×{height}: {lines[0].rstrip()!r}")
    goto_view(tmux, 1, " RELAY")


def test_f_garbage_on_the_status_topic(fleet):
    kafka = pytest.importorskip("confluent_kafka")
    tmux = fleet.tmux
    producer = kafka.Producer({"bootstrap.servers": fleet.broker.bootstrap, "linger.ms": 0})
    garbage = [b"", b"\xff\xfe\x00 not json", b"null", b"[1,2,3]", b"{}", b'{"relay":5}', b'{"version":1,"relay":"ghost"}',
               b'{"relay":"r1","address":"x","startedAtMilliseconds":"soon","sentAtMilliseconds":1,"sessions":{},"topics":[]}',
               b'{"type":"command"}', b"{" * 10000, b"x" * 200_000]
    delivered = []
    # Unsigned (ignored before decoding), and signed with the operator key (decoded, unreadable).
    for value in garbage:
        for topic in ("kvb.status", "kvb.control"):
            for headers in (None, [("kvb-sig", sign_record(fleet.kvb.operator_key, topic, value).encode())]):
                producer.produce(topic, value=value, key=b"garbage", partition=0, headers=headers,
                                 on_delivery=lambda err, msg: delivered.append(err))
    producer.flush(10)
    assert len(delivered) == 4 * len(garbage) and not any(delivered), delivered
    sent = time.monotonic()
    time.sleep(3)
    assert_alive(tmux)
    lines = goto_view(tmux, 1, " RELAY")
    lines = tmux.wait_screen(lambda ls: ls if {c[0] for c in table_rows(ls) if c[-1] == "ok"} == {"r1", "r2"} else None, 5,
                             "r1 and r2 listed as ok")
    assert "ghost" not in "\n".join(lines)
    tmux.resize(200, 24)  # room for the whole title
    lines = tmux.wait_screen(lambda ls: ls if re.search(r"\d+ unreadable records ignored\)", ls[0]) else None, 5,
                             "the title counting unsigned and unreadable records")
    print("\n" + lines[0].rstrip())
    unsigned = int(re.search(r"(\d+) unsigned or forged records ignored", lines[0]).group(1))
    unreadable = int(re.search(r"(\d+) unreadable records ignored", lines[0]).group(1))
    assert unsigned >= len(garbage), f"{unsigned} unsigned records counted, {len(garbage)} sent to kvb.status"
    assert unreadable >= len(garbage) - 1, f"{unreadable} unreadable records counted, {len(garbage)} signed ones sent"
    tmux.resize(80, 24)
    for relay in (fleet.r1, fleet.r2):
        assert relay.popen.poll() is None, f"{relay.name} died after garbage on the control topics"
        assert TOPIC_A in api_topics(relay)
    others_keep_receiving(fleet, ["a1", "a2", "b1", "b2"], since=sent, timeout=1)
    assert_alive(tmux)


def test_g_a_vanished_relay_goes_stale_then_is_dropped(fleet):
    tmux = fleet.tmux
    goto_view(tmux, 1, " RELAY")
    tmux.wait_screen(lambda ls: {c[0] for c in table_rows(ls) if c[-1] == "ok"} == {"r1", "r2"}, 5, "both relays ok")
    fleet.r2.popen.kill()  # SIGKILL: no goodbye on the status topic
    killed = time.monotonic()
    fleet.r2.popen.wait(5)

    def stale(ls):
        rows = {c[0]: c[-1] for c in table_rows(ls) if c}
        return ls if rows.get("r2") == "stale" and rows.get("r1") == "ok" and "(1 stale)" in ls[0] else None

    lines = tmux.wait_screen(stale, 6, "r2 shown stale and '(1 stale)' in the title")
    stale_after = time.monotonic() - killed
    print(f"\nSIGKILL r2 → stale after {stale_after:.1f} s\n" + "\n".join(lines[:5]))
    assert stale_after <= 4.5, f"r2 shown stale only {stale_after:.1f} s after it died"

    def dropped(ls):
        assert_alive(tmux)
        rows = {c[0] for c in table_rows(ls) if c}
        return ls if rows == {"r1"} and re.search(r"│ 1 relay │", ls[0]) else None

    lines = tmux.wait_screen(dropped, 20, "r2 dropped from the list")
    dropped_after = time.monotonic() - killed
    print(f"SIGKILL r2 → dropped after {dropped_after:.1f} s\n" + "\n".join(lines[:4]))
    assert 12 <= dropped_after <= 17.5, f"r2 dropped {dropped_after:.1f} s after it died (expected about 15 s)"
    goto_view(tmux, 2, " ROLE")
    lines = tmux.wait_screen(lambda ls: ls if table_rows(ls) and all(c[3] == "r1" for c in table_rows(ls)) else None, 5,
                             "only r1's sessions")
    assert_alive(tmux)


def zombie_exit_status(pid: int) -> int | str | None:
    """The wait status of an exited, not yet reaped process, from /proc/PID/stat (field 52)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2:].split()  # fields from 3 (state) on
    if fields[0] != "Z" or len(fields) < 50:
        return None
    status = int(fields[49])
    return status >> 8 if status & 0x7F == 0 else f"signal {status & 0x7F}"


def test_h_q_quits_cleanly(fleet):
    tmux = fleet.tmux
    assert_alive(tmux)
    pid = tmux.pane()[2]
    pressed = tmux.keys("q")
    deadline = pressed + 5
    # tmux marks the pane dead when the pty closes and learns the exit status when it reaps the
    # process, which it sometimes does late: a zombie's status is read from /proc then.
    while True:
        dead, code, _ = tmux.pane()
        if code is None and dead:
            code = zombie_exit_status(pid)
        if code is not None:
            break
        if time.monotonic() > deadline:
            raise AssertionError(f"no exit status 5 s after q (pane dead={dead}); the console process:\n" + process_report(pid))
        time.sleep(0.05)
    print(f"\nq → exited {code} after {time.monotonic() - pressed:.2f} s")
    assert code == 0, f"kvb-console exited with {code} after q; console log: {fleet.console_log}"
