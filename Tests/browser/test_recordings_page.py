"""A broadcast played back from Kafka: a few seconds from the fake camera, then the topic's
recordings page lists the session, plays its file in a <video> from start to end (every frame
ffprobe counts in the file, decoded; a known duration, so the seek bar works), seeks into the
middle, and offers the same file to download."""

from __future__ import annotations

import json
import shutil
import subprocess
import time
import urllib.request

import pytest

from kvbpage import wait_js

RECORD_SECONDS = 6


def video_frames_in(path: str) -> int:
    exe = shutil.which("ffprobe")
    if not exe:
        pytest.fail("ffprobe not found on PATH (make deps installs Debian's ffmpeg)")
    out = subprocess.run([exe, "-v", "error", "-count_frames", "-select_streams", "v:0", "-show_entries",
                          "stream=nb_read_frames", "-of", "csv=p=0", path], capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    return int(out.stdout.strip())


def test_a_recording_plays_from_start_to_end_in_chromium(kvb, topic, new_page, tmp_path):
    relay = kvb.start_relay(bootstrap=None)  # its own embedded cluster, whose retention it knows
    publisher = new_page("publisher")
    publisher.goto(f"{relay.url}/broadcast.html?topic={topic}&autostart=1")
    wait_js(publisher, "window.kvbBroadcast && kvbBroadcast.state === 'live' && kvbBroadcast.stats && kvbBroadcast.stats.acked > 0",
            15, "the broadcast is live", state="kvbBroadcast")
    time.sleep(RECORD_SECONDS)
    publisher.click("#stop")
    wait_js(publisher, "kvbBroadcast.state !== 'live'", 10, "the broadcast stops", state="kvbBroadcast")

    page = new_page("recordings")
    page.goto(f"{relay.url}/recordings.html?topic={topic}")
    wait_js(page, "kvbRecordings.sessions && kvbRecordings.sessions.length === 1 && kvbRecordings.sessions[0].ended", 15,
            "the recordings page lists the ended session", state="kvbRecordings")
    session = page.evaluate("kvbRecordings.sessions[0]")
    print(f"session: {json.dumps(session)}")
    assert session["complete"] and session["durationMilliseconds"] >= (RECORD_SECONDS - 1) * 1000, session
    retention = page.evaluate("kvbRecordings.retention()")
    print(f"retention: {retention}")
    assert "5 MiB" in retention and "at this topic's latest bitrate" in retention, retention

    # The same file the download link gives: ffprobe counts its video frames.
    href = page.get_attribute(f"tr[data-session='{session['id']}'] a.download", "href")
    with urllib.request.urlopen(relay.url + href, timeout=30) as response:
        assert response.headers["Content-Disposition"].startswith("attachment; filename="), response.headers
        data = response.read()
    path = tmp_path / "recording.webm"
    path.write_bytes(data)
    in_file = video_frames_in(str(path))
    print(f"{len(data)} bytes, {in_file} video frames in the file")

    page.click(f"tr[data-session='{session['id']}'] button.play")
    wait_js(page, "document.getElementById('video').readyState >= 1", 10, "the file's metadata loads", state="kvbRecordings")
    duration = page.evaluate("document.getElementById('video').duration")
    assert duration != float("inf") and abs(duration * 1000 - session["durationMilliseconds"]) < 1500, \
        f"the player knows the length ({duration} s; the session lasted {session['durationMilliseconds']} ms)"
    page.evaluate("document.getElementById('video').playbackRate = 2")
    wait_js(page, "document.getElementById('video').ended", duration + 20, "the recording plays to its end", state="kvbRecordings")
    played = page.evaluate("""() => { const v = document.getElementById('video');
        const q = v.getVideoPlaybackQuality();
        return { frames: q.totalVideoFrames, dropped: q.droppedVideoFrames, time: v.currentTime, error: v.error && v.error.message }; }""")
    print(f"played: {played}")
    assert played["error"] is None, played
    assert played["frames"] >= 0.9 * in_file, f"decoded {played['frames']} of the file's {in_file} video frames"
    assert abs(played["time"] - duration) < 0.5, played

    seekable = page.evaluate("() => { const s = document.getElementById('video').seekable; return s.length ? s.end(s.length - 1) : 0; }")
    assert abs(seekable - duration) < 0.5, f"seekable to {seekable} s of {duration} s (the relay serves ranges)"
    # Seeking into the middle (the file's Cues) lands there and shows a frame.
    page.evaluate(f"""() => new Promise((done) => {{ const v = document.getElementById('video');
        v.addEventListener('seeked', done, {{ once: true }}); v.currentTime = {duration / 2}; }})""")
    assert abs(page.evaluate("document.getElementById('video').currentTime") - duration / 2) < 0.5
    assert page.evaluate("document.getElementById('video').readyState") >= 2
