// broadcast.html?topic=NAME[&source=camera|clock][&autostart=1]
// source=clock publishes the clock test pattern instead of the camera: watch pages then measure
// glass-to-glass delay from the picture itself.
import { Publisher } from './publisher.js';
import { formatBytes, logLine, renderFields, renderState, topicFromQuery, topicProblem } from './util.js';

const topic = topicFromQuery();
const $ = (id) => document.getElementById(id);

if (!topic) {
  $('topic-form').hidden = false;
  $('player-area').hidden = true;
} else {
  $('topic').textContent = topic;
  document.title = `kvb · broadcast ${topic}`;
  $('watch-link').href = `watch.html?topic=${encodeURIComponent(topic)}`;
  // The publish key: from ?key= once (then taken out of the address bar), else what this tab
  // remembered. Sent in the hello message, never in the WebSocket URL.
  const params = new URLSearchParams(location.search);
  if (params.has('key')) {
    sessionStorage.setItem('kvb.publishKey', params.get('key'));
    params.delete('key');
    history.replaceState(null, '', `?${params}`);
  }
  $('key').value = sessionStorage.getItem('kvb.publishKey') || '';
  const source = params.get('source') === 'clock' ? 'clock' : 'camera';
  const pub = new Publisher({ topic, video: $('preview'), key: $('key').value || null, source });
  window.kvbBroadcast = pub;

  const render = () => {
    const s = pub.stats || {};
    renderState($('state'), pub.state);
    renderFields($('stats'), [
      ['source', source === 'clock' ? 'clock test pattern' : 'camera'],
      ['recording', pub.mimeType ? `${pub.mimeType}${pub.audio ? '' : ' (no audio)'}` : null],
      ['sent', `${formatBytes(pub.bytesSent)} in ${pub.chunksSent} chunks`],
      ['relay parsed', s.bytes != null ? formatBytes(s.bytes) : null],
      ['fragments', s.fragments],
      ['keyframes', s.keyframes],
      ['acked by Kafka', s.acked],
      ['failed', s.failed],
      ['session', pub.session],
      ['relay', pub.relay],
      ['reconnects', pub.reconnects],
    ]);
    $('error').textContent = pub.lastError || '';
    $('key-row').classList.toggle('needed', Boolean(pub.forbidden));
    const running = !['idle', 'stopped', 'error', 'kicked'].includes(pub.state);
    $('start').disabled = running;
    $('stop').disabled = !running;
  };
  let lastLogged = null;
  pub.addEventListener('change', () => {
    render();
    if (pub.state !== lastLogged) {
      lastLogged = pub.state;
      logLine($('log'), `state ${pub.state}${pub.lastError && pub.state !== 'live' ? ` (${pub.lastError})` : ''}`);
    }
  });
  pub.addEventListener('note', (e) => logLine($('log'), e.detail));
  $('start').addEventListener('click', () => {
    const key = $('key').value.trim();
    if (key) sessionStorage.setItem('kvb.publishKey', key); else sessionStorage.removeItem('kvb.publishKey');
    pub.key = key || null;
    pub.start();
  });
  $('stop').addEventListener('click', () => pub.stop());
  const problem = topicProblem(topic);
  if (problem) $('error').textContent = problem;
  render();
  if (new URLSearchParams(location.search).get('autostart') === '1') pub.start();
}
