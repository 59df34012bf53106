// Small helpers shared by the kvb pages. No dependencies, no build step.

/** The `topic` query parameter, or `fallback` when absent. */
export function topicFromQuery(fallback = '') {
  const t = new URLSearchParams(location.search).get('topic');
  return t === null || t === '' ? fallback : t;
}

/** Same rule as the relay (docs/PROTOCOL.md "Topic names"): returns a reason, or null if fine. */
export function topicProblem(name) {
  if (!name) return 'no topic given';
  if (name.length > 249) return 'topic name longer than 249 characters';
  if (!/^[A-Za-z0-9._-]+$/.test(name)) return 'topic name may only use A-Z a-z 0-9 . _ -';
  if (name === '.' || name === '..') return 'topic name may not be "." or ".."';
  if (name.startsWith('__')) return 'topic names starting with "__" are Kafka-internal';
  if (name.startsWith('kvb.')) return 'topic names starting with "kvb." are reserved';
  return null;
}

/** ws:// or wss:// URL for a path on the server this page came from. */
export function wsUrl(path) {
  const proto = location.protocol === 'https:' ? 'wss:' : 'ws:';
  return `${proto}//${location.host}${path}`;
}

/** Exponential backoff with a little jitter. */
export class Backoff {
  constructor(minMs = 500, maxMs = 10000) {
    this.minMs = minMs;
    this.maxMs = maxMs;
    this.attempt = 0;
  }
  next() {
    const base = Math.min(this.maxMs, this.minMs * 2 ** this.attempt);
    this.attempt += 1;
    return Math.round(base * (0.8 + 0.4 * Math.random()));
  }
  reset() { this.attempt = 0; }
}

/** Close codes from docs/PROTOCOL.md, in words. */
export const CLOSE_MEANING = {
  1000: 'normal close',
  1001: 'relay shutting down',
  1006: 'connection lost',
  1009: 'frame too large',
  1011: 'relay internal error',
  4001: 'removed by the operator',
  4003: 'not allowed',
  4400: 'bad request',
  4408: 'timed out',
  4409: 'topic already has a publisher',
  4413: 'too large',
  4415: 'not playable WebM',
  4422: 'broken WebM structure',
  4429: 'too many or too fast',
  4503: 'relay or Kafka unavailable',
};

export function describeClose(code, reason) {
  const meaning = CLOSE_MEANING[code] || 'closed';
  return `${code} ${meaning}${reason ? `: ${reason}` : ''}`;
}

export function formatBytes(n) {
  if (n == null) return '–';
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

/** A length of time for people: "42 s", "3 min 05 s", "2 h 07 min". */
export function formatDuration(ms) {
  const s = Math.round(ms / 1000);
  if (s < 60) return `${s} s`;
  if (s < 3600) return `${Math.floor(s / 60)} min ${String(s % 60).padStart(2, '0')} s`;
  return `${Math.floor(s / 3600)} h ${String(Math.floor((s % 3600) / 60)).padStart(2, '0')} min`;
}

/** What became of a recorded session (an entry of /api/topics/T/sessions or /api/recordings). */
export function describeSession(session) {
  // No end marker: still streaming if its latest chunk is recent, else its relay went away.
  if (!session.ended) return Date.now() - session.endedAtMilliseconds < 10000 ? 'live now' : 'interrupted (no end)';
  return session.complete ? 'ended' : 'ended; its beginning has left retention';
}

/** The file of a recorded session of `topic`. */
export function recordingUrl(topic, session, token) {
  const query = new URLSearchParams({ session: session.id });
  if (token) query.set('token', token);
  return `/api/topics/${encodeURIComponent(topic)}/recording.webm?${query}`;
}

export function formatSeconds(s) {
  return s == null || !Number.isFinite(s) ? '–' : `${s.toFixed(2)} s`;
}

/** Parse a JSON text frame; null if it is not an object with a string `type`. */
export function parseMessage(text) {
  try {
    const m = JSON.parse(text);
    return m && typeof m.type === 'string' ? m : null;
  } catch {
    return null;
  }
}

/** Append a timestamped line to a <ol>/<ul>/<div> log element, keeping the last `keep` lines. */
export function logLine(el, text, keep = 50) {
  if (!el) return;
  const li = document.createElement('li');
  li.textContent = `${new Date().toLocaleTimeString()}  ${text}`;
  el.prepend(li);
  while (el.children.length > keep) el.lastElementChild.remove();
}

/** Fill a <dl> with label/value pairs (re-using its elements). */
export function renderFields(dl, pairs) {
  if (!dl) return;
  if (dl.children.length !== pairs.length * 2) {
    dl.replaceChildren(...pairs.flatMap(([label]) => {
      const dt = document.createElement('dt');
      dt.textContent = label;
      return [dt, document.createElement('dd')];
    }));
  }
  pairs.forEach(([, value], i) => {
    const dd = dl.children[i * 2 + 1];
    const text = value == null || value === '' ? '–' : String(value);
    if (dd.textContent !== text) dd.textContent = text;
  });
}

/** Show a state word in an element, styled by `data-state`. */
export function renderState(el, state, message) {
  if (!el) return;
  el.dataset.state = state;
  const text = message ? `${state} · ${message}` : state;
  if (el.textContent !== text) el.textContent = text;
}
