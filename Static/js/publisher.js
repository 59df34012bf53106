// Publisher: camera (or the clock test pattern) -> MediaRecorder (WebM) -> WebSocket
// /ws/publish/TOPIC.
//
// Every WebSocket is one relay session, and a session must begin with the EBML header, so each
// connection gets its own MediaRecorder, started when the socket opens and stopped when it closes.

import { clockStream } from './clock-pattern.js';
import { Backoff, describeClose, parseMessage, topicProblem, wsUrl } from './util.js';

const TIMESLICE_MS = 50;
const KEYFRAME_INTERVAL_MS = 1000;
const CLOCK_FPS = 30;
const MAX_BUFFERED_BYTES = 8 * 1024 * 1024; // relay not reading: start over rather than grow
const STABLE_MS = 5000;                      // a connection this old resets the backoff
// The relay refuses these for good: retrying would be refused the same way.
const NO_RETRY = new Set([4001, 4003, 4400, 4409, 4413, 4415, 4422]);

/** Best WebM type this browser records; never Matroska (MSE cannot play it). */
export function pickMimeType(withAudio = true) {
  if (typeof MediaRecorder === 'undefined') return null;
  const candidates = ['vp8', 'vp9', 'av1']
    .map((c) => (withAudio ? `video/webm;codecs=${c},opus` : `video/webm;codecs=${c}`));
  candidates.push('video/webm');
  return candidates.find((t) => MediaRecorder.isTypeSupported(t)) || null;
}

export class Publisher extends EventTarget {
  /**
   * `source`: `camera` (getUserMedia) or `clock` (the clock test pattern, no camera needed;
   * players read the time back from the picture and measure glass-to-glass delay).
   */
  constructor({ topic, video, key = null, source = 'camera' }) {
    super();
    this.topic = topic;
    this.source = source === 'clock' ? 'clock' : 'camera';
    this.stopSource = null;     // ends the clock pattern's timer
    this.key = key;             // publish key, sent in the hello message (never in the URL)
    this.video = video;
    this.state = 'idle';        // idle starting connecting live reconnecting stopping stopped kicked error
    this.bytesSent = 0;
    this.chunksSent = 0;
    this.lastError = null;
    this.lastClose = null;
    this.mimeType = null;
    this.audio = false;
    this.stats = null;          // last `stats` message from the relay
    this.session = null;        // from `ready`
    this.relay = null;
    this.reconnects = 0;
    this.recorderStartedAt = null; // wall clock (ms) of media time 0 of the current session
    this.stream = null;
    this.conn = null;           // { ws, recorder, chain, openedAt }
    this.backoff = new Backoff(500, 10000);
    this.retryTimer = null;
    this.wantRunning = false;
  }

  snapshot() {
    const { state, bytesSent, chunksSent, lastError, lastClose, mimeType, audio, stats, session,
      relay, reconnects, recorderStartedAt } = this;
    return { state, bytesSent, chunksSent, lastError, lastClose, mimeType, audio, stats, session,
      relay, reconnects, recorderStartedAt };
  }

  async start() {
    if (this.wantRunning) return;
    const problem = topicProblem(this.topic);
    if (problem) return this._fail(problem);
    this.wantRunning = true;
    this.lastError = null;
    this.forbidden = false;
    this._setState('starting');
    try {
      if (!this.stream) this.stream = await this._capture();
    } catch (e) {
      this.wantRunning = false;
      return this._fail(`${this.source} unavailable: ${e.name}: ${e.message}`);
    }
    if (!this.wantRunning) return; // stopped while the permission prompt was up
    this.audio = this.stream.getAudioTracks().length > 0;
    this.mimeType = pickMimeType(this.audio);
    if (!this.mimeType) {
      this.wantRunning = false;
      return this._fail('this browser cannot record WebM');
    }
    this.video.srcObject = this.stream;
    this.video.muted = true;
    this.video.play().catch(() => {});
    this.backoff.reset();
    this._connect();
  }

  stop() {
    this.wantRunning = false;
    clearTimeout(this.retryTimer);
    const conn = this.conn;
    if (conn) {
      this._setState('stopping');
      // Let the recorder flush its last chunk, send it, then close normally.
      const close = () => conn.chain.then(() => conn.ws.close(1000, 'publisher stopped'));
      if (conn.recorder && conn.recorder.state !== 'inactive') {
        conn.recorder.addEventListener('stop', close, { once: true });
        conn.recorder.stop();
      } else {
        close();
      }
    } else {
      this._setState('stopped');
    }
    this._releaseSource();
  }

  _releaseSource() {
    if (this.stopSource) this.stopSource();
    this.stopSource = null;
    if (this.stream) {
      for (const t of this.stream.getTracks()) t.stop();
      this.stream = null;
      this.video.srcObject = null;
    }
  }

  async _capture() {
    if (this.source === 'clock') {
      const clock = clockStream(CLOCK_FPS, `kvb clock · ${this.topic}`);
      this.stopSource = clock.stop;
      return clock.stream;
    }
    const md = navigator.mediaDevices;
    if (!md || !md.getUserMedia) throw new Error('getUserMedia is not available (needs https or localhost)');
    try {
      return await md.getUserMedia({ video: true, audio: true });
    } catch (e) {
      this._note(`no audio (${e.name}), sending video only`);
      return md.getUserMedia({ video: true, audio: false });
    }
  }

  _connect() {
    const ws = new WebSocket(wsUrl(`/ws/publish/${encodeURIComponent(this.topic)}`));
    ws.binaryType = 'arraybuffer';
    const conn = { ws, recorder: null, chain: Promise.resolve(), openedAt: 0 };
    this.conn = conn;
    this._setState(this.reconnects > 0 ? 'reconnecting' : 'connecting');

    ws.onopen = () => {
      if (this.conn !== conn) return;
      conn.openedAt = performance.now();
      const hello = { type: 'hello', mimeType: this.mimeType };
      if (this.key) hello.key = this.key;
      ws.send(JSON.stringify(hello));
      this._startRecorder(conn);
    };
    ws.onmessage = (ev) => {
      if (this.conn !== conn || typeof ev.data !== 'string') return;
      const m = parseMessage(ev.data);
      if (m) this._onMessage(m);
    };
    ws.onerror = () => {}; // a close event always follows with the details
    ws.onclose = (ev) => this._onClose(conn, ev);
  }

  _startRecorder(conn) {
    let recorder;
    try {
      recorder = new MediaRecorder(this.stream, {
        mimeType: this.mimeType,
        videoKeyFrameIntervalDuration: KEYFRAME_INTERVAL_MS,
      });
    } catch (e) {
      this.wantRunning = false;
      conn.ws.close(1000, 'recorder failed');
      return this._fail(`MediaRecorder failed: ${e.name}: ${e.message}`);
    }
    conn.recorder = recorder;
    recorder.ondataavailable = (ev) => {
      if (!ev.data || ev.data.size === 0) return;
      // blob.arrayBuffer() is async and may resolve out of order: start reading now, but send
      // through a promise chain so the chunks leave in the order the recorder produced them.
      const reading = ev.data.arrayBuffer();
      conn.chain = conn.chain
        .then(() => reading)
        .then((buf) => this._send(conn, buf))
        .catch((e) => {
          // A lost chunk would corrupt the stream: start a fresh session instead.
          this._note(`could not read a recorded chunk: ${e.message}`);
          if (conn.ws.readyState === WebSocket.OPEN) conn.ws.close(3000, 'chunk lost');
        });
    };
    recorder.onerror = (ev) => {
      this._note(`recorder error: ${ev.error ? ev.error.message : 'unknown'}`);
      if (conn.ws.readyState === WebSocket.OPEN) conn.ws.close(3000, 'recorder error');
    };
    this.recorderStartedAt = Date.now();
    recorder.start(TIMESLICE_MS);
  }

  _send(conn, buf) {
    const ws = conn.ws;
    if (ws.readyState !== WebSocket.OPEN) return;
    if (ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this._note('relay is not keeping up; starting a new session');
      ws.close(3000, 'send buffer full');
      return;
    }
    ws.send(buf);
    this.bytesSent += buf.byteLength;
    this.chunksSent += 1;
  }

  _onMessage(m) {
    switch (m.type) {
      case 'ready':
        this.session = m.session || null;
        this.relay = m.relay || null;
        this.lastError = null;
        this._setState('live');
        break;
      case 'stats':
        this.stats = m;
        if (this.state === 'connecting' || this.state === 'reconnecting') this._setState('live');
        this._changed();
        break;
      case 'error':
        this.lastError = m.message || 'relay error';
        this._changed();
        break;
      default:
        break; // unknown messages are ignored (protocol: clients may ignore them)
    }
  }

  _onClose(conn, ev) {
    if (conn.recorder && conn.recorder.state !== 'inactive') {
      conn.recorder.ondataavailable = null;
      conn.recorder.stop();
    }
    if (this.conn !== conn) return;
    this.conn = null;
    this.lastClose = { code: ev.code, reason: ev.reason };
    const what = describeClose(ev.code, ev.reason);
    if (!this.wantRunning) {
      if (this.state !== 'error') this._setState('stopped');
      return;
    }
    if (NO_RETRY.has(ev.code)) {
      this.wantRunning = false;
      this.lastError = `relay closed the connection: ${what}`;
      this._releaseSource();
      if (ev.code === 4003) this.forbidden = true;
      this._setState(ev.code === 4001 ? 'kicked' : 'error');
      return;
    }
    if (conn.openedAt && performance.now() - conn.openedAt > STABLE_MS) this.backoff.reset();
    const delay = this.backoff.next();
    this.reconnects += 1;
    this.lastError = `connection closed (${what}); retrying in ${(delay / 1000).toFixed(1)} s`;
    this._setState('reconnecting');
    this.retryTimer = setTimeout(() => {
      if (this.wantRunning) this._connect();
    }, delay);
  }

  _fail(message) {
    this.lastError = message;
    this._setState('error');
  }

  _note(message) {
    this.dispatchEvent(new CustomEvent('note', { detail: message }));
  }

  _setState(s) {
    this.state = s;
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }
}
