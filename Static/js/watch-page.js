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
  const video = $('video');
  const player = new Player({ topic, video, token, latency });
  window.kvbWatch = player;
  $('latency').value = latency;

  const render = () => {
    renderState($('state'), player.state, player.message);
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
    badge.title = live ? 'You are watching the live edge' : 'Jump to the live picture';
    const g = player.glassStatus();
    renderFields($('stats'), [
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
  $('live').addEventListener('click', () => player.goLive());
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
