// watch.html?topic=NAME
import { Player } from './player.js';
import { formatBytes, formatSeconds, logLine, renderFields, renderState, topicFromQuery } from './util.js';

const topic = topicFromQuery();
const $ = (id) => document.getElementById(id);

/** "412 ms (p50 380, p95 520)", or why there is no figure. */
function glassText(g) {
  if (g.status !== 'measuring' || g.current == null) return g.note;
  return `${g.current} ms (p50 ${g.p50}, p95 ${g.p95})`;
}

if (!topic) {
  $('topic-form').hidden = false;
  $('player-area').hidden = true;
} else {
  $('topic').textContent = topic;
  document.title = `kvb · watch ${topic}`;
  $('broadcast-link').href = `broadcast.html?topic=${encodeURIComponent(topic)}`;
  const token = new URLSearchParams(location.search).get('token');
  const latency = new URLSearchParams(location.search).get('latency') || 'low';
  const player = new Player({ topic, video: $('video'), token, latency });
  window.kvbWatch = player;

  player.addEventListener('change', () => {
    renderState($('state'), player.state, player.message);
    renderFields($('stats'), [
      ['glass to glass', glassText(player.glassStatus())],
      ['live delay', formatSeconds(player.delaySeconds)],
      ['frames decoded', player.framesDecoded],
      ['received', `${formatBytes(player.bytesReceived)} in ${player.fragments} fragments`],
      ['type', player.mimeType],
      ['resets', player.resets],
      ['skipped fragments', player.skipped],
      ['relay', player.relay],
      ['reconnects', player.reconnects],
    ]);
  });
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
    const tokenPart = player.token ? `&token=${encodeURIComponent(player.token)}` : '';
    history.replaceState(null, '', `?topic=${encodeURIComponent(moved)}${tokenPart}`);
    logLine($('log'), `moved by the operator to ${moved}`);
  });
  player.start();
}
