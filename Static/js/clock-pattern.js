// The clock test pattern: the wall-clock time of each frame, drawn into the picture as black and
// white blocks a player can read back from the frame it displays, beside a clock people can read.
//
// Layout (in a 640×360 picture; a reader scales whatever it gets to that size first):
//   a white card at (PAD, PAD) holding COLUMNS × ROWS blocks of BLOCK px, row by row, most
//   significant bit first, black = 1. The first TIME_BITS bits are the time in milliseconds since
//   the Unix epoch modulo 2^TIME_BITS (about 35 years); the last 8 are a CRC-8 (polynomial 0x07)
//   of those 40 bits, so a smeared or half-decoded frame is rejected instead of misread.
//
// Pure functions apart from the canvas calls; the broadcast page draws, the player reads.

export const WIDTH = 640;
export const HEIGHT = 360;
const BLOCK = 24;
const COLUMNS = 12;
const ROWS = 4;
const PAD = 16;
const TIME_BITS = 40;
const CHECK_BITS = 8;
const TIME_MODULO = 2 ** TIME_BITS;

/** The pattern's bits for `ms`: 40 bits of time, then the CRC-8 of those 5 bytes. */
export function encodeBits(ms) {
  const time = ((Math.floor(ms) % TIME_MODULO) + TIME_MODULO) % TIME_MODULO;
  const bytes = timeBytes(time);
  const check = crc8(bytes);
  const bits = [];
  for (const byte of [...bytes, check]) {
    for (let i = 7; i >= 0; i--) bits.push((byte >> i) & 1);
  }
  return bits;
}

/** The time the bits carry, or null when the check code does not match. */
export function decodeBits(bits) {
  if (bits.length !== TIME_BITS + CHECK_BITS) return null;
  const bytes = [];
  for (let b = 0; b < bits.length / 8; b++) {
    let byte = 0;
    for (let i = 0; i < 8; i++) byte = (byte << 1) | (bits[b * 8 + i] ? 1 : 0);
    bytes.push(byte);
  }
  const check = bytes.pop();
  if (crc8(bytes) !== check) return null;
  let time = 0;
  for (const byte of bytes) time = time * 256 + byte;
  return time;
}

/** The full wall-clock time (ms) a 40-bit pattern time stands for, nearest to `nowMs`. */
export function unwrapTime(patternMs, nowMs) {
  const base = nowMs - (((nowMs % TIME_MODULO) + TIME_MODULO) % TIME_MODULO);
  let best = base + patternMs;
  for (const candidate of [best - TIME_MODULO, best + TIME_MODULO]) {
    if (Math.abs(candidate - nowMs) < Math.abs(best - nowMs)) best = candidate;
  }
  return best;
}

function timeBytes(time) {
  const bytes = [];
  let rest = time;
  for (let i = 0; i < TIME_BITS / 8; i++) {
    bytes.unshift(rest % 256);
    rest = Math.floor(rest / 256);
  }
  return bytes;
}

function crc8(bytes) {
  let crc = 0;
  for (const byte of bytes) {
    crc ^= byte;
    for (let i = 0; i < 8; i++) crc = crc & 0x80 ? ((crc << 1) ^ 0x07) & 0xff : (crc << 1) & 0xff;
  }
  return crc;
}

const two = (n) => String(n).padStart(2, '0');

/** Draws one frame of the pattern for wall-clock time `ms` into a WIDTH×HEIGHT 2D context. */
export function drawClock(ctx, ms, label = '') {
  ctx.fillStyle = '#203040';
  ctx.fillRect(0, 0, WIDTH, HEIGHT);
  // The blocks, on a white card with a quiet margin.
  ctx.fillStyle = '#ffffff';
  ctx.fillRect(PAD - 8, PAD - 8, COLUMNS * BLOCK + 16, ROWS * BLOCK + 16);
  ctx.fillStyle = '#000000';
  encodeBits(ms).forEach((bit, i) => {
    if (bit) ctx.fillRect(PAD + (i % COLUMNS) * BLOCK, PAD + Math.floor(i / COLUMNS) * BLOCK, BLOCK, BLOCK);
  });
  // The clock for people, in local time with milliseconds.
  const d = new Date(ms);
  ctx.fillStyle = '#ffffff';
  ctx.font = 'bold 56px monospace';
  ctx.textBaseline = 'alphabetic';
  ctx.fillText(`${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}.${String(d.getMilliseconds()).padStart(3, '0')}`, PAD, 220);
  ctx.font = '20px sans-serif';
  ctx.fillText(label || 'kvb clock test pattern', PAD, 260);
  // A sweep that goes round once a second, so motion is visible at a glance.
  const angle = ((ms % 1000) / 1000) * 2 * Math.PI - Math.PI / 2;
  const cx = WIDTH - 90;
  const cy = 80;
  ctx.strokeStyle = '#ffffff';
  ctx.lineWidth = 4;
  ctx.beginPath();
  ctx.arc(cx, cy, 56, 0, 2 * Math.PI);
  ctx.stroke();
  ctx.beginPath();
  ctx.moveTo(cx, cy);
  ctx.lineTo(cx + 50 * Math.cos(angle), cy + 50 * Math.sin(angle));
  ctx.stroke();
  // A bar that runs along the bottom once every 10 seconds.
  ctx.fillStyle = '#e0a030';
  ctx.fillRect(0, HEIGHT - 12, ((ms % 10000) / 10000) * WIDTH, 12);
}

/**
 * Reads the pattern from RGBA pixels of a WIDTH×HEIGHT picture (ImageData.data of the region
 * (0, 0)…(readWidth, readHeight), where the pattern lies). Returns the 40-bit time or null.
 */
export function readClock(data, readWidth) {
  const bits = [];
  for (let i = 0; i < TIME_BITS + CHECK_BITS; i++) {
    const x0 = PAD + (i % COLUMNS) * BLOCK + BLOCK / 4;
    const y0 = PAD + Math.floor(i / COLUMNS) * BLOCK + BLOCK / 4;
    let sum = 0;
    let n = 0;
    for (let y = y0; y < y0 + BLOCK / 2; y += 2) {
      for (let x = x0; x < x0 + BLOCK / 2; x += 2) {
        const p = (y * readWidth + x) * 4;
        sum += data[p] + data[p + 1] + data[p + 2];
        n += 1;
      }
    }
    bits.push(sum / (3 * n) < 128 ? 1 : 0);
  }
  return decodeBits(bits);
}

/** The region of the picture `readClock` needs. */
export const READ_WIDTH = PAD + COLUMNS * BLOCK;
export const READ_HEIGHT = PAD + ROWS * BLOCK;

/**
 * A MediaStream of the pattern, redrawn `fps` times a second, plus its stop function. A hidden
 * tab's timers run about once a second, so keep the broadcasting tab visible.
 */
export function clockStream(fps = 30, label = '') {
  const canvas = document.createElement('canvas');
  canvas.width = WIDTH;
  canvas.height = HEIGHT;
  const ctx = canvas.getContext('2d');
  drawClock(ctx, Date.now(), label);
  const stream = canvas.captureStream(fps);
  const timer = setInterval(() => drawClock(ctx, Date.now(), label), 1000 / fps);
  const stop = () => {
    clearInterval(timer);
    for (const t of stream.getTracks()) t.stop();
  };
  return { stream, stop, canvas };
}

/** Reads the pattern from frames a <video> displays, one canvas reused. */
export class ClockReader {
  constructor() {
    this.canvas = document.createElement('canvas');
    this.canvas.width = READ_WIDTH;
    this.canvas.height = READ_HEIGHT;
    this.ctx = this.canvas.getContext('2d', { willReadFrequently: true });
  }

  /** The wall-clock time (ms) drawn into the frame `video` shows now, or null. */
  read(video, nowMs) {
    if (!video.videoWidth || !video.videoHeight) return null;
    // Scale the whole picture to 640×360 and keep only the pattern's corner.
    this.ctx.drawImage(video, 0, 0, video.videoWidth, video.videoHeight, 0, 0, WIDTH, HEIGHT);
    const pixels = this.ctx.getImageData(0, 0, READ_WIDTH, READ_HEIGHT).data;
    const time = readClock(pixels, READ_WIDTH);
    return time == null ? null : unwrapTime(time, nowMs);
  }
}
