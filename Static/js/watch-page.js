// watch.html?topic=NAME[&latency=low|normal][&token=…]
import { Player } from './player.js';
import { formatBytes, formatSeconds, logLine, renderFields, renderState, topicFromQuery } from './util.js';

const topic = topicFromQuery();
const $ = (id) => document.getElementById(id);
const params = new URLSearchParams(location.search);

/** "412 ms (p50 380, p95 520)", or why there is no figure (— while the picture stands still). */
function glassText(g, playing) {
  if (!playing) return '—';
  if (g.status !== 'measuring' || g.current == null) return g.note;
  return `${g.current} ms (p50 ${g.p50}, p95 ${g.p95})`;
}

/** What the picture area says in each state; null while the picture plays. */
function overlayText(player) {
  switch (player.state) {
    case 'playing': return null;
    case 'connecting': return 'Connecting to the relay…';
    case 'waiting': return player.message === 'live' ? null : capitalized(player.message || 'waiting for the stream');
    case 'paused': return player.userPaused ? 'Paused. Press “go live” to return to the live picture.'
      : 'Paused by the operator. The picture comes back when the stream is resumed.';
    case 'ended': return 'The broadcast ended. This page starts again when the broadcaster does.';
    default: return capitalized(player.message || player.state);
  }
}

/**
 * The seek bar: what Kafka still holds of the topic, oldest to live (from its sessions). Moving
 * it watches from that moment (`?from=`); the right end is live.
 */
async function seekBar(topic, token, from) {
  const bar = document.getElementById('seek');
  const label = document.getElementById('seek-label');
  if (!bar) return;
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  let sessions = [];
  try {
    const response = await fetch(`/api/topics/${encodeURIComponent(topic)}/sessions${query}`, { cache: 'no-store' });
    if (response.ok) sessions = (await response.json()).sessions || [];
  } catch {
    return;
  }
  if (!sessions.length) return;
  const oldest = sessions[0].startedAtMilliseconds;
  const now = Date.now();
  const back = (ms) => `${Math.round((now - ms) / 1000)} s ago`;
  bar.min = String(oldest);
  bar.max = String(now);
  bar.value = String(from ? Math.max(oldest, now + relative(from)) : now);
  label.textContent = from ? `watching from ${back(Number(bar.value))}` : `live · Kafka holds ${back(oldest).replace(' ago', '')}`;
  bar.hidden = false;
  const choice = document.getElementById('catchup-choice');
  choice.hidden = false;
  document.getElementById('catchup').checked = new URLSearchParams(location.search).get('catchup') === '1';
  bar.addEventListener('input', () => { label.textContent = Number(bar.value) >= now - 1000 ? 'live' : `from ${back(Number(bar.value))}`; });
  bar.addEventListener('change', () => {
    const next = new URLSearchParams(location.search);
    if (Number(bar.value) >= now - 1000) {
      next.delete('from');
      next.delete('catchup');
    } else {
      next.set('from', bar.value);
      if (document.getElementById('catchup').checked) next.set('catchup', '1');
      else next.delete('catchup');
    }
    location.search = next.toString();
  });
}

/** `-30s` → -30000 (ms); anything else (an absolute time) → its offset from now. */
function relative(from) {
  const m = /^-(\d+(?:\.\d+)?)(ms|s|m|h)$/.exec(from);
  if (m) return -Number(m[1]) * { ms: 1, s: 1000, m: 60000, h: 3600000 }[m[2]];
  const at = /^\d+$/.test(from) ? Number(from) : Date.parse(from);
  return Number.isFinite(at) ? at - Date.now() : 0;
}

function capitalized(text) { return text ? text[0].toUpperCase() + text.slice(1) : text; }

if (!topic) {
  $('topic-form').hidden = false;
  $('player-area').hidden = true;
} else {
  $('topic').textContent = topic;
  document.title = `kvb · watch ${topic}`;
  $('broadcast-link').href = `broadcast.html?topic=${encodeURIComponent(topic)}`;
  $('recordings-link').href = `recordings.html?topic=${encodeURIComponent(topic)}`;
  const token = params.get('token');
  const latency = params.get('latency') === 'normal' ? 'normal' : 'low';
  const from = params.get('from') || params.get('at') || null;
  const catchUp = params.get('catchup') === '1';
  const video = $('video');
  const player = new Player({ topic, video, token, latency, from, catchUp });
  window.kvbWatch = player;
  $('latency').value = latency;

  const render = () => {
    // Watching the past, "playing" is not "live": say how far back.
    renderState($('state'), player.state, from && player.state === 'playing'
      ? `from ${from}, ${catchUp ? 'catching up with live' : 'at the pace it was recorded'}` : player.message);
    const stage = $('stage');
    stage.dataset.state = player.userPaused ? 'user-paused' : player.state;
    const text = overlayText(player);
    $('message').hidden = text == null;
    if (text != null && $('message').textContent !== text) $('message').textContent = text;
    // LIVE while the picture runs at the live edge; "go live" when it does not.
    const live = player.state === 'playing' && !player.userPaused && !player.behind;
    const badge = $('live');
    badge.dataset.live = String(live);
    badge.textContent = live ? 'LIVE' : 'go live';
    badge.disabled = live;
    // Only where it means something: not while the operator holds the stream, nor after a kick.
    badge.hidden = !(player.state === 'playing' || (player.state === 'paused' && player.userPaused));
    if (from) {
      // Watching the past: one click goes back to live.
      badge.dataset.live = 'replay';
      badge.textContent = 'back to live';
      badge.disabled = false;
      badge.hidden = false;
      badge.title = `Watching from ${from}; click to watch live`;
    }
    badge.title = live ? 'You are watching the live edge' : 'Jump to the live picture';
    const g = player.glassStatus();
    renderFields($('stats'), [
      ...(from ? [['watching from', `${from}${catchUp ? ', catching up' : ''}`]] : []),
      ['glass to glass', glassText(g, player.state === 'playing' && !player.userPaused)],
      ['buffered ahead', formatSeconds(player.delaySeconds)],
      ['latency mode', player.latency],
      ['frames decoded', player.framesDecoded],
      ['received', `${formatBytes(player.bytesReceived)} in ${player.fragments} fragments`],
      ['type', player.mimeType],
      ['resets · skipped', `${player.resets} · ${player.skipped}`],
      ['relay', player.relay],
      ['reconnects', player.reconnects],
    ]);
    const sound = $('sound');
    const hasAudio = player.mimeType ? /opus|vorbis/.test(player.mimeType) : true;
    sound.disabled = !hasAudio;
    sound.textContent = !hasAudio ? 'no sound' : video.muted ? 'Unmute' : 'Mute';
  };
  player.addEventListener('change', render);
  video.addEventListener('volumechange', render);

  let lastState = null;
  player.addEventListener('change', () => {
    if (player.state !== lastState) {
      lastState = player.state;
      logLine($('log'), `${player.state}: ${player.message}`);
    }
  });
  player.addEventListener('note', (e) => logLine($('log'), e.detail));
  // Switched by the operator: the page now shows (and reconnects to) the new topic.
  player.addEventListener('topic', (e) => {
    const moved = e.detail;
    $('topic').textContent = moved;
    document.title = `kvb · watch ${moved}`;
    $('broadcast-link').href = `broadcast.html?topic=${encodeURIComponent(moved)}`;
    $('recordings-link').href = `recordings.html?topic=${encodeURIComponent(moved)}`;
    const next = new URLSearchParams(location.search);
    next.set('topic', moved);
    if (player.token) next.set('token', player.token);
    history.replaceState(null, '', `?${next}`);
    logLine($('log'), `moved by the operator to ${moved}`);
  });

  // Controls. Browsers start video with sound only after a click: it starts muted.
  const toggleSound = () => {
    video.muted = !video.muted;
    if (!video.muted && video.paused) video.play().catch(() => {});
  };
  const toggleFullscreen = () => {
    if (document.fullscreenElement) document.exitFullscreen().catch(() => {});
    else $('stage').requestFullscreen().catch((e) => logLine($('log'), `fullscreen refused: ${e.message}`));
  };
  const showStats = (shown) => {
    $('stats-overlay').hidden = !shown;
    $('toggle-stats').setAttribute('aria-pressed', String(shown));
    localStorage.setItem('kvb.watch.stats', shown ? 'shown' : 'hidden');
  };
  showStats(localStorage.getItem('kvb.watch.stats') !== 'hidden');
  $('sound').addEventListener('click', toggleSound);
  $('fullscreen').addEventListener('click', toggleFullscreen);
  $('toggle-stats').addEventListener('click', () => showStats($('stats-overlay').hidden));
  const backToLive = () => {
    const next = new URLSearchParams(location.search);
    next.delete('from');
    next.delete('at');
    next.delete('catchup');
    location.search = next.toString();
  };
  // Catching up: the relay sends faster than recorded (the player plays faster, up to its
  // latency mode's highest rate, and skips ahead where it must) until it has sent everything
  // Kafka holds; then live.
  if (catchUp) player.addEventListener('caughtup', backToLive);
  $('live').addEventListener('click', () => (from ? backToLive() : player.goLive()));
  seekBar(topic, token, from);
  video.addEventListener('click', () => (video.paused ? player.goLive() : video.pause()));
  $('latency').addEventListener('change', () => {
    const next = new URLSearchParams(location.search);
    next.set('latency', $('latency').value);
    location.search = next.toString();
  });
  document.addEventListener('keydown', (e) => {
    if (e.target instanceof HTMLInputElement || e.target instanceof HTMLSelectElement || e.ctrlKey || e.metaKey || e.altKey) return;
    if (e.key === 'f') toggleFullscreen();
    else if (e.key === 'm') toggleSound();
    else if (e.key === 'i') showStats($('stats-overlay').hidden);
    else if (e.key === ' ') { e.preventDefault(); if (video.paused) player.goLive(); else video.pause(); }
  });
  player.start();
}
