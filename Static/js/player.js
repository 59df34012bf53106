// Player: WebSocket /ws/watch/TOPIC -> Media Source Extensions -> <video>.
//
// The relay sends `reset` (mimeType), then the init segment, then WebM from a keyframe Cluster,
// every binary frame cut at element boundaries. Each reset gets a brand-new MediaSource.
//
// SourceBuffer mode: we use `segments` (the WebM timestamps are kept) rather than `sequence`.
// A late joiner's media then starts at the recorder's clock (say 37 s) while the element sits
// at 0, so the player seeks to the live edge itself - the same jump it needs anyway after a
// `skipped` message (timestamps jump forward) or a stall. In return audio and video keep their
// own timestamps across skips (sequence mode re-stamps muxed tracks and lets them drift),
// buffered ranges map to real stream time, and where the recorder's start time is known (the
// original page publishes and watches in one tab) the glass-to-glass delay can be measured.

import { GlassMeter } from './glass-meter.js';
import { Backoff, describeClose, parseMessage, topicProblem, wsUrl } from './util.js';

// This tab's id for the relay: a kick bans it for a while, even across reloads of the page.
function clientId() {
  let id = sessionStorage.getItem('kvb-client');
  if (!id) {
    id = (crypto.randomUUID ? crypto.randomUUID() : String(Math.random()).slice(2));
    sessionStorage.setItem('kvb-client', id);
  }
  return id;
}

const TICK_MS = 100;
const STATS_MS = 1000;

/**
 * How the player chases the live edge, by latency mode (`watch.html?latency=low|normal`). The
 * player steers the playback rate so that its margin - the least media it held ahead of the
 * playhead over the last second, i.e. just before the next chunk arrived - stays near `margin`:
 * faster when it has more, slower (down to `minRate`) when it runs short, so it neither drifts
 * behind nor runs dry and stalls. Far behind (`jump` s), it jumps.
 *   low     the smallest delay the network allows; a late chunk may freeze the picture briefly
 *   normal  half a second of cushion: rides out jitter on slower links, still live
 */
export const LATENCY_MODES = {
  low: { landing: 0.15, margin: 0.08, deadband: 0.03, gain: 0.8, minRate: 0.95, maxRate: 1.3, jump: 1.5 },
  normal: { landing: 0.6, margin: 0.5, deadband: 0.1, gain: 0.4, minRate: 0.97, maxRate: 1.2, jump: 3.0 },
};
const MARGIN_WINDOW_MS = 1000;
const JOIN_MS = 2000;        // this long after a reset the player is joining...
const JOIN_SLACK = 0.25;     // ...and jumps at once when more than landing + this behind
const KEEP_BEHIND = 10;      // played media kept in the SourceBuffer (s) before trimming...
const TRIM_TO = 5;           // ...down to this much
const STALL_MS = 2000;       // no progress this long while "playing" -> "waiting"
const GAP_STALL_MS = 500;    // stalled this long with media after a hole: jump the hole
const SEEK_STUCK_MS = 1000;  // a seek still pending after this long: seek again
const STUCK_MS = 2500;       // no new frame this long with media ahead: re-seek to the live edge
const MAX_QUEUED_BYTES = 32 * 1024 * 1024;
const STABLE_MS = 5000;
const KICK_BAN_MS = 60000;
const DEFAULT_MIME = 'video/webm; codecs="vp8,opus"';

/** One MediaSource + SourceBuffer, fed strictly in order, one operation at a time. */
class MediaPipe {
  constructor(video, mimeType, hooks) {
    this.video = video;
    this.mimeType = mimeType;
    this.hooks = hooks;           // { onError(message), onNote(message), onAppended() }
    this.queue = [];              // { data } appends and { start, end } removes
    this.queuedBytes = 0;
    this.sb = null;
    this.closed = false;
    this.stale = false;           // its connection is gone; kept only to show the last picture
    this.ending = false;
    this.quotaStrikes = 0;
    this.ms = new MediaSource();
    this.url = URL.createObjectURL(this.ms);
    this.ms.addEventListener('sourceopen', () => this._open(), { once: true });
    video.src = this.url;
  }

  get buffered() {
    try {
      return this.sb ? this.sb.buffered : null;
    } catch {
      return null; // the SourceBuffer was removed from its MediaSource
    }
  }

  get removing() { return this.queue.some((op) => !op.data); }

  append(data) {
    if (this.closed) return;
    this.queue.push({ data });
    this.queuedBytes += data.byteLength;
    this._pump();
  }

  /** Remove [start, end) before the next append (appends keep their order). */
  trim(start, end) {
    if (this.closed || end - start < 0.1 || this.removing) return;
    this.queue.unshift({ start, end });
    this._pump();
  }

  /** The stream ended: let the element play out what it has and reach `ended`. */
  end() {
    this.ending = true;
    this._pump();
  }

  close() {
    this.closed = true;
    this.queue = [];
    this.queuedBytes = 0;
  }

  _open() {
    URL.revokeObjectURL(this.url);
    if (this.closed) return;
    try {
      this.sb = this.ms.addSourceBuffer(this.mimeType);
      this.sb.mode = 'segments';
    } catch (e) {
      this._error(`cannot play ${this.mimeType}: ${e.name}: ${e.message}`);
      return;
    }
    this.sb.addEventListener('updateend', () => {
      if (!this.closed) this.hooks.onAppended();
      this._pump();
    });
    this.sb.addEventListener('error', () => this._error('the browser refused the media (append failed)'));
    this._pump();
  }

  _pump() {
    if (this.closed || !this.sb || this.sb.updating || this.ms.readyState === 'closed') return;
    const op = this.queue.shift();
    if (!op) {
      if (this.ending && this.ms.readyState === 'open') {
        try { this.ms.endOfStream(); } catch { /* already ended */ }
      }
      return;
    }
    try {
      if (op.data) {
        this.sb.appendBuffer(op.data);
        this.queuedBytes -= op.data.byteLength;
        this.quotaStrikes = 0;
      } else {
        this.sb.remove(op.start, op.end);
      }
    } catch (e) {
      if (op.data && e.name === 'QuotaExceededError') {
        this.queue.unshift(op);
        this._quotaExceeded();
      } else {
        this._error(`${e.name}: ${e.message}`);
      }
    }
  }

  // The SourceBuffer is full: drop what was already played and try the same append again.
  _quotaExceeded() {
    this.quotaStrikes += 1;
    const b = this.buffered;
    const t = this.video.currentTime;
    if (this.quotaStrikes <= 3 && b && b.length && t - 1 > b.start(0)) {
      this.hooks.onNote(`buffer full: dropping ${(t - 1 - b.start(0)).toFixed(1)} s already played`);
      this.queue.unshift({ start: b.start(0), end: t - 1 });
      this._pump();
    } else {
      this._error('buffer full and nothing left to trim');
    }
  }

  _error(message) {
    if (this.closed) return;
    this.closed = true;
    this.hooks.onError(message);
  }
}

export class Player extends EventTarget {
  /**
   * `latency`: a key of LATENCY_MODES (`low` by default). `measureGlass`: read the clock test
   * pattern from displayed frames (off for previews, where nobody looks at the figure).
   */
  constructor({ topic, video, token = null, latency = 'low', measureGlass = true, from = null, catchUp = false }) {
    super();
    this.topic = topic;
    /** Watching from an earlier time (`-30s`, ISO 8601 or epoch ms; docs/PROTOCOL.md), or live (null). */
    this.from = from;
    /** Watching the past faster than recorded until it reaches the live edge ('caughtup' event). */
    this.catchUp = Boolean(from && catchUp);
    this.latency = LATENCY_MODES[latency] ? latency : 'low';
    this.tuning = LATENCY_MODES[this.latency];
    this.margins = [];            // [at, media ahead of the playhead] over the last second
    this.token = token;         // signed watch token, when the relay requires one
    this.video = video;
    // connecting waiting playing ended paused kicked reconnecting error stopped
    this.state = 'idle';
    this.message = '';            // the state in words, for people
    this.delaySeconds = null;     // newest buffered media - playhead
    this.wallDelaySeconds = null; // capture -> screen, when the recorder's clock is known
    this.resets = 0;
    this.errors = [];
    this.skipped = 0;
    this.jumps = 0;
    this.bytesReceived = 0;
    this.fragments = 0;
    this.mimeType = null;
    this.session = null;
    this.relay = null;
    this.lastClose = null;
    this.reconnects = 0;
    this.clockOrigins = new Map(); // session -> wall clock (ms) of its media time 0
    this.glass = new GlassMeter(video); // glass to glass, when the stream carries the clock pattern
    this.measureGlass = measureGlass;
    this.ws = null;
    this.pipe = null;
    this.running = false;
    this.userPaused = false;
    this.backoff = new Backoff(500, 10000);
    this.retryTimer = null;
    this.lastProgress = { t: -1, at: 0 };
    this.lastFrames = { n: 0, at: 0 };
    this.seekingSince = null;
    this.history = [];             // recent messages and state changes, for diagnostics
    this.t0 = performance.now();
    this._onPause = () => {
      if (this.state === 'playing' && !this.video.ended) {
        this.userPaused = true;
        this._setState('paused', 'paused');
      }
    };
    this._onPlay = () => {
      if (this.userPaused) {
        this.userPaused = false;
        this._setState('waiting', 'back to the live edge');
      }
    };
    this._onVideoError = () => {
      const p = this.pipe;
      const err = this.video.error;
      if (p && !p.closed && err) p._error(`video element error ${err.code}: ${err.message || ''}`);
    };
  }

  /** Further behind the newest media than the latency mode means to be (a "go live" moment). */
  get behind() {
    return this.delaySeconds != null && this.delaySeconds > this.tuning.margin + 1.0;
  }

  /** Frames the browser decoded since the current reset. */
  get framesDecoded() {
    const q = this.video.getVideoPlaybackQuality ? this.video.getVideoPlaybackQuality() : null;
    return q ? q.totalVideoFrames : 0;
  }

  snapshot() {
    const { state, message, delaySeconds, wallDelaySeconds, resets, errors, skipped, jumps,
      bytesReceived, fragments, mimeType, session, relay, lastClose, reconnects } = this;
    return { state, message, delaySeconds, wallDelaySeconds, framesDecoded: this.framesDecoded,
      resets, errors, skipped, jumps, bytesReceived, fragments, mimeType, session, relay,
      lastClose, reconnects, video: this.videoStatus(), history: this.history.slice(),
      glass: this.glassStatus() };
  }

  /** Glass-to-glass figures (ms) and what they mean. */
  glassStatus() {
    const g = this.glass;
    return { status: g.status, current: g.current, p50: g.p50, p95: g.p95, frames: g.frames,
      longestGapMs: Math.round(g.longestGapMs), note: g.describe() };
  }

  /** What the <video> element is doing, for diagnostics. */
  videoStatus() {
    const v = this.video;
    const ranges = [];
    for (let i = 0; i < v.buffered.length; i++) {
      ranges.push([+v.buffered.start(i).toFixed(3), +v.buffered.end(i).toFixed(3)]);
    }
    const q = v.getVideoPlaybackQuality ? v.getVideoPlaybackQuality() : {};
    return { currentTime: +v.currentTime.toFixed(3), paused: v.paused, seeking: v.seeking,
      readyState: v.readyState, playbackRate: v.playbackRate, buffered: ranges,
      dropped: q.droppedVideoFrames, error: v.error ? `${v.error.code} ${v.error.message}` : null,
      queued: this.pipe ? this.pipe.queue.length : null };
  }

  start() {
    if (this.running) return;
    const problem = topicProblem(this.topic);
    if (problem) {
      this._setState('error', problem);
      return;
    }
    this.running = true;
    this.video.addEventListener('pause', this._onPause);
    this.video.addEventListener('play', this._onPlay);
    this.video.addEventListener('error', this._onVideoError);
    if (this.measureGlass) this.glass.start();
    this.tickTimer = setInterval(() => this._tick(), TICK_MS);
    this.statsTimer = setInterval(() => this._sendStats(), STATS_MS);
    this._connect();
  }

  stop() {
    this.running = false;
    this.glass.stop();
    clearTimeout(this.retryTimer);
    clearInterval(this.tickTimer);
    clearInterval(this.statsTimer);
    this.video.removeEventListener('pause', this._onPause);
    this.video.removeEventListener('play', this._onPlay);
    this.video.removeEventListener('error', this._onVideoError);
    if (this.ws) this.ws.close(1000, 'viewer left');
    this.ws = null;
    if (this.pipe) this.pipe.close();
    this.pipe = null;
    this._setState('stopped', 'stopped');
  }

  _connect() {
    const token = this.token ? `&token=${encodeURIComponent(this.token)}` : '';
    const from = this.from ? `&from=${encodeURIComponent(this.from)}${this.catchUp ? '&catchup=1' : ''}` : '';
    const ws = new WebSocket(wsUrl(`/ws/watch/${encodeURIComponent(this.topic)}?client=${encodeURIComponent(clientId())}${token}${from}`));
    ws.binaryType = 'arraybuffer';
    this.ws = ws;
    this.openedAt = 0;
    if (this.reconnects > 0) this._setState('reconnecting', 'reconnecting…');
    else this._setState('connecting', 'connecting…');
    ws.onopen = () => {
      if (this.ws === ws) this.openedAt = performance.now();
    };
    ws.onmessage = (ev) => {
      if (this.ws !== ws) return;
      if (typeof ev.data === 'string') {
        const m = parseMessage(ev.data);
        if (m) this._onMessage(m);
      } else {
        this._onMedia(ev.data);
      }
    };
    ws.onerror = () => {}; // a close event follows
    ws.onclose = (ev) => this._onClose(ws, ev);
  }

  _onMessage(m) {
    this._remember(m.type === 'skipped' ? `skipped ${m.fragments}` : m.type);
    switch (m.type) {
      case 'hello':
        this.relay = m.relay || null;
        this._setState('waiting', 'connected; waiting for the stream');
        break;
      case 'caughtUp':
        // The relay sent everything Kafka holds: the page goes live.
        this._note('caught up with the live edge');
        this.dispatchEvent(new Event('caughtup'));
        break;
      case 'waiting':
        this._setState('waiting', 'waiting for the broadcast to start');
        break;
      case 'reset':
        this._reset(m);
        break;
      case 'skipped':
        this.skipped += Number(m.fragments) || 0;
        this._note(`fell behind: the relay skipped ${m.fragments} fragments to the next keyframe`);
        break;
      case 'ended':
        if (this.pipe) this.pipe.end();
        this._setState('ended', 'the broadcast ended');
        break;
      case 'paused': // the operator paused the topic: nothing arrives until it is resumed
        this._setState('paused', 'stream paused by the operator');
        break;
      case 'resumed':
        this._setState('waiting', 'stream resumed by the operator');
        break;
      case 'switched': // the operator moved this viewer: a reset for the new topic follows
        this.topic = m.topic;
        if (m.token) this.token = m.token; // a watch token for the new topic, when tokens are on
        this.switches = (this.switches || 0) + 1;
        // What is buffered is the old topic's: keep its last picture, but it must not count as
        // playing the new topic before the new topic's reset arrives.
        if (this.pipe) this.pipe.stale = true;
        this._setState('waiting', `moved by the operator to ${m.topic}`);
        this.dispatchEvent(new CustomEvent('topic', { detail: m.topic }));
        break;
      case 'error':
        this._recordError(`relay: ${m.message || 'error'}`);
        break;
      default:
        break;
    }
  }

  _reset(m) {
    this.resets += 1;
    this.session = m.session || null;
    this.mimeType = m.mimeType || DEFAULT_MIME;
    if (this.pipe) this.pipe.close();
    this.pipe = null;
    this.userPaused = false;
    this.video.playbackRate = 1;
    this.margins = [];
    this.joinedAt = performance.now();
    this.lastProgress = { t: -1, at: performance.now() };
    this.lastFrames = { n: 0, at: performance.now() };
    if (!window.MediaSource || !MediaSource.isTypeSupported(this.mimeType)) {
      this._recordError(`this browser cannot play ${this.mimeType}`);
      this._setState('error', `this browser cannot play ${this.mimeType}`);
      return;
    }
    const pipe = new MediaPipe(this.video, this.mimeType, {
      onError: (msg) => {
        if (pipe === this.pipe) this._restart(`media error: ${msg}`);
      },
      onNote: (msg) => this._note(msg),
      // Until the picture runs, act on new media at once rather than at the next tick.
      onAppended: () => {
        if (pipe === this.pipe && this.state === 'waiting') this._tick();
      },
    });
    this.pipe = pipe;
    this._setState('waiting', 'stream starting');
  }

  _onMedia(buf) {
    this.bytesReceived += buf.byteLength;
    this.fragments += 1;
    const p = this.pipe;
    if (!p || p.closed) return; // media before any reset: nothing to attach it to
    p.append(buf);
    if (p.queuedBytes > MAX_QUEUED_BYTES) this._restart('the browser is not keeping up');
  }

  _onClose(ws, ev) {
    if (this.ws !== ws) return;
    this.ws = null;
    this.lastClose = { code: ev.code, reason: ev.reason };
    if (this.pipe) this.pipe.stale = true;
    if (!this.running) return;
    const what = describeClose(ev.code, ev.reason);
    if (ev.code === 4001) {
      this.reconnects += 1;
      this._setState('kicked', `removed by the operator; this page tries again in ${KICK_BAN_MS / 1000} s`);
      this.retryTimer = setTimeout(() => this.running && this._connect(), KICK_BAN_MS);
      return;
    }
    if (ev.code === 4400 || ev.code === 4003) { // refused for good: retrying would be refused again
      this.running = false;
      this._recordError(`relay refused: ${what}`);
      this._setState('error', `relay refused: ${what}`);
      return;
    }
    if (this.openedAt && performance.now() - this.openedAt > STABLE_MS) this.backoff.reset();
    const delay = this.backoff.next();
    this.reconnects += 1;
    const retry = `reconnecting in ${(delay / 1000).toFixed(1)} s`;
    const why = ev.code === 1001 ? 'the relay is restarting'
      : ev.code === 4503 ? 'the relay cannot reach Kafka right now'
        : ev.code === 1006 ? 'the connection to the relay was lost'
          : `the relay closed the connection (${what})`;
    this._setState('reconnecting', `${why}; ${retry}`);
    this.retryTimer = setTimeout(() => this.running && this._connect(), delay);
  }

  // Something broke the media pipeline: start over from a fresh connection (and a fresh reset).
  _restart(reason) {
    this._recordError(reason);
    if (this.pipe) this.pipe.close();
    if (this.ws && this.ws.readyState <= WebSocket.OPEN) this.ws.close(3000, reason.slice(0, 100));
  }

  _tick() {
    const v = this.video;
    const p = this.pipe;
    const b = p && !p.stale ? p.buffered : null;
    if (!b || !b.length) {
      this.delaySeconds = null;
      this.wallDelaySeconds = null;
      this._changed();
      return;
    }
    const last = b.length - 1;
    const start = b.start(last);
    const end = b.end(last);
    const t = v.currentTime;
    const now = performance.now();
    const frames = this.framesDecoded;
    if (frames !== this.lastFrames.n) this.lastFrames = { n: frames, at: now };
    const advancing = t !== this.lastProgress.t && !v.paused;
    if (advancing) this.lastProgress = { t, at: now };
    const liveEdge = Math.max(start, end - this.tuning.landing);
    const seek = (to, why) => {
      this._remember(`${why} ${t.toFixed(2)} -> ${to.toFixed(2)} (buffered ${start.toFixed(2)}-${end.toFixed(2)})`);
      v.currentTime = to;
      this.jumps += 1;
      this.margins = [];
    };
    if (!v.seeking) this.seekingSince = null;
    else if (this.seekingSince == null) this.seekingSince = now;
    const active = !this.userPaused && this.state !== 'paused' && this.state !== 'ended';
    if (active && v.seeking && now - this.seekingSince > SEEK_STUCK_MS) {
      // A seek that does not complete (Chrome can hang on a position at the edge of a hole).
      this.seekingSince = now;
      seek(liveEdge, 'seek again');
    } else if (active && end - t > 0.5 && now - this.lastFrames.at > STUCK_MS) {
      // Media is there but no frame came out for a while (a decoder stuck after a hole):
      // seeking again restarts decoding from a keyframe.
      this.lastFrames = { n: frames, at: now };
      seek(liveEdge, 'unstick');
    } else if (active && !v.seeking) {
      // The range holding the playhead, and where the next one starts (if there is a hole).
      let gapEnd = null;
      let atHole = false;
      for (let i = 0; i < b.length; i++) {
        if (b.start(i) > t + 0.01) {
          gapEnd = b.start(i);
          atHole = i > 0 && t >= b.end(i - 1) - 0.1;
          break;
        }
      }
      // Joining, the relay sends from the latest keyframe, up to a second back, and the browser
      // appends it piece by piece: land on the live edge as it grows (the decoder runs through
      // the frames before it without showing them) rather than play that second and chase it.
      const joining = now - this.joinedAt < JOIN_MS;
      const jumpAt = joining ? this.tuning.landing + JOIN_SLACK : this.tuning.jump;
      if (t < start - 0.05 || t > end + 0.5 || end - t > jumpAt) {
        // Late join (segments mode: the element is at 0, the media at the recorder's clock),
        // a skip forward, or a long stall: go to the live edge.
        seek(liveEdge, 'jump');
      } else if (gapEnd !== null && !v.paused
          && ((atHole && v.readyState < HTMLMediaElement.HAVE_FUTURE_DATA)
            || now - this.lastProgress.at > GAP_STALL_MS)) {
        // At a hole in the media (the recorder dropped camera frames under load; Chrome stops
        // there instead of playing through): hop over it.
        seek(gapEnd + 0.01, 'gap');
      } else if (!v.paused) {
        this._steer(end - t, now);
      }
      if (v.paused && !v.ended) v.play().catch(() => {});
    }
    this.delaySeconds = Math.max(0, end - v.currentTime);
    const origin = this.clockOrigins.get(this.session);
    this.wallDelaySeconds = origin ? (Date.now() - origin) / 1000 - v.currentTime : null;

    // Keep the SourceBuffer small: drop media played long ago.
    const first = b.start(0);
    if (v.currentTime - first > KEEP_BEHIND) p.trim(first, v.currentTime - TRIM_TO);

    // State from what the element actually does.
    if (this.state === 'waiting' && advancing && this.framesDecoded > 0) {
      this.backoff.reset();
      this._setState('playing', 'live');
    } else if (this.state === 'playing' && now - this.lastProgress.at > STALL_MS) {
      this._setState('waiting', 'stalled, waiting for data');
    }
    this._changed();
  }

  // Playback rate from the margin: the least media held ahead of the playhead in the last second.
  _steer(ahead, now) {
    const { margin, deadband, gain, minRate, maxRate } = this.tuning;
    this.margins.push([now, ahead]);
    while (this.margins.length && now - this.margins[0][0] > MARGIN_WINDOW_MS) this.margins.shift();
    const least = Math.min(...this.margins.map(([, a]) => a));
    const error = least - margin;
    let rate = Math.abs(error) <= deadband ? 1 : 1 + (error - Math.sign(error) * deadband) * gain;
    rate = Math.min(maxRate, Math.max(minRate, rate));
    rate = Math.round(rate * 100) / 100;
    if (this.video.playbackRate !== rate) this.video.playbackRate = rate;
  }

  /** Jump to the live edge (the "go live" button). */
  goLive() {
    this.userPaused = false;
    const p = this.pipe;
    const b = p && !p.stale ? p.buffered : null;
    if (b && b.length) {
      const end = b.end(b.length - 1);
      this.video.currentTime = Math.max(b.start(b.length - 1), end - this.tuning.landing);
      this.jumps += 1;
      this._remember('go live');
    }
    this.video.play().catch(() => {});
  }

  _sendStats() {
    const ws = this.ws;
    if (!ws || ws.readyState !== WebSocket.OPEN) return;
    const delay = this.delaySeconds == null ? 0 : Math.round(this.delaySeconds * 1000) / 1000;
    const report = { type: 'stats', delay, state: this.state };
    const glass = this.glass.takeReport();
    if (glass.length) report.glass = glass;
    ws.send(JSON.stringify(report));
  }

  _recordError(message) {
    this.errors.push(message);
    if (this.errors.length > 50) this.errors.shift();
    this._note(message);
  }

  _note(message) {
    this.dispatchEvent(new CustomEvent('note', { detail: message }));
  }

  _remember(what) {
    this.history.push(`${((performance.now() - this.t0) / 1000).toFixed(2)} ${what}`);
    if (this.history.length > 40) this.history.shift();
  }

  _setState(state, message) {
    if (state !== this.state) this._remember(`state ${state}${message ? ` (${message})` : ''}`);
    this.state = state;
    if (message !== undefined) this.message = message;
    this._changed();
  }

  _changed() {
    this.dispatchEvent(new Event('change'));
  }
}
