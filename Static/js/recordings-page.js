// recordings.html?topic=NAME[&token=…]: the sessions Kafka still holds of a topic, each to play
// in the page or download as a WebM file (GET /api/topics/NAME/sessions and …/recording.webm).
import { describeSession, formatBytes, formatDuration as duration, recordingUrl, topicFromQuery } from './util.js';

const $ = (id) => document.getElementById(id);
const topic = topicFromQuery();
const token = new URLSearchParams(location.search).get('token');

function fileUrl(session) { return recordingUrl(topic, session, token); }

function play(session) {
  $('player').hidden = false;
  $('playing-title').textContent = `${new Date(session.startedAtMilliseconds).toLocaleString()} · ${duration(session.durationMilliseconds)}`;
  const video = $('video');
  video.src = fileUrl(session);
  video.play().catch(() => {});
  window.kvbRecordings.playing = session.id;
}

/** How far back Kafka goes: its retention, in time at the newest session's bitrate. */
function retentionText(doc, sessions) {
  let text = `Retention: ${doc.retention || 'unknown'}`;
  const newest = sessions.find((s) => s.durationMilliseconds > 1000 && s.bytes > 0);
  if (doc.retentionBytes && newest) {
    const bytesPerSecond = newest.bytes / (newest.durationMilliseconds / 1000);
    const seconds = doc.retentionBytes / bytesPerSecond;
    text += `: about ${duration(seconds * 1000)} at this topic's latest bitrate (${(bytesPerSecond * 8 / 1e6).toFixed(2)} Mbit/s)`;
  }
  const oldest = sessions[sessions.length - 1];
  if (oldest) {
    const held = sessions.reduce((sum, s) => sum + s.bytes, 0);
    text += `. It holds ${formatBytes(held)} now, from ${new Date(oldest.startedAtMilliseconds).toLocaleTimeString()} on.`;
  }
  return text;
}

async function load() {
  const query = token ? `?token=${encodeURIComponent(token)}` : '';
  let doc;
  try {
    const response = await fetch(`/api/topics/${encodeURIComponent(topic)}/sessions${query}`, { cache: 'no-store' });
    doc = await response.json().catch(() => ({}));
    if (!response.ok) throw new Error(doc.error ? doc.error.message : `HTTP ${response.status}`);
  } catch (e) {
    $('status').textContent = `Cannot list the recordings: ${e.message}`;
    return;
  }
  const sessions = (doc.sessions || []).slice().reverse(); // newest first
  window.kvbRecordings.sessions = sessions;
  $('retention').textContent = retentionText(doc, sessions);
  $('status').textContent = sessions.length ? `${sessions.length} recording${sessions.length === 1 ? '' : 's'} in Kafka.`
    : 'Nothing of this topic is left in Kafka.';
  $('sessions').replaceChildren(...sessions.map((s) => {
    const tr = document.createElement('tr');
    tr.dataset.session = s.id;
    const cells = [new Date(s.startedAtMilliseconds).toLocaleString(), duration(s.durationMilliseconds), formatBytes(s.bytes),
      s.relay, describeSession(s)];
    for (const text of cells) {
      const td = document.createElement('td');
      td.textContent = text;
      tr.append(td);
    }
    const actions = document.createElement('td');
    const playButton = document.createElement('button');
    playButton.type = 'button';
    playButton.className = 'play';
    playButton.textContent = 'play';
    playButton.addEventListener('click', () => play(s));
    const download = document.createElement('a');
    download.className = 'download';
    download.href = fileUrl(s);
    download.textContent = 'download';
    actions.append(playButton, ' ', download);
    tr.append(actions);
    return tr;
  }));
}

window.kvbRecordings = { sessions: null, playing: null, retention: () => $('retention').textContent };
if (!topic) {
  $('status').textContent = 'No topic: open this page as recordings.html?topic=NAME.';
} else {
  $('topic').textContent = topic;
  document.title = `kvb · recordings of ${topic}`;
  load();
}
