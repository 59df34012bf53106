// Glass-to-glass delay, measured on every frame the <video> displays: the clock test pattern in
// the picture says when the frame was drawn at the broadcaster, the frame callback says when it
// is shown here. Both are wall clocks, so the figure is exact on one machine and as good as the
// two clocks' agreement (NTP: a few ms) across machines; when the answer is impossible (the
// frame "shown before it was drawn", or minutes late) the meter says the clocks differ.

import { ClockReader } from './clock-pattern.js';

const WINDOW = 300;          // samples the current p50/p95 are taken over (~10 s at 30 fps)
const LOG_LIMIT = 20000;     // samples kept for a test or benchmark to collect
const REPORT_LIMIT = 64;     // samples sent to the relay per stats message
const NO_PATTERN_FRAMES = 60; // this many frames without a readable pattern: there is none
const RECHECK_EVERY = 30;    // once there is none, look again every this many frames
const EARLIEST_MS = -50;     // shown this much "before drawn": the clocks differ
const LATEST_MS = 60000;     // or this late

/** Percentile `p` (0…1) of a sorted array, null when empty. */
export function percentile(sorted, p) {
  if (!sorted.length) return null;
  return sorted[Math.min(sorted.length - 1, Math.floor((sorted.length - 1) * p))];
}

export class GlassMeter {
  constructor(video) {
    this.video = video;
    this.reader = null;
    // unknown (no frame yet), measuring, no-pattern, clocks-differ, unsupported
    this.status = 'unknown';
    this.current = null;       // ms, the latest frame
    this.p50 = null;
    this.p95 = null;
    this.recent = [];          // the last WINDOW samples, ms
    this.pending = [];         // samples not yet reported to the relay
    this.log = [];             // [shown at (wall ms), glass ms] for tests and benchmarks
    this.frames = 0;           // frames displayed since start
    this.unread = 0;           // consecutive frames without a readable pattern
    this.lastShownAt = null;   // wall ms of the previous displayed frame
    this.longestGapMs = 0;     // longest time between displayed frames since the first
    this.gaps = [];            // [shown at, gap ms] for gaps over a second
    this.running = false;
  }

  start() {
    if (this.running) return;
    if (!('requestVideoFrameCallback' in HTMLVideoElement.prototype)) {
      this.status = 'unsupported';
      return;
    }
    this.running = true;
    this.reader = this.reader || new ClockReader();
    const onFrame = (_now, meta) => {
      if (!this.running) return;
      this._frame(meta);
      this.video.requestVideoFrameCallback(onFrame);
    };
    this.video.requestVideoFrameCallback(onFrame);
  }

  stop() { this.running = false; }

  /** Forget the samples (a test starts its window here). */
  clear() {
    this.log = [];
    this.gaps = [];
    this.longestGapMs = 0;
    this.recent = [];
  }

  /** Samples since the last call, for the relay; at most REPORT_LIMIT, the newest. */
  takeReport() {
    const out = this.pending.slice(-REPORT_LIMIT);
    this.pending = [];
    return out;
  }

  /** Words for people: what the figure is, or why there is none. */
  describe() {
    switch (this.status) {
      case 'measuring': return null;
      case 'no-pattern': return 'no clock pattern in this stream (broadcast with source=clock to measure it)';
      case 'clocks-differ': return "the broadcaster's clock and this one differ: cannot measure";
      case 'unsupported': return 'this browser cannot report displayed frames';
      default: return 'waiting for the first frame';
    }
  }

  _frame(meta) {
    const shownAt = performance.timeOrigin + (meta.expectedDisplayTime || performance.now());
    this.frames += 1;
    if (this.lastShownAt != null) {
      const gap = shownAt - this.lastShownAt;
      if (gap > this.longestGapMs) this.longestGapMs = gap;
      if (gap > 1000) this.gaps.push([Math.round(shownAt), Math.round(gap)]);
      if (this.gaps.length > 100) this.gaps.shift();
    }
    this.lastShownAt = shownAt;
    if (this.status === 'no-pattern' && this.frames % RECHECK_EVERY !== 0) return;
    let drawnAt = null;
    try {
      drawnAt = this.reader.read(this.video, Date.now());
    } catch {
      drawnAt = null; // a frame the canvas cannot take (tainted, gone): counts as unreadable
    }
    if (drawnAt == null) {
      this.unread += 1;
      if (this.unread >= NO_PATTERN_FRAMES) {
        this.status = 'no-pattern';
        this.current = null;
      }
      return;
    }
    this.unread = 0;
    const glass = shownAt - drawnAt;
    if (glass < EARLIEST_MS || glass > LATEST_MS) {
      this.status = 'clocks-differ';
      this.current = null;
      return;
    }
    this.status = 'measuring';
    const ms = Math.max(0, Math.round(glass));
    this.current = ms;
    this.recent.push(ms);
    if (this.recent.length > WINDOW) this.recent.shift();
    this.pending.push(ms);
    if (this.pending.length > REPORT_LIMIT * 4) this.pending.shift();
    this.log.push([Math.round(shownAt), ms]);
    if (this.log.length > LOG_LIMIT) this.log.shift();
    if (this.frames % 10 === 0 || this.p50 == null) {
      const sorted = this.recent.slice().sort((a, b) => a - b);
      this.p50 = percentile(sorted, 0.5);
      this.p95 = percentile(sorted, 0.95);
    }
  }
}
