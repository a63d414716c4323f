// Herald's debug console. Every text that came from a client or the network is set with
// textContent, never as HTML.
'use strict';

const base = location.pathname.replace(/\/(index\.html)?$/, '');
const $ = (id) => document.getElementById(id);
const MAX_ROWS = 1000;        // rows kept in the stream
const NODE_SILENT_MS = 5000;  // a node unheard of for this long no longer counts
const SPARK_POINTS = 300;     // one a second: five minutes

let source = null;
let paused = false;
const nodes = new Map();      // node name -> {connections, at}
let spark = [];
let eventsThisSecond = 0;

async function api(path, body) {
  const opts = { credentials: 'same-origin', headers: {} };
  if (body !== undefined) {
    opts.method = 'POST';
    opts.headers['Content-Type'] = 'application/json';
    opts.body = JSON.stringify(body);
  }
  const res = await fetch(base + '/api' + path, opts);
  let json = {};
  try { json = await res.json(); } catch (e) { /* an empty answer */ }
  return { status: res.status, json };
}

function show(which) {
  $('signin').hidden = which !== 'signin';
  $('view').hidden = which !== 'view';
  $('bar').hidden = which !== 'view';
}

async function start() {
  const { status, json } = await api('/session');
  if (status !== 200) { showSignin(''); return; }
  enter(json);
}

function showSignin(message) {
  if (source) { source.close(); source = null; }
  $('signin-error').textContent = message;
  show('signin');
}

function enter(session) {
  const select = $('app');
  select.replaceChildren(...session.apps.map((id) => new Option(id, id)));
  select.disabled = session.apps.length < 2;
  const wanted = decodeURIComponent(location.hash.slice(1));
  if (session.apps.includes(wanted)) select.value = wanted;
  show('view');
  open(select.value);
}

async function signin(body) {
  const { status, json } = await api('/signin', body);
  if (status === 200) { $('signin-error').textContent = ''; enter(json); return; }
  $('signin-error').textContent = json.error || ('sign-in failed (' + status + ')');
}

function open(appID) {
  if (source) source.close();
  nodes.clear();
  spark = [];
  $('events').replaceChildren();
  $('channels').replaceChildren();
  location.hash = encodeURIComponent(appID);
  setStatus(false);
  source = new EventSource(base + '/api/apps/' + encodeURIComponent(appID) + '/stream');
  source.onopen = () => setStatus(true);
  source.onerror = async () => {
    setStatus(false);
    if (source.readyState === EventSource.CLOSED) {
      const { status } = await api('/session');
      if (status !== 200) showSignin('Your session ended: sign in again.');
    }
  };
  source.addEventListener('batch', (e) => onBatch(JSON.parse(e.data)));
  source.addEventListener('channels', (e) => onChannels(JSON.parse(e.data)));
  source.addEventListener('missed', (e) => {
    $('dropped').textContent = JSON.parse(e.data).batches + ' batches missed: this page fell behind';
  });
  source.addEventListener('signedout', () => showSignin('Your session ended: sign in again.'));
}

function setStatus(live) {
  const s = $('status');
  s.textContent = live ? 'live' : 'reconnecting';
  s.classList.toggle('live', live);
}

function onBatch(b) {
  nodes.set(b.node, { connections: b.connections, at: Date.now() });
  updateCount();
  if (b.dropped) {
    $('dropped').textContent = 'node ' + (b.node || 'this') + ' sampled: ' + b.dropped + ' events not shown';
  }
  eventsThisSecond += b.events.length;
  if (paused) return;
  const body = $('events');
  for (const ev of b.events) body.prepend(row(b.node, ev));
  while (body.childElementCount > MAX_ROWS) body.lastElementChild.remove();
}

function totalConnections() {
  let total = 0;
  const now = Date.now();
  for (const [name, n] of nodes) {
    if (now - n.at > NODE_SILENT_MS) { nodes.delete(name); continue; }
    total += n.connections;
  }
  return total;
}

function updateCount() {
  $('conn-count').textContent = totalConnections();
  $('node-count').textContent = nodes.size;
}

const cell = (text, cls) => {
  const td = document.createElement('td');
  if (cls) {
    const span = document.createElement('span');
    span.className = cls;
    span.textContent = text;
    td.append(span);
  } else {
    td.textContent = text;
  }
  return td;
};

function details(ev) {
  const parts = [];
  if (ev.socket_id) parts.push('socket ' + ev.socket_id);
  if (ev.user_id) parts.push('user ' + ev.user_id);
  if (ev.code) parts.push((ev.kind === 'webhook' ? 'status ' : 'code ') + ev.code);
  if (ev.size) parts.push(ev.size + ' B');
  if (ev.detail) parts.push(ev.detail);
  return parts.join(' · ');
}

function row(node, ev) {
  const tr = document.createElement('tr');
  const channel = ev.channel || (ev.channels || []).join(', ');
  tr.dataset.kind = ev.kind;
  tr.dataset.channel = channel;
  tr.dataset.event = ev.event || '';
  tr.dataset.socket = ev.socket_id || '';
  const t = new Date(ev.t);
  const time = t.toLocaleTimeString([], { hour12: false }) + '.' + String(t.getMilliseconds()).padStart(3, '0');
  tr.append(cell(time), cell(node || '-'), cell(ev.kind, 'kind ' + ev.kind), cell(channel), cell(ev.event || ''), cell(details(ev)));
  tr.hidden = !matches(tr);
  return tr;
}

function matches(tr) {
  const ch = $('filter-channel').value.trim();
  const ev = $('filter-event').value.trim();
  const kind = $('filter-kind').value;
  return (!kind || tr.dataset.kind === kind) &&
    (!ch || tr.dataset.channel.includes(ch)) &&
    (!ev || tr.dataset.event.includes(ev));
}

function refilter() {
  for (const tr of $('events').children) tr.hidden = !matches(tr);
}

function onChannels(s) {
  if (s.error) { $('channels-note').textContent = s.error; return; }
  $('channel-count').textContent = s.total;
  $('channels-note').textContent = s.total > s.channels.length ? 'the ' + s.channels.length + ' busiest of ' + s.total : '';
  const rows = [];
  for (const ch of s.channels) {
    const tr = document.createElement('tr');
    tr.dataset.channel = ch.name;
    tr.append(cell(ch.name), cell(String(ch.subscriptions)), cell(ch.name.startsWith('presence-') ? String(ch.users) : ''));
    tr.children[1].className = 'subs';
    rows.push(tr);
    for (const m of ch.members || []) {
      const mr = document.createElement('tr');
      mr.className = 'members';
      mr.dataset.member = m.id;
      const td = cell('');
      td.colSpan = 3;
      const code = document.createElement('code');
      code.textContent = m.info === undefined ? '' : JSON.stringify(m.info);
      td.append(document.createTextNode(m.id + ' '), code);
      mr.append(td);
      rows.push(mr);
    }
  }
  $('channels').replaceChildren(...rows);
}

function drawSpark() {
  spark.push(totalConnections());
  if (spark.length > SPARK_POINTS) spark.shift();
  updateCount();
  $('rate').textContent = eventsThisSecond;
  eventsThisSecond = 0;
  // The samples since the page opened, up to five minutes, spread over the whole width.
  const top = Math.max(1, ...spark);
  const step = 300 / Math.max(1, spark.length - 1);
  const points = spark.map((v, i) => (i * step).toFixed(1) + ',' + (38 - (v / top) * 36).toFixed(1));
  $('spark').firstElementChild.setAttribute('points', points.join(' '));
}

document.addEventListener('DOMContentLoaded', () => {
  $('signin-app').addEventListener('submit', (e) => {
    e.preventDefault();
    signin({ app_id: $('signin-app-id').value, secret: $('signin-secret').value });
  });
  $('signin-admin').addEventListener('submit', (e) => {
    e.preventDefault();
    signin({ token: $('signin-token').value });
  });
  $('signout').addEventListener('click', async () => {
    await api('/signout', {});
    showSignin('');
  });
  $('app').addEventListener('change', (e) => open(e.target.value));
  $('send').addEventListener('submit', async (e) => {
    e.preventDefault();
    const { status, json } = await api('/apps/' + encodeURIComponent($('app').value) + '/events', {
      channel: $('send-channel').value, event: $('send-event').value, data: $('send-data').value,
    });
    $('send-result').textContent = status === 200 ? 'sent' : (json.error || 'failed (' + status + ')');
  });
  for (const id of ['filter-channel', 'filter-event', 'filter-kind']) $(id).addEventListener('input', refilter);
  $('pause').addEventListener('click', (e) => {
    paused = !paused;
    e.target.textContent = paused ? 'Resume' : 'Pause';
  });
  $('clear').addEventListener('click', () => $('events').replaceChildren());
  setInterval(drawSpark, 1000);
  start();
});
