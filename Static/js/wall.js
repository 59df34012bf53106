// The front page's wall: every topic live on any relay of the cluster (from /api/topics, which
// reads the fleet's status documents) as a small muted live player with its viewer count, linked
// to its watch page. Tiles come and go as streams start and end.
import { Player } from './player.js';
import { describeSession, formatBytes, formatDuration, recordingUrl } from './util.js';

const POLL_MS = 2000;
const MAX_PREVIEWS = 12;   // live players at once; further live topics get a tile without video

const wall = document.getElementById('wall');
const empty = document.getElementById('wall-empty');
const idle = document.getElementById('idle-topics');
const tiles = new Map();   // topic -> { element, player, video }

function watchHref(topic) { return `/watch.html?topic=${encodeURIComponent(topic)}`; }

function makeTile(topic) {
  const element = document.createElement('a');
  element.className = 'tile';
  element.dataset.topic = topic;
  element.href = watchHref(topic);
  element.innerHTML = '<div class="tile-picture"></div><div class="tile-caption"><span class="live-dot">live</span> '
    + '<code></code><span class="tile-viewers"></span></div>';
  element.querySelector('code').textContent = topic;
  wall.append(element);
  return element;
}

function startPreview(topic, element) {
  const picture = element.querySelector('.tile-picture');
  if (tiles.size >= MAX_PREVIEWS) {
    picture.textContent = 'open to watch';
    return { element, player: null };
  }
  const video = document.createElement('video');
  video.muted = true;
  video.autoplay = true;
  video.playsInline = true;
  picture.append(video);
  const player = new Player({ topic, video, latency: 'normal', measureGlass: false });
  // A stream that ends leaves the wall at once, without waiting for the next poll.
  player.addEventListener('change', () => {
    if (player.state === 'ended' || player.state === 'error') removeTile(topic);
    element.dataset.state = player.state;
  });
  player.start();
  return { element, player };
}

function removeTile(topic) {
  const tile = tiles.get(topic);
  if (!tile) return;
  tiles.delete(topic);
  soonRefreshRecordings();  // the stream that ended is a recording now
  if (tile.player) tile.player.stop();
  tile.element.remove();
  empty.hidden = tiles.size > 0;
}

function renderIdle(topics) {
  if (!idle) return;
  const rows = topics.map((t) => {
    const tr = document.createElement('tr');
    const link = document.createElement('a');
    link.href = watchHref(t.name);
    link.textContent = t.name;
    const broadcast = document.createElement('a');
    broadcast.href = `/broadcast.html?topic=${encodeURIComponent(t.name)}`;
    broadcast.textContent = 'broadcast';
    const recordings = document.createElement('a');
    recordings.href = `/recordings.html?topic=${encodeURIComponent(t.name)}`;
    recordings.textContent = 'recordings';
    for (const cell of [link, 'idle', String(t.viewersInFleet ?? t.viewers), String(t.highWatermark), [broadcast, ' · ', recordings]]) {
      const td = document.createElement('td');
      td.append(...[cell].flat());
      tr.append(td);
    }
    return tr;
  });
  if (!rows.length) {
    const tr = document.createElement('tr');
    tr.innerHTML = '<td colspan="5">None.</td>';
    rows.push(tr);
  }
  idle.replaceChildren(...rows);
}

async function refresh() {
  let topics;
  try {
    const response = await fetch('/api/topics', { cache: 'no-store' });
    if (!response.ok) throw new Error(`HTTP ${response.status}`);
    topics = (await response.json()).topics || [];
  } catch (e) {
    empty.hidden = false;
    empty.textContent = `Cannot reach the relay (${e.message}); trying again.`;
    return;
  }
  const live = topics.filter((t) => t.live);
  const names = new Set(live.map((t) => t.name));
  for (const topic of [...tiles.keys()]) if (!names.has(topic)) removeTile(topic);
  for (const t of live) {
    let tile = tiles.get(t.name);
    if (!tile) {
      const element = wall.querySelector(`.tile[data-topic="${CSS.escape(t.name)}"]`) || makeTile(t.name);
      tile = startPreview(t.name, element);
      tiles.set(t.name, tile);
      soonRefreshRecordings();
    }
    // The preview is a viewer too (of this relay, counted at once): leave it out.
    const own = tile.player && tile.player.ws ? 1 : 0;
    const viewers = Math.max(0, (t.viewersInFleet ?? t.viewers) - own);
    tile.element.querySelector('.tile-viewers').textContent = `${viewers} watching`;
  }
  // Tiles the server rendered for streams that have ended since.
  for (const element of wall.querySelectorAll('.tile')) if (!tiles.has(element.dataset.topic)) element.remove();
  empty.textContent = 'Nothing is live right now. Streams appear here as they start.';
  empty.hidden = tiles.size > 0;
  renderIdle(topics.filter((t) => !t.live));
}

window.kvbWall = {
  tiles,
  /** Per live tile: its player's state and frames decoded. */
  snapshot() {
    return [...tiles].map(([topic, tile]) => ({
      topic,
      state: tile.player ? tile.player.state : 'no preview',
      framesDecoded: tile.player ? tile.player.framesDecoded : 0,
      viewers: tile.element.querySelector('.tile-viewers').textContent,
    }));
  },
};

refresh();
setInterval(refresh, POLL_MS);

// The newest sessions Kafka holds across every topic (GET /api/recordings), each to watch from
// its start or download. Refreshed less often than the wall: a listing reads Kafka.
const RECORDINGS_POLL_MS = 10000;
const RECORDINGS_SHOWN = 20;
const recordingsTable = document.getElementById('recordings-table');
const recordingsBody = document.getElementById('recordings');
const recordingsNote = document.getElementById('recordings-note');

function recordingRow({ topic, session }) {
  const tr = document.createElement('tr');
  tr.dataset.topic = topic;
  tr.dataset.session = session.id;
  // Times come from the records' headers: one that is not a date gets no link, not an exception.
  const started = new Date(session.startedAtMilliseconds);
  const valid = !Number.isNaN(started.getTime());
  const topicLink = document.createElement('a');
  topicLink.href = `/recordings.html?topic=${encodeURIComponent(topic)}`;
  topicLink.textContent = topic;
  const cells = [valid ? started.toLocaleString() : '?', topicLink, formatDuration(session.durationMilliseconds), formatBytes(session.bytes),
    session.relay, describeSession(session)];
  for (const cell of cells) {
    const td = document.createElement('td');
    td.append(cell);
    tr.append(td);
  }
  const watch = document.createElement('a');
  watch.className = 'watch-from-start';
  if (valid) watch.href = `/watch.html?topic=${encodeURIComponent(topic)}&at=${encodeURIComponent(started.toISOString())}`;
  watch.textContent = 'watch from its start';
  const download = document.createElement('a');
  download.className = 'download';
  download.href = recordingUrl(topic, session);
  download.textContent = 'download';
  const actions = document.createElement('td');
  if (valid) actions.append(watch, ' · ');
  actions.append(download);
  tr.append(actions);
  return tr;
}

async function refreshRecordings() {
  if (!recordingsTable) return;  // the relay needs watch tokens: the page says why there is no list
  let list;
  try {
    const response = await fetch(`/api/recordings?limit=${RECORDINGS_SHOWN}`, { cache: 'no-store' });
    list = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(list.error ? list.error.message : `HTTP ${response.status}`);
  } catch (e) {
    recordingsNote.textContent = `Cannot list the recordings: ${e.message}`;
    return;
  }
  const recordings = list.recordings || [];
  window.kvbWall.recordings = recordings;
  recordingsBody.replaceChildren(...recordings.map(recordingRow));
  recordingsTable.hidden = recordings.length === 0;
  const notes = [];
  if (!recordings.length) notes.push('Kafka holds no broadcast right now.');
  else if (list.total > recordings.length) notes.push(`The newest ${recordings.length} of ${list.total}; each topic's recordings page lists all of its own.`);
  else notes.push(`${list.total} broadcast${list.total === 1 ? '' : 's'} that Kafka still holds, newest first.`);
  const pending = (list.pendingTopics || []).length;
  if (pending) notes.push(`Still reading ${pending} topic${pending === 1 ? '' : 's'}…`);
  recordingsNote.textContent = notes.join(' ');
}

let soon = null;
/** A stream started or ended: list the recordings again shortly, not at the next poll. */
function soonRefreshRecordings() {
  if (soon) return;
  soon = setTimeout(() => { soon = null; refreshRecordings(); }, 1000);
}

window.kvbWall.recordings = null;
if (recordingsTable) {
  refreshRecordings();
  setInterval(refreshRecordings, RECORDINGS_POLL_MS);
}
