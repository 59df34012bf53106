#!/usr/bin/env python3
"""Record the WebM/Matroska test fixtures with headless Chromium's MediaRecorder.

Usage:
    python record_fixtures.py OUTDIR

Needs Python Playwright (from PyPI) and the system `chromium` on PATH. It never
downloads a browser: it launches `chromium` with the fake camera/microphone
(`--use-fake-device-for-media-stream`), which is 640x480 with a moving picture,
scaled here by getUserMedia to 320x240 at 20 fps.

The page is served from a throwaway directory by a local http.server on
127.0.0.1 (a secure context, so getUserMedia works). Each fixture is recorded
with MediaRecorder(stream, {mimeType, videoBitsPerSecond: 150000,
audioBitsPerSecond: 32000, videoKeyFrameIntervalDuration: 1000}) and
`start(100)` (100 ms timeslice), so there is a video keyframe about every
second and a new Cluster about every 100 ms.

For every fixture NAME it writes:
    NAME                 the recorded bytes (concatenation of all blobs)
    NAME.chunks.json     {"mimeType": <recorder.mimeType>,
                          "requestedMimeType": <what was asked for>,
                          "chunks": [byte length of each ondataavailable blob, in order]}
so tests can replay the browser's real chunking (chunk boundaries fall inside
EBML elements). It also prints MediaRecorder / MediaSource isTypeSupported
answers for the codec strings the relay cares about.
"""

import base64
import functools
import http.server
import json
import os
import shutil
import sys
import tempfile
import threading

from playwright.sync_api import sync_playwright

FIXTURES = [
    # (file name, requested mimeType candidates, audio?, duration ms)
    ("vp8-opus.webm", ["video/webm;codecs=vp8,opus"], True, 3500),
    ("vp9.webm", ["video/webm;codecs=vp9,opus"], True, 3500),
    ("av1.webm", ["video/webm;codecs=av1,opus", "video/webm;codecs=av01,opus",
                  "video/webm;codecs=av01.0.04M.08,opus"], True, 3500),
    ("vp8-video-only.webm", ["video/webm;codecs=vp8"], False, 3500),
    # Chromium records H.264-in-WebM as video/x-matroska, which MSE refuses.
    ("h264.mkv", ["video/webm;codecs=h264", "video/webm;codecs=avc1"], True, 1000),
]

PROBE_TYPES = [
    'video/webm; codecs="vp8,opus"',
    'video/webm; codecs="vp9,opus"',
    'video/webm; codecs="av1,opus"',
    'video/webm; codecs="av01.0.04M.08,opus"',
    'video/webm; codecs="vp8"',
    'video/x-matroska; codecs="avc1.42E01E,opus"',
    'video/x-matroska',
]

PAGE = """<!doctype html><meta charset=utf-8><title>rec</title><body>
<script>
function b64(buf) {
  const bytes = new Uint8Array(buf);
  let s = '';
  for (let i = 0; i < bytes.length; i += 0x8000)
    s += String.fromCharCode.apply(null, bytes.subarray(i, i + 0x8000));
  return btoa(s);
}
async function record(candidates, audio, ms) {
  const mimeType = candidates.find(t => MediaRecorder.isTypeSupported(t));
  if (!mimeType) return {error: 'none supported: ' + candidates.join(' | ')};
  const stream = await navigator.mediaDevices.getUserMedia({
    video: {width: 320, height: 240, frameRate: 20}, audio: audio});
  const rec = new MediaRecorder(stream, {
    mimeType, videoBitsPerSecond: 150000, audioBitsPerSecond: 32000,
    videoKeyFrameIntervalDuration: 1000});
  const blobs = [];
  rec.ondataavailable = e => { if (e.data.size > 0) blobs.push(e.data); };
  const stopped = new Promise(r => rec.onstop = r);
  rec.start(100);
  await new Promise(r => setTimeout(r, ms));
  rec.stop();
  await stopped;
  stream.getTracks().forEach(t => t.stop());
  const chunks = [];
  for (const b of blobs) chunks.push(b64(await b.arrayBuffer()));
  return {requested: mimeType, mimeType: rec.mimeType, chunks};
}
</script>"""


def serve(directory):
    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass
    handler = functools.partial(Quiet, directory=directory)
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    return httpd


def main():
    if len(sys.argv) != 2:
        sys.exit(__doc__)
    outdir = sys.argv[1]
    os.makedirs(outdir, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix="kvb-rec-")
    with open(os.path.join(tmp, "index.html"), "w") as f:
        f.write(PAGE)
    httpd = serve(tmp)
    url = "http://127.0.0.1:%d/index.html" % httpd.server_address[1]
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(
                executable_path=shutil.which("chromium"),
                args=["--no-sandbox", "--use-fake-device-for-media-stream",
                      "--use-fake-ui-for-media-stream",
                      "--autoplay-policy=no-user-gesture-required"])
            page = browser.new_page()
            page.goto(url)
            probe = page.evaluate("""types => types.map(t => ({type: t,
                mse: MediaSource.isTypeSupported(t),
                recorder: MediaRecorder.isTypeSupported(t.replace(/"/g, '').replace(/ /g, ''))}))""",
                                  PROBE_TYPES)
            print("isTypeSupported (MediaSource / MediaRecorder):")
            for p in probe:
                print("  %-45s mse=%-5s recorder=%s" % (p["type"], p["mse"], p["recorder"]))
            for name, candidates, audio, ms in FIXTURES:
                res = page.evaluate("([c, a, ms]) => record(c, a, ms)", [candidates, audio, ms])
                if "error" in res:
                    print("%s: SKIPPED (%s)" % (name, res["error"]))
                    continue
                chunks = [base64.b64decode(c) for c in res["chunks"]]
                data = b"".join(chunks)
                with open(os.path.join(outdir, name), "wb") as f:
                    f.write(data)
                with open(os.path.join(outdir, name + ".chunks.json"), "w") as f:
                    json.dump({"mimeType": res["mimeType"],
                               "requestedMimeType": res["requested"],
                               "chunks": [len(c) for c in chunks]}, f, indent=1)
                    f.write("\n")
                print("%s: %d bytes, %d chunks, first chunk %d, mimeType %s"
                      % (name, len(data), len(chunks), len(chunks[0]), res["mimeType"]))
            browser.close()
    finally:
        httpd.shutdown()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
