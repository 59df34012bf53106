"""What Kafka holds of a topic, as a user gets it back: the list of publisher sessions, and any
session as a WebM file that ffprobe (Debian's ffmpeg) reads with the right duration and codecs,
that decodes without an error, and whose Clusters are the published bytes from the first keyframe
on. Asking for something that is not there gets a 404 with the reason, counted in /metrics.
"""

from __future__ import annotations

import asyncio
import json
import re
import shutil
import subprocess
import urllib.error
import urllib.request

import pytest

from kvbharness import Publisher, http_get, load_fixture, looped, small_buffer_socket, wait_until

CLUSTER_ID = bytes([0x1F, 0x43, 0xB6, 0x75])


def get(url: str, timeout: float = 30, headers: dict | None = None) -> tuple[int, dict, bytes]:
    try:
        with urllib.request.urlopen(urllib.request.Request(url, headers=headers or {}), timeout=timeout) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as error:
        return error.code, dict(error.headers), error.read()


def ffprobe(path: str) -> dict:
    exe = shutil.which("ffprobe")
    if not exe:
        pytest.fail("ffprobe not found on PATH (make deps installs Debian's ffmpeg)")
    result = subprocess.run([exe, "-v", "error", "-show_entries", "format=duration,start_time:stream=codec_name,codec_type",
                             "-of", "json", path], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and not result.stderr.strip(), f"ffprobe refused the file: {result.stderr}"
    return json.loads(result.stdout)


def decode_errors(path: str) -> str:
    result = subprocess.run(["ffmpeg", "-v", "error", "-i", path, "-f", "null", "-"], capture_output=True, text=True, timeout=120)
    return result.stderr.strip() if result.returncode == 0 else f"exit {result.returncode}: {result.stderr}"


async def publish(url: str, topic: str, chunks: list[bytes], interval: float = 0.02) -> str:
    """Publishes `chunks` at MediaRecorder's pace and ends the session; returns its id."""
    async with await Publisher.open(url, topic) as publisher:
        await wait_until(lambda: publisher.ready is not None or publisher.messages, 10, "the relay answers")
        await publisher.send_chunks(chunks, interval)
        await publisher.wait_delivered(sum(len(c) for c in chunks))
        session = publisher.ready["session"] if publisher.ready else None
    assert session, f"no session id from the relay: {publisher.messages}"
    return session


async def test_sessions_download_as_webm_files(kvb, topic, tmp_path):
    relay = await asyncio.to_thread(kvb.start_relay)
    fixture = load_fixture("vp8-opus")
    first = await publish(relay.url, topic, fixture.chunks)
    second_stream = looped(fixture, 2)
    second = await publish(relay.url, topic, second_stream.chunks)

    status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/sessions")
    assert status == 200, body
    listing = json.loads(body)
    print(json.dumps(listing, indent=1))
    sessions = listing["sessions"]
    assert [s["id"] for s in sessions] == [first, second], sessions
    for s in sessions:
        assert s["ended"] and s["complete"], s
        assert s["durationMilliseconds"] == s["endedAtMilliseconds"] - s["startedAtMilliseconds"] >= 0
    media = len(fixture.data) - fixture.cluster_offsets[0]
    assert sessions[0]["bytes"] == media, f"session bytes {sessions[0]['bytes']}, published media {media}"

    # The first session as a file: its Clusters are the published bytes, byte for byte.
    status, headers, file = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm?session={first}")
    assert status == 200, file
    assert headers["Content-Type"] == "video/webm"
    assert int(headers["Content-Length"]) == len(file)
    assert re.fullmatch(rf'attachment; filename="{re.escape(topic)}-[0-9T-]+Z\.webm"', headers["Content-Disposition"]), headers
    published = fixture.data[fixture.keyframe_cluster_offsets[0]:]
    assert file[file.index(CLUSTER_ID):] == published, "the file's Clusters differ from what was published"
    path = tmp_path / "first.webm"
    path.write_bytes(file)
    probe = ffprobe(str(path))
    print(f"ffprobe: {probe}")
    codecs = sorted(s["codec_name"] for s in probe["streams"])
    assert codecs == ["opus", "vp8"], probe
    fixture_path = tmp_path / "fixture.webm"
    fixture_path.write_bytes(fixture.data)
    played = float(subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries", "packet=pts_time", "-of", "csv=p=0",
                                   str(fixture_path)], capture_output=True, text=True).stdout.split()[-1])
    duration = float(probe["format"]["duration"])
    assert abs(duration - played) < 0.1, f"duration {duration} s, the recording's last packet at {played} s"
    assert float(probe["format"]["start_time"]) == 0
    assert decode_errors(str(path)) == "", "ffmpeg could not decode the file"

    # Ranges of it, as players ask when they seek: the same bytes as the whole file's.
    url = f"{relay.url}/api/topics/{topic}/recording.webm?session={first}"
    assert headers["Accept-Ranges"] == "bytes"
    middle = len(file) // 2
    for spec, expected in ((f"bytes={middle}-", file[middle:]), (f"bytes=100-{middle}", file[100:middle + 1]),
                           ("bytes=-1000", file[-1000:]), ("bytes=0-0", file[:1])):
        status, part_headers, part = await asyncio.to_thread(get, url, headers={"Range": spec})
        assert status == 206 and part == expected, (spec, status, len(part), len(expected))
        start = len(file) - len(expected) if spec.startswith("bytes=-") else int(spec[6:].split("-")[0])
        assert part_headers["Content-Range"] == f"bytes {start}-{start + len(expected) - 1}/{len(file)}", part_headers
    status, part_headers, _ = await asyncio.to_thread(get, url, headers={"Range": f"bytes={len(file)}-"})
    assert status == 416 and part_headers["Content-Range"] == f"bytes */{len(file)}", (status, part_headers)

    # No session named: the latest (the recording twice over; its timecodes repeat, so it lasts
    # as long as one pass). Its Clusters too are what was published.
    status, headers, latest = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm")
    assert status == 200, latest
    assert latest[latest.index(CLUSTER_ID):] == second_stream.data[second_stream.keyframe_cluster_offsets[0]:]
    assert sessions[1]["bytes"] == 2 * media, sessions[1]
    path = tmp_path / "latest.webm"
    path.write_bytes(latest)
    probe = ffprobe(str(path))
    assert abs(float(probe["format"]["duration"]) - duration) < 0.1, (probe, duration)

    # Not there: 404 with the reason, counted; a bad topic name: 400.
    status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm?session=nope")
    assert status == 404 and b"nope" in body, (status, body)
    status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/never-{topic}/sessions")
    assert status == 200 and json.loads(body)["sessions"] == [], body
    status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/__bad/recording.webm")
    assert status == 400, (status, body)
    _, metrics = await asyncio.to_thread(http_get, relay.url + "/metrics")
    assert re.search(rb'kvb_rejected_total\{reason="no_such_recording"\} 1\b', metrics), \
        [line for line in metrics.decode().splitlines() if "rejected" in line]


async def test_downloads_at_once_are_bounded_and_a_stalled_one_frees_its_reader(kvb, topic):
    relay = await asyncio.to_thread(kvb.start_relay, None, args=["--max-recording-readers", "1"])
    long = looped(load_fixture("vp8-opus"), 40)  # about 2.8 MB: more than the socket buffers hold
    session = await publish(relay.url, topic, long.chunks, interval=0)

    # A download whose client reads nothing holds the one reader...
    stalled = small_buffer_socket(relay.url)
    stalled.sendall(f"GET /api/topics/{topic}/recording.webm?session={session} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    await asyncio.sleep(1.5)
    # ...so another is refused at once, with the reason and when to try again, and counted.
    status, headers, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm")
    print(f"second download: {status} {body[:120]!r}")
    assert status == 503 and b"try again" in body and headers.get("Retry-After") == "5", (status, headers, body)
    _, metrics = await asyncio.to_thread(http_get, relay.url + "/metrics")
    assert re.search(rb'kvb_rejected_total\{reason="recording_readers"\} 1\b', metrics), metrics[-400:]

    # The stalled client goes away: its reader is freed and the next download is whole.
    stalled.close()
    async def whole() -> bool:
        status, headers, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm")
        return status == 200 and len(body) == int(headers["Content-Length"])
    deadline = asyncio.get_running_loop().time() + 20
    while not await whole():
        assert asyncio.get_running_loop().time() < deadline, "the stalled download's reader was never freed"
        await asyncio.sleep(0.5)


async def test_a_time_range_downloads_from_the_keyframe_before_it(kvb, topic, tmp_path):
    """On the embedded cluster the relay finds times by a search over the records' kvb-ingest-ms
    headers; on Tansu by offsets-for-times. Either way the file starts at the latest keyframe at or
    before `from`, within the session playing then, and ends at `to`."""
    from kvbharness import BACKEND
    relay = await asyncio.to_thread(kvb.start_relay)
    fixture = load_fixture("vp8-opus")
    ids = []
    for _ in range(3):
        ids.append(await publish(relay.url, topic, fixture.chunks, interval=0.1))
        await asyncio.sleep(0.5)
    _, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/sessions")
    sessions = {s["id"]: s for s in json.loads(body)["sessions"]}
    middle = sessions[ids[1]]
    print(f"middle session: {middle}")
    expected = "offsets-for-times" if BACKEND == "tansu" else "header-search"

    from_ms = middle["startedAtMilliseconds"] + 1500
    status, headers, file = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm?from={from_ms}")
    assert status == 200, file
    assert headers["Kvb-Time-Search"] == expected, headers
    path = tmp_path / "from.webm"
    path.write_bytes(file)
    probe = ffprobe(str(path))
    tail = float(probe["format"]["duration"])
    whole = middle["durationMilliseconds"] / 1000
    print(f"from +1.5 s: {tail:.2f} s of the session's {whole:.2f} s ({headers['Kvb-Time-Search']})")
    # From a keyframe at or before +1.5 s (the recording has one about every second), to the session's end.
    assert whole - 1.5 - 0.2 <= tail <= whole - 0.3, (tail, whole)
    assert float(probe["format"]["start_time"]) == 0
    assert decode_errors(str(path)) == ""
    # It is the middle session's: the file is named after its start.
    assert "Z.webm" in headers["Content-Disposition"]
    session_bytes = fixture.data[fixture.cluster_offsets[0]:]
    first_cluster = file[file.index(CLUSTER_ID):]
    # The published tail of the session, but for each Cluster's Timecode (moved back to start at 0).
    published_tail = session_bytes[-len(first_cluster):]
    differing = sum(1 for a, b in zip(first_cluster, published_tail) if a != b)
    clusters = first_cluster.count(CLUSTER_ID)
    assert len(first_cluster) < len(session_bytes) and differing <= 8 * clusters, \
        f"{differing} bytes differ from the session's last {len(first_cluster)} over {clusters} Clusters"

    # A window: from +0.5 s to +2.5 s lasts at most those 2 s plus the way back to a keyframe.
    to_ms = middle["startedAtMilliseconds"] + 2500
    status, headers, file = await asyncio.to_thread(
        get, f"{relay.url}/api/topics/{topic}/recording.webm?from={from_ms - 1000}&to={to_ms}")
    assert status == 200, file
    path = tmp_path / "window.webm"
    path.write_bytes(file)
    window = float(ffprobe(str(path))["format"]["duration"])
    print(f"window +0.5 s..+2.5 s: {window:.2f} s")
    assert 1.0 <= window <= 2.0 + 1.2, window
    assert decode_errors(str(path)) == ""

    # Times that are not times, or a window that ends before it starts: 400, counted.
    for query in ("from=yesterday", "from=-30&to=1", f"from={to_ms}&to={from_ms}"):
        status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/topics/{topic}/recording.webm?{query}")
        assert status == 400, (query, status, body)
    _, metrics = await asyncio.to_thread(http_get, relay.url + "/metrics")
    assert re.search(rb'kvb_rejected_total\{reason="bad_recording_time"\} 3\b', metrics), metrics[-600:]


async def all_recordings(url: str) -> dict:
    """`/api/recordings` once it has read every topic: one listing reads for at most 2 s, and
    what it leaves (other tests' topics on the shared cluster) is pending for the next."""
    deadline = asyncio.get_running_loop().time() + 60
    while True:
        status, _, body = await asyncio.to_thread(get, f"{url}/api/recordings")
        assert status == 200, body
        listing = json.loads(body)
        if not listing["pendingTopics"]:
            return listing
        assert asyncio.get_running_loop().time() < deadline, f"still pending: {listing['pendingTopics']}"
        await asyncio.sleep(1)


async def test_recordings_of_every_topic_newest_first(kvb, topic):
    """`GET /api/recordings`: the sessions of every stream topic of the cluster, newest first, as
    the front page lists them; another application's topic is not one of them."""
    from kvbharness.kafka import produce
    relay = await asyncio.to_thread(kvb.start_relay)
    fixture = load_fixture("vp8-opus")
    older = await publish(relay.url, topic, fixture.chunks, interval=0)
    await asyncio.sleep(0.05)
    newer = await publish(relay.url, f"{topic}-b", fixture.chunks, interval=0)
    foreign = f"{topic}-other"
    await asyncio.to_thread(produce, kvb.shared_bootstrap or relay.bootstrap, foreign, [b"not video %d" % i for i in range(40)])

    listing = await all_recordings(relay.url)
    ours = [(r["topic"], r["session"]["id"]) for r in listing["recordings"] if r["topic"].startswith(topic)]
    print(json.dumps(listing, indent=1)[:1500])
    assert ours == [(f"{topic}-b", newer), (topic, older)], ours
    for recording in listing["recordings"]:
        if recording["topic"].startswith(topic):
            session = recording["session"]
            assert session["ended"] and session["complete"] and session["bytes"] > 0 and session["relay"] == relay.name, session
    # Another application's topic is no recording (and is not left pending either).
    assert all(r["topic"] != foreign for r in listing["recordings"]) and foreign not in listing["pendingTopics"]

    # The newest one only; the total says how many there are.
    status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/recordings?limit=1")
    one = json.loads(body)
    assert status == 200 and len(one["recordings"]) == 1 and one["total"] >= 2, one
    assert one["recordings"][0]["session"]["startedAtMilliseconds"] >= \
        max(r["session"]["startedAtMilliseconds"] for r in listing["recordings"])

    # A limit that is not one: 400 with the reason, counted.
    for bad in ("0", "abc", "1001"):
        status, _, body = await asyncio.to_thread(get, f"{relay.url}/api/recordings?limit={bad}")
        assert status == 400 and b"limit" in body, (bad, status, body)
    _, metrics = await asyncio.to_thread(http_get, relay.url + "/metrics")
    assert re.search(rb'kvb_rejected_total\{reason="bad_limit"\} 3\b', metrics), metrics[-600:]


async def test_recordings_only_of_the_topics_a_relay_serves(kvb, topic):
    """A relay with --topic-pattern lists, and reads, only the topics it serves: another relay's
    broadcast on the same cluster, outside the pattern, is neither listed nor pending, in its
    recordings or in its topic list."""
    served = await asyncio.to_thread(kvb.start_relay, None, args=["--topic-pattern", f"{topic}-cam*"])
    other = await asyncio.to_thread(kvb.start_relay)
    fixture = load_fixture("vp8-opus")
    mine = await publish(served.url, f"{topic}-cam1", fixture.chunks, interval=0)
    await publish(other.url, f"{topic}-elsewhere", fixture.chunks, interval=0)

    listing = await all_recordings(served.url)
    topics = {r["topic"] for r in listing["recordings"]}
    assert topics == {f"{topic}-cam1"}, topics
    assert listing["recordings"][0]["session"]["id"] == mine and listing["total"] == 1 and listing["topics"] == 1, listing
    # Its topic list too has only what it serves (a link to another topic would be refused).
    from kvbharness import api_topics
    listed = await asyncio.to_thread(api_topics, served)
    assert f"{topic}-elsewhere" not in listed and f"{topic}-cam1" in listed, sorted(listed)
    # The other relay, serving every topic, lists both.
    status, _, body = await asyncio.to_thread(get, f"{other.url}/api/recordings?limit=1000")
    assert {f"{topic}-cam1", f"{topic}-elsewhere"} <= {r["topic"] for r in json.loads(body)["recordings"]}
