// The original page: your camera beside the same video replayed through Kafka.
// /static/index.html[?topic=NAME], topic `video` by default, publishing starts at once.
import { Player } from './player.js';
import { Publisher } from './publisher.js';
import { formatBytes, formatSeconds, logLine, renderFields, renderState, topicFromQuery } from './util.js';

const topic = topicFromQuery('video');
const $ = (id) => document.getElementById(id);
$('topic').textContent = topic;

const pub = new Publisher({ topic, video: $('camera') });
const player = new Player({ topic, video: $('replay') });
window.kvbBroadcast = pub;
window.kvbWatch = player;

// This tab recorded the stream, so it knows the wall-clock time of media time 0 of its own
// session: the replay's capture-to-screen delay can be measured, not just its buffer.
pub.addEventListener('change', () => {
  if (pub.session && pub.recorderStartedAt) player.clockOrigins.set(pub.session, pub.recorderStartedAt);
});

const render = () => {
  const s = pub.stats || {};
  renderState($('pub-state'), pub.state, pub.lastError && pub.state !== 'live' ? pub.lastError : '');
  renderState($('play-state'), player.state, player.message);
  renderFields($('stats'), [
    ['sent', `${formatBytes(pub.bytesSent)} in ${pub.chunksSent} chunks`],
    ['acked by Kafka', s.acked != null ? `${s.acked} of ${s.fragments} fragments` : null],
    ['keyframes', s.keyframes],
    ['received', `${formatBytes(player.bytesReceived)} in ${player.fragments} fragments`],
    ['frames decoded', player.framesDecoded],
    ['live delay', formatSeconds(player.delaySeconds)],
    ['camera → screen (est.)', formatSeconds(player.wallDelaySeconds)],
  ]);
  const running = !['idle', 'stopped', 'error', 'kicked'].includes(pub.state);
  $('start').disabled = running;
  $('stop').disabled = !running;
};
pub.addEventListener('change', render);
player.addEventListener('change', render);
pub.addEventListener('note', (e) => logLine($('log'), `camera: ${e.detail}`));
player.addEventListener('note', (e) => logLine($('log'), `replay: ${e.detail}`));
$('start').addEventListener('click', () => pub.start());
$('stop').addEventListener('click', () => pub.stop());

player.start();
pub.start();
