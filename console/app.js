// Switchboard compliance console. No dependencies, no build step. Everything the
// server sends is rendered as text nodes (never innerHTML), and every content
// access carries the purpose the user gave (asked once per browser tab).
// A call has its own address, `/console#/calls/ID` (the softphone links to it):
// opening it signs in first if needed, then asks the purpose, then shows the call.
// The calls list names each call's owning node; the nodes panel (nodes.js) shows the cluster's nodes to admins;
// the agents panel (agents.js) shows which agents are paused, with pause / resume for those who deploy;
// the approvals panel (approvals.js) lists tool calls waiting for a decision to users with `tools:approve`;
// a live call's page has the PCI pause button (pci.js) for users with `recording:pause`, and the supervisor controls
// (supervise.js: listen / whisper / take over / hand back / leave, over WebRTC) for users with `supervisor`;
// the live calls (a subscription to `calls` in active states) are listed under the header, updated as they change.
'use strict';
import { approvalsPanel } from './approvals.js';
import { nodesPanel } from './nodes.js';
import { agentsPanel } from './agents.js';
import { pciButton } from './pci.js';
import { campaignsPanel } from './campaigns.js';
import { leaveSupervision, superviseBar } from './supervise.js';

// Mirrors schema/permissions.ts (the server enforces it; this only shapes the UI).
const COMMON = ['users:read', 'numbers:read', 'policies:read', 'calls:read', 'agents:read', 'subscribe'];
const PERMS = {
  admin: null, // everything
  compliance: [...COMMON, 'policies:write', 'content:read', 'evidence:export', 'holds:write', 'access_log:read', 'audit:verify', 'tools:approve', 'tools:policy', 'recording:pause'],
  auditor: [...COMMON, 'content:read', 'evidence:export', 'access_log:read', 'audit:verify'],
  developer: ['numbers:read', 'numbers:write', 'policies:read', 'calls:read', 'calls:originate', 'agents:read', 'agents:deploy', 'subscribe'],
};
const ACTIVE = ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming'];
const PURPOSE_KEY = 'switchboard.console.purpose';

const $ = (id) => document.getElementById(id);
const state = { me: null, cursor: null, query: '', users: new Map(), live: new Map(), liveSeq: null, ws: null, wsRetry: 0, wsTimer: 0, openId: null, epoch: 0 };

const can = (perm) => !!state.me && (PERMS[state.me.role] === null || (PERMS[state.me.role] ?? []).includes(perm));

/** Builds an element; children are strings (as text) or nodes. Attribute values are set, never parsed as HTML. */
function h(tag, attrs = {}, ...children) {
  const el = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs)) {
    if (v === null || v === undefined || v === false) continue;
    if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
    else el.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) if (c !== null && c !== undefined && c !== false) el.append(c instanceof Node ? c : String(c));
  return el;
}
const text = (el, value) => { el.textContent = value ?? ''; };
const when = (t) => (t === null || t === undefined ? '—' : h('time', { datetime: new Date(t).toISOString() }, new Date(t).toLocaleString()));
const json = (v) => (v === null || v === undefined ? '—' : h('code', { class: 'json' }, JSON.stringify(v)));
const duration = (ms) => (ms === null || ms === undefined ? '—' : `${(ms / 1000).toFixed(1)} s`);
const clock = (ms) => new Date(Math.max(0, ms)).toISOString().slice(11, 23);
const enc = encodeURIComponent;

class ApiError extends Error {
  constructor(status, code, message) { super(message); this.status = status; this.code = code; }
}

/** Calls the JSON API with the session cookie. A 401 outside sign-in ends the session in the UI. */
async function api(method, path, { body, headers = {}, signIn = false } = {}) {
  const init = { method, credentials: 'same-origin', headers: { accept: 'application/json', ...headers } };
  if (body !== undefined) { init.body = JSON.stringify(body); init.headers['content-type'] = 'application/json'; }
  let res;
  try { res = await fetch(path, init); } catch { throw new ApiError(0, 'network', 'The gateway cannot be reached. Check your connection and retry.'); }
  const data = (res.headers.get('content-type') ?? '').includes('json') ? await res.json().catch(() => null) : null;
  if (res.ok) return data;
  const message = data?.error?.message ?? `Request failed (HTTP ${res.status})`;
  if (res.status === 401 && !signIn && state.me) signedOut('Your session has ended. Sign in again.');
  throw new ApiError(res.status, data?.error?.code ?? 'error', message);
}

// ── the cluster's nodes (admins of the operator tenant; nodes.js) ───────────
const nodes = nodesPanel({ $, h, text, when, api });
// ── agents, paused or not, with pause / resume for those who deploy (agents.js) ──
const agents = agentsPanel({ $, h, text, when, api });
// ── tool calls waiting for approval (tools:approve; approvals.js) ───────────
const approvals = approvalsPanel({ $, h, text, when, json, api });
// ── outbound campaigns' progress, live, with pause / resume / cancel (campaigns.js) ──
const campaigns = campaignsPanel({ $, h, text, when, api });

// ── purpose (asked once per tab, before the first content access) ───────────
const purpose = () => sessionStorage.getItem(PURPOSE_KEY);
/** Header values must be ISO-8859-1; anything else is sent percent-encoded (query strings carry it verbatim). */
const purposeHeader = () => { const p = purpose() ?? ''; return { 'x-switchboard-purpose': /^[\x20-\x7e]*$/.test(p) ? p : enc(p) }; };

function askPurpose(force = false) {
  if (!force && purpose()) return Promise.resolve(purpose());
  const dialog = $('purpose-dialog'), input = $('purpose-input');
  input.value = purpose() ?? '';
  text($('purpose-error'), '');
  return new Promise((resolve) => {
    const done = (value) => { dialog.close(); $('purpose-form').onsubmit = null; $('purpose-cancel').onclick = null; dialog.oncancel = null; resolve(value); };
    $('purpose-form').onsubmit = (e) => {
      e.preventDefault();
      const v = input.value.trim();
      if (v.length < 3) return text($('purpose-error'), 'Give a purpose (at least 3 characters), e.g. a case or complaint reference.');
      sessionStorage.setItem(PURPOSE_KEY, v);
      done(v);
    };
    $('purpose-cancel').onclick = () => done(null);
    dialog.oncancel = () => done(null);
    dialog.showModal();
    input.focus();
  });
}

// ── sign in / out ────────────────────────────────────────────────────────────
function showSignIn(message = '') {
  $('app').hidden = true; $('session-bar').hidden = true; $('signin').hidden = false;
  text($('signin-error'), message);
  $('signin-email').focus();
}

async function signedIn(me) {
  state.me = me;
  $('signin').hidden = true; $('app').hidden = false; $('session-bar').hidden = false;
  text($('who'), `${me.email} (${me.role}, ${me.tenant})`);
  $('show-access-log').hidden = !can('access_log:read');
  $('f-q-wrap').hidden = !can('content:read');
  closeDetail(false); $('access').hidden = true;
  connectLive();
  if (can('tenants:manage')) nodes.start(); else nodes.stop();
  if (can('agents:read')) agents.start(can('agents:deploy')); else agents.stop();
  if (can('tools:approve') && can('subscribe')) approvals.start(); else approvals.stop();
  if (can('calls:read') && can('subscribe')) campaigns.start(can('calls:originate')); else campaigns.stop();
  if (can('users:read')) api('GET', '/v1/users').then((r) => { for (const u of r.users) state.users.set(u.id, u.email); }).catch(() => {});
  await loadCalls(true);
  $('calls-h').focus();
  routeFromAddress();
}

function signedOut(message) {
  state.me = null; state.epoch++; state.users.clear(); state.live.clear(); state.liveSeq = null;
  clearTimeout(state.wsTimer);
  if (state.ws) { const ws = state.ws; state.ws = null; ws.close(1000, 'signed out'); }
  sessionStorage.removeItem(PURPOSE_KEY);
  nodes.stop();
  agents.stop();
  approvals.stop();
  campaigns.stop();
  $('calls-body').replaceChildren(); $('detail-body').replaceChildren(); $('access-body').replaceChildren();
  $('signin-password').value = ''; $('signin-token').value = '';
  showSignIn(message);
}

$('signin-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const email = $('signin-email').value.trim(), password = $('signin-password').value, tenant = $('signin-tenant').value.trim();
  if (!email || !password) return text($('signin-error'), 'Enter your email and password.');
  text($('signin-error'), '');
  $('signin-submit').disabled = true;
  try {
    const r = await api('POST', '/v1/auth/login', { body: { email, password, ...(tenant ? { tenant } : {}) }, signIn: true });
    $('signin-password').value = '';
    await signedIn(r.user);
  } catch (err) {
    text($('signin-error'), err.message);
  } finally {
    $('signin-submit').disabled = false;
  }
});

$('signin-token-form').addEventListener('submit', async (e) => {
  e.preventDefault();
  const token = $('signin-token').value.trim();
  if (!token) return text($('signin-token-error'), 'Paste an API token.');
  text($('signin-token-error'), '');
  $('signin-token-submit').disabled = true;
  try {
    // Exchanged for a session of its own (HttpOnly cookie): the token is not kept by the page.
    const r = await api('POST', '/v1/auth/login', { body: { token }, signIn: true });
    $('signin-token').value = '';
    await signedIn(r.user);
  } catch (err) {
    text($('signin-token-error'), err.code === 'invalid_credentials' ? 'That token is not valid (unknown, revoked or expired).' : err.message);
  } finally {
    $('signin-token-submit').disabled = false;
  }
});

$('sign-out').addEventListener('click', async () => {
  try { await api('POST', '/v1/auth/logout'); } catch { /* the session may already be gone */ }
  signedOut('You have signed out.');
});

// ── live badge: WS /v1/subscribe, table calls, active states ────────────────
function renderLive(offline = false) {
  const n = state.live.size;
  text($('live'), offline ? 'Live: offline (reconnecting)' : `Live: ${n} active call${n === 1 ? '' : 's'}`);
  $('live').classList.toggle('on', !offline && n > 0);
  // The live calls themselves, newest first, each opening its page (updated on every delta of the subscription).
  const rows = [...state.live.values()].sort((a, b) => (b.received_at ?? 0) - (a.received_at ?? 0));
  $('live-calls').hidden = offline || rows.length === 0;
  $('live-list').replaceChildren(...rows.map((r) => h('li', { 'data-call-id': r.id },
    h('button', { type: 'button', class: 'link', onclick: () => openCall(r.id) }, `${r.from_uri} → ${r.to_uri}`), ' ', h('span', { class: `state s-${r.state}` }, r.state))));
}

function connectLive() {
  if (!can('subscribe') || state.ws) return;
  const ws = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/subscribe`);
  state.ws = ws;
  // Reconnecting, it resumes from the last seq it saw and keeps its rows (no flicker); the gateway answers with
  // the deltas it missed, or a fresh snapshot when it cannot (resumed: false), or invalid_since (another node not
  // there yet, a new data dir): then it subscribes afresh.
  const subscribe = (since) => ws.send(JSON.stringify({ type: 'subscribe', id: 'live-calls', table: 'calls', filter: { state: ACTIVE }, ...(since === null ? {} : { since }) }));
  ws.onopen = () => { state.wsRetry = 0; subscribe(state.liveSeq); };
  ws.onmessage = (ev) => {
    let msg;
    try { msg = JSON.parse(ev.data); } catch { return; }
    if (msg.type === 'snapshot') { state.live.clear(); for (const r of msg.rows) state.live.set(r.id, r); }
    else if (msg.type === 'delta') { if (msg.old) state.live.delete(msg.old.id); if (msg.new) state.live.set(msg.new.id, msg.new); }
    else if (msg.type === 'error' && msg.code === 'invalid_since') { state.liveSeq = null; return subscribe(null); }
    else if (msg.type === 'error') { text($('live'), `Live: ${msg.message}`); return; }
    else if (msg.type !== 'resumed') return;
    state.liveSeq = msg.seq;
    renderLive();
  };
  ws.onclose = (ev) => {
    if (state.ws !== ws) return;
    state.ws = null;
    if (!state.me) return;
    if (ev.code === 4401) return signedOut('Your session was revoked. Sign in again.');
    renderLive(true);
    const delay = Math.min(30_000, 1000 * 2 ** state.wsRetry++);
    state.wsTimer = setTimeout(connectLive, delay);
  };
}

// ── calls list ───────────────────────────────────────────────────────────────
function filterQuery() {
  const params = new URLSearchParams();
  for (const [k, v] of new FormData($('filters'))) {
    const s = String(v).trim();
    if (!s || (k === 'q' && !can('content:read'))) continue;
    params.set(k, k === 'since' || k === 'until' ? new Date(s).toISOString() : s);
  }
  return params;
}

async function loadCalls(reset) {
  const epoch = state.epoch;
  if (reset) { state.query = filterQuery().toString(); state.cursor = null; }
  const params = new URLSearchParams(state.query);
  if (!reset && state.cursor) params.set('cursor', state.cursor);
  text($('calls-error'), ''); text($('calls-status'), 'Loading…');
  try {
    const r = await api('GET', `/v1/calls?${params}`);
    if (epoch !== state.epoch) return;
    if (reset) $('calls-body').replaceChildren();
    $('calls-body').append(...r.calls.map(callRow));
    state.cursor = r.next_cursor;
    $('more').hidden = !r.next_cursor;
    const shown = $('calls-body').rows.length;
    text($('calls-status'), shown === 0 ? 'No calls match.' : `${shown} call${shown === 1 ? '' : 's'} shown${r.next_cursor ? ' (more available)' : ''}.`);
  } catch (err) {
    text($('calls-status'), '');
    text($('calls-error'), err.message);
  }
}

/** m:ss (h:mm:ss past an hour). */
function mmss(ms) {
  const s = Math.max(0, Math.round(ms / 1000)), hh = Math.floor(s / 3600), mm = Math.floor((s % 3600) / 60), ss = String(s % 60).padStart(2, '0');
  return hh ? `${hh}:${String(mm).padStart(2, '0')}:${ss}` : `${mm}:${ss}`;
}
/** Talk time: answered → ended; a call never answered has none. */
function callDuration(c) {
  if (!c.ended_at) return ACTIVE.includes(c.state) ? 'in progress' : '—';
  if (!c.answered_at) return 'not answered';
  return mmss(new Date(c.ended_at).getTime() - new Date(c.answered_at).getTime());
}

function callRow(c) {
  return h('tr', { 'data-call-id': c.id },
    h('td', {}, when(c.received_at)), h('td', {}, c.from), h('td', {}, c.to), h('td', {}, c.agent ?? '—'),
    h('td', {}, h('span', { class: `state s-${c.state}` }, c.state)), h('td', {}, c.owner_node ? h('code', { class: 'id' }, c.owner_node) : '—'), h('td', { class: 'num' }, callDuration(c)), h('td', {}, c.consent), h('td', {}, c.recorded ? 'yes' : 'no'),
    h('td', {}, h('code', { class: 'id' }, c.id)),
    h('td', {}, h('button', { type: 'button', class: 'open', 'aria-label': `Open call from ${c.from} at ${new Date(c.received_at).toLocaleString()}`, onclick: () => openCall(c.id) }, 'Open')));
}

$('filters').addEventListener('submit', (e) => { e.preventDefault(); loadCalls(true); });
$('filters').addEventListener('reset', () => setTimeout(() => loadCalls(true), 0));
$('more').addEventListener('click', () => loadCalls(false));

// ── call detail ──────────────────────────────────────────────────────────────
const section = (title, ...body) => h('section', { class: 'part', 'aria-label': title }, h('h3', {}, title), ...body);
const table = (caption, head, rows) => rows.length === 0 ? h('p', { class: 'muted' }, `No ${caption.toLowerCase()}.`)
  : h('div', { class: 'scroll' }, h('table', {}, h('caption', { class: 'sr-only' }, caption),
    h('thead', {}, h('tr', {}, head.map((x) => h('th', { scope: 'col' }, x)))),
    h('tbody', {}, rows.map((r) => h('tr', {}, r.map((cell) => h('td', {}, cell)))))));
const dl = (pairs) => h('dl', { class: 'kv' }, pairs.flatMap(([k, v]) => [h('dt', {}, k), h('dd', {}, v ?? '—')]));

function closeDetail(focus = true) {
  state.openId = null;
  leaveSupervision();
  const audio = $('detail-body').querySelector('audio');
  if (audio) { audio.pause(); audio.removeAttribute('src'); audio.load(); }
  $('detail-body').replaceChildren();
  $('detail').hidden = true; $('calls').hidden = false;
  if (focus) $('calls-h').focus();
}
$('detail-close').addEventListener('click', () => { closeDetail(); setAddress(null); });

// ── addresses: /console#/calls/ID is that call (back and forward work) ──────
const CALL_ROUTE = /^#\/calls\/([^/?#]+)$/;
function callFromAddress() {
  const m = CALL_ROUTE.exec(location.hash);
  try { return m ? decodeURIComponent(m[1]) : null; } catch { return null; }
}
function setAddress(id, replace = false) {
  const want = id ? `#/calls/${enc(id)}` : '';
  if (location.hash === want) return;
  history[replace ? 'replaceState' : 'pushState'](null, '', want || location.pathname + location.search);
}
/** Shows what the address names, once signed in. */
function routeFromAddress() {
  if (!state.me) return;
  const id = callFromAddress();
  if (id && id !== state.openId) openCall(id);
  else if (!id && state.openId) closeDetail();
}
addEventListener('popstate', routeFromAddress);

async function openCall(id, { force = false } = {}) {
  const content = can('content:read');
  if (content && !(await askPurpose(force))) {
    if (callFromAddress() === id && state.openId !== id) setAddress(null, true);
    return;
  }
  const epoch = state.epoch;
  closeDetail(false);
  state.openId = id;
  setAddress(id);
  $('calls').hidden = true; $('access').hidden = true; $('detail').hidden = false;
  text($('detail-h'), 'Call'); text($('detail-error'), ''); text($('detail-status'), 'Loading…');
  $('detail-purpose').replaceChildren(...(content ? [`Purpose of access: ${purpose()} `, h('button', { type: 'button', onclick: () => openCall(id, { force: true }) }, 'Change purpose')] : []));
  $('detail-h').focus();
  try {
    const d = await api('GET', `/v1/calls/${enc(id)}`, { headers: content ? purposeHeader() : {} });
    if (epoch !== state.epoch || state.openId !== id) return;
    renderDetail(d);
    text($('detail-status'), '');
    if (content) await loadTranscript(id, epoch);
  } catch (err) {
    text($('detail-status'), '');
    text($('detail-error'), err.message);
  }
}

function renderDetail(d) {
  const c = d.call, p = enc(purpose() ?? ''), id = enc(c.id);
  text($('detail-h'), `Call from ${c.from_uri} to ${c.to_uri}`);
  const parts = [
    actionsPart(d, id, p),
    section('Summary', dl([['Call id', h('code', { class: 'id' }, c.id)], ['Provider', `${c.provider} (${c.provider_call_id})`], ['Direction', c.direction], ['Agent', `${c.agent ?? '—'}${c.agent_version ? ` ${c.agent_version}` : ''}`],
      ['State', c.state], ['Node', d.owner ? `${d.owner.node}${d.owner.state ? ` (${d.owner.state})` : ''}` : '—'], ['Duration', callDuration(c)], ['Received', when(c.received_at)], ['Answered', when(c.answered_at)], ['Ended', when(c.ended_at)], ['End reason', c.end_reason]])),
    section('Consent',
      d.policy ? dl([['Policy', `${d.policy.name} v${d.policy.version} (${d.policy.mode})`], ['Disclosure', d.policy.disclosure_text]]) : h('p', { class: 'muted' }, 'No consent policy applied.'),
      table('Consent decisions', ['Outcome', 'Mode', 'Method', 'Started', 'Decided', 'Evidence'],
        d.consents.map((k) => [k.outcome, k.mode, k.method ?? '—', when(k.started_at), when(k.decided_at), d.content ? json(k.evidence) : 'withheld']))),
    section('Recording', ...recordingPart(d, id, p)),
    // an erased call (crypto-shredded, README "Erasable content"): the note stands in place of its content
    section('Transcript', d.erasure ? h('p', { class: 'erased' }, `Content ${d.erasure.note}`) : d.content ? h('div', { id: 'transcript' }, h('p', { class: 'muted' }, 'Loading transcript…')) : h('p', { class: 'muted' }, `Your role (${state.me.role}) cannot read transcripts.`)),
    section('Agent actions', table('Agent actions', ['Created', 'Kind', 'Status', 'Request', 'Arguments', 'Result'],
      d.agent_actions.map((a) => [when(a.created_at), a.kind, a.status, a.request_id, d.erasure ? 'erased' : d.content ? json(a.args) : 'withheld', d.erasure ? 'erased' : d.content ? json(a.result) : 'withheld']))),
    section('Timeline', timelinePart(d.timeline)),
  ];
  $('detail-body').replaceChildren(...parts);
}

/** What a user does with a call, first on the page: download, export, hold, audit. */
function actionsPart(d, id, p) {
  const c = d.call, tools = [];
  const playable = [...d.recordings].reverse().find((r) => r.status === 'finalized');
  if (playable && d.content) tools.push(h('a', { class: 'button', href: `/v1/calls/${id}/recording?format=wav&purpose=${p}`, download: `recording-${c.id}.wav` }, 'Download recording'));
  if (can('evidence:export')) {
    tools.push(h('a', { class: 'button', href: `/v1/calls/${id}/evidence?purpose=${p}`, download: `evidence-${c.id}.zip` }, 'Download evidence pack'));
    tools.push(h('a', { class: 'button secondary', href: `/v1/calls/${id}/events?purpose=${p}`, download: `events-${c.id}.json` }, 'Download events with proof'));
  }
  const held = d.recordings.filter((r) => r.status !== 'purged');
  if (can('holds:write')) {
    for (const [i, r] of held.entries()) {
      const which = held.length > 1 ? ` (recording ${i + 1})` : '';
      tools.push(h('button', { type: 'button', 'data-recording-id': r.id, onclick: (e) => toggleHold(r, e.currentTarget, which) }, `${r.legal_hold ? 'Release legal hold' : 'Place legal hold'}${which}`));
    }
  }
  if (can('recording:pause') && ACTIVE.includes(c.state)) {
    tools.push(pciButton({ h, text, api }, c.id, { status: (m) => text($('detail-status'), m), fail: (m) => text($('detail-error'), m) }));
  }
  if (can('supervisor') && ACTIVE.includes(c.state)) {
    tools.push(superviseBar({ h, text, api }, c.id, { status: (m) => text($('detail-status'), m), fail: (m) => text($('detail-error'), m) }));
  }
  if (can('access_log:read')) tools.push(h('button', { type: 'button', class: 'secondary', onclick: () => showAccessLog(c.id) }, 'Show access log for this call'));
  if (tools.length === 0) return h('p', { class: 'muted' }, `Your role (${state.me.role}) has no actions on this call.`);
  return h('section', { class: 'part actions-bar', 'aria-label': 'Actions' }, h('h3', { class: 'sr-only' }, 'Actions'), h('div', { class: 'actions' }, tools));
}

// ── timeline: one readable line per event, its JSON behind a toggle ──────────
const plain = (v) => (v === null || v === undefined ? '' : typeof v === 'object' ? JSON.stringify(v) : String(v));
const EVENT_TEXT = {
  call_received: (x) => `Call received${x.from ? ` from ${plain(x.from)}` : ''}${x.to ? ` to ${plain(x.to)}` : ''}${x.provider ? ` (${plain(x.provider)})` : ''}`,
  call_answered: () => 'Call answered',
  call_ended: (x) => `Call ended${x.reason ? `: ${plain(x.reason)}` : ''}`,
  call_supervisor_joined: () => 'Supervisor joined (listening)',
  call_supervisor_mode_set: (x) => `Supervisor mode: ${plain(x.mode) === 'takeover' ? 'take over' : plain(x.mode)}`,
  call_supervisor_left: (x) => `Supervisor left${x.reason ? `: ${plain(x.reason)}` : ''}`,
  call_matrix_set: (x) => `Who hears whom changed${x.reason ? ` (${plain(x.reason)})` : ''}`,
  consent_started: () => 'Consent prompt started',
  consent_decided: (x) => `Consent ${plain(x.outcome).replace(/_/g, ' ')}${x.method ? ` by ${plain(x.method)}` : ''}`,
  consent_withdrawn: (x) => `Consent withdrawn${x.method ? ` by ${plain(x.method)}` : ''}`,
  recording_started: () => 'Recording started',
  recording_finalized: (x) => `Recording finalized${x.format ? ` (${plain(x.format)}${typeof x.duration_ms === 'number' ? `, ${mmss(x.duration_ms)}` : ''})` : ''}`,
  recording_failed: (x) => `Recording failed${x.reason ? `: ${plain(x.reason)}` : ''}`,
  recording_hold_set: (x) => (x.hold ? 'Legal hold placed' : 'Legal hold released'),
  transcript_appended: (x) => `Transcript line (${plain(x.channel) || 'speech'}${typeof x.start_ms === 'number' ? ` at ${clock(x.start_ms)}` : ''})`,
  agent_turn_started: (x) => `Agent ${plain(x.agent)}${x.version ? ` ${plain(x.version)}` : ''} turn ${plain(x.turn)}${x.kind ? ` (${plain(x.kind)})` : ''}`,
  agent_action_requested: (x) => `Agent action requested: ${plain(x.kind)}`,
  agent_action_completed: (x) => `Agent action ${x.ok === false ? 'failed' : 'completed'}`,
  recording_accessed: (x) => `Recording accessed${x.detail ? ` (${plain(x.detail)})` : ''}`,
  transcript_accessed: (x) => `Transcript read${x.detail ? ` (${plain(x.detail)})` : ''}`,
  evidence_exported: () => 'Evidence pack exported',
};
const sentence = (s) => s.charAt(0).toUpperCase() + s.slice(1);
function describeEvent(t) {
  const known = EVENT_TEXT[t.kind];
  return known ? known(t.detail ?? {}) : sentence(t.kind.replace(/_/g, ' '));
}

function timelinePart(entries) {
  if (entries.length === 0) return h('p', { class: 'muted' }, 'No events.');
  return h('ol', { class: 'timeline' }, entries.map((t) => h('li', { class: t.ok ? 'ev' : 'ev rejected', 'data-kind': t.kind },
    h('span', { class: 'ts' }, when(t.at)), ' ',
    h('span', { class: 'what' }, describeEvent(t)),
    t.ok ? '' : h('span', { class: 'badge bad' }, `refused: ${t.error}`), ' ',
    h('span', { class: 'by muted' }, `by ${who(t.by)}`),
    h('details', {}, h('summary', {}, `Event ${t.seq} as recorded`), h('code', { class: 'json' }, JSON.stringify({ kind: t.kind, ok: t.ok, error: t.error, by: t.by, detail: t.detail }, null, 2))))));
}

/** A command's caller as a person: `user:ID` → their e-mail when known. */
function who(caller) {
  const m = /^user:(.+)$/.exec(caller ?? '');
  return (m && state.users.get(m[1])) || caller;
}

function recordingPart(d, id, p) {
  if (d.recordings.length === 0) return [h('p', { class: 'muted' }, 'This call was not recorded.')];
  const out = [];
  const playable = [...d.recordings].reverse().find((r) => r.status === 'finalized');
  if (playable && d.content) {
    out.push(h('audio', { controls: true, preload: 'metadata', src: `/v1/calls/${id}/recording?format=wav&purpose=${p}`, 'aria-label': 'Call recording' },
      'Your browser cannot play this recording; download the evidence pack instead.'));
  } else if (!d.content) {
    out.push(h('p', { class: 'muted' }, `Your role (${state.me.role}) cannot listen to recordings.`));
  }
  out.push(table('Recordings', ['Recording', 'Status', 'Format', 'Duration', 'Retained until', 'Legal hold'], d.recordings.map((r) =>
    [r.id, r.status, r.format, duration(r.duration_ms), r.legal_hold ? 'held indefinitely' : when(r.retention_until), h('span', { class: 'hold', 'data-recording-id': r.id }, r.legal_hold ? 'on' : 'off')])));
  if (!can('holds:write')) out.push(h('p', { class: 'muted' }, `Your role (${state.me.role}) cannot place or release legal holds.`));
  return out;
}

async function toggleHold(rec, btn, which) {
  const on = !rec.legal_hold;
  btn.disabled = true;
  text($('detail-error'), '');
  try {
    const r = await api(on ? 'PUT' : 'DELETE', `/v1/recordings/${enc(rec.id)}/hold`);
    rec.legal_hold = r.legal_hold;
    const cell = [...document.querySelectorAll('.hold')].find((el) => el.dataset.recordingId === rec.id);
    if (cell) text(cell, r.legal_hold ? 'on' : 'off');
    text(btn, `${r.legal_hold ? 'Release legal hold' : 'Place legal hold'}${which}`);
    text($('detail-status'), r.legal_hold ? `Legal hold placed on recording ${rec.id}.` : `Legal hold released on recording ${rec.id}.`);
  } catch (err) {
    text($('detail-error'), err.message);
  } finally {
    btn.disabled = false;
  }
}

async function loadTranscript(id, epoch) {
  const r = await api('GET', `/v1/calls/${enc(id)}/transcript?format=json&purpose=${enc(purpose() ?? '')}`);
  const box = $('transcript');
  if (!box || epoch !== state.epoch || state.openId !== id) return;
  if (r.segments.length === 0) return box.replaceChildren(h('p', { class: 'muted' }, 'No transcript.'));
  box.replaceChildren(h('ol', { class: 'transcript' }, r.segments.map((s) =>
    h('li', { class: `seg ${s.channel}` }, h('span', { class: 'ts' }, `${clock(s.start_ms)}–${clock(s.end_ms)}`), ' ', h('strong', {}, `${s.speaker}:`), ' ', h('span', { class: 'said' }, s.text)))));
}

// ── access log ───────────────────────────────────────────────────────────────
/** Who read: the user's e-mail (joined by the server); a softphone reading its own call is the caller. */
function reader(e) {
  if (e.user_email) return e.user_email;
  if (/^webrtc:/.test(e.user_id)) return 'the caller (softphone)';
  return e.user_id;
}
async function showAccessLog(callId = null) {
  $('access').hidden = false;
  text($('access-h'), callId ? 'Access log for this call' : 'Access log (latest 100)');
  text($('access-caption'), $('access-h').textContent);
  text($('access-error'), '');
  $('access-body').replaceChildren();
  $('access-h').focus();
  try {
    const r = await api('GET', `/v1/access-log?limit=100${callId ? `&call_id=${enc(callId)}` : ''}`);
    $('access-body').replaceChildren(...r.entries.map((e) => h('tr', {},
      h('td', {}, when(e.at)), h('td', {}, reader(e)), h('td', {}, e.action.replace(/_/g, ' ')),
      h('td', {}, h('button', { type: 'button', class: 'link', onclick: () => openCall(e.call_id) }, e.call_id)),
      h('td', {}, e.detail ?? '—'), h('td', { class: 'reason' }, e.reason ?? '(none given)'), h('td', {}, e.remote ?? '—'))));
    if (r.entries.length === 0) $('access-body').append(h('tr', {}, h('td', { colspan: 7, class: 'muted' }, 'No accesses recorded.')));
  } catch (err) {
    text($('access-error'), err.message);
  }
}
$('show-access-log').addEventListener('click', () => showAccessLog());
$('access-close').addEventListener('click', () => { $('access').hidden = true; });

// ── start ────────────────────────────────────────────────────────────────────
api('GET', '/v1/auth/me', { signIn: true }).then(signedIn, () => showSignIn());
