// The console's campaigns panel (users with `calls:read` and `subscribe`): each campaign's progress, live over
// `WS /v1/subscribe` (table `campaigns`: a snapshot, then a delta at every decision and every call's end), with
// Pause / Resume / Cancel for those who may place calls (`POST /v1/campaigns/:id/pause|resume|cancel`). Hidden while
// the tenant has no campaign, and placed below the call detail, so it never pushes a call's page down. Rendered as
// text nodes only (app.js).
//
//   signedIn ─► start(canControl) ─► socket: subscribe campaigns ─► snapshot / deltas ─► table     signedOut ─► stop()
'use strict';

/** `deps`: the console's own helpers (app.js): $, h, text, when and the JSON api. */
export function campaignsPanel({ $, h, text, when, api }) {
  const rows = new Map();
  let ws = null;
  let retry = 0;
  let timer = 0;
  let on = false;
  let control = false;

  function act(id, action, button) {
    button.disabled = true;
    api('POST', `/v1/campaigns/${encodeURIComponent(id)}/${action}`)
      .then((c) => text($('campaigns-status'), `Campaign ${c.name || c.id}: ${c.state}.`))
      .catch((err) => { text($('campaigns-error'), err.message); button.disabled = false; });
  }

  function row(c) {
    const actions = [];
    if (control && (c.state === 'running' || c.state === 'paused')) {
      for (const action of [c.state === 'running' ? 'pause' : 'resume', 'cancel']) {
        const b = h('button', { type: 'button' }, action[0].toUpperCase() + action.slice(1));
        b.addEventListener('click', () => act(c.id, action, b));
        actions.push(b, ' ');
      }
    }
    return h('tr', { 'data-campaign-id': c.id },
      h('td', {}, c.name || h('code', { class: 'id' }, c.id)), h('td', {}, c.state),
      h('td', {}, `${c.numbers_finished} / ${c.numbers_total}`), h('td', {}, String(c.numbers_answered)), h('td', {}, String(c.numbers_dnc)),
      h('td', {}, `${c.live} / ${c.max_concurrent}`), h('td', {}, `${c.calls_per_second}/s`),
      h('td', {}, `${c.window_start}–${c.window_end} ${c.timezone}`), h('td', {}, when(c.created_at)), h('td', {}, ...actions));
  }

  function render() {
    const list = [...rows.values()].sort((x, y) => y.created_at - x.created_at);
    $('campaigns-body').replaceChildren(...list.map(row));
    $('campaigns-empty').hidden = list.length > 0;
    $('campaigns').hidden = list.length === 0; // shown once the tenant has a campaign
  }

  function connect() {
    if (!on || ws) return;
    const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/subscribe`);
    ws = sock;
    sock.onopen = () => { retry = 0; sock.send(JSON.stringify({ type: 'subscribe', id: 'campaigns', table: 'campaigns' })); };
    sock.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'snapshot') { rows.clear(); for (const r of msg.rows) rows.set(r.id, r); }
      else if (msg.type === 'delta') {
        if (msg.new) rows.set(msg.new.id, msg.new);
        else if (msg.old) rows.delete(msg.old.id);
      } else if (msg.type === 'error') return void text($('campaigns-error'), msg.message);
      else return;
      text($('campaigns-error'), '');
      render();
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (!on) return;
      text($('campaigns-error'), 'Live updates lost; reconnecting…');
      timer = setTimeout(connect, Math.min(30_000, 1000 * 2 ** retry++));
    };
  }

  function stop() {
    on = false;
    clearTimeout(timer);
    if (ws) { const s = ws; ws = null; s.close(1000, 'closed'); }
    rows.clear();
    $('campaigns').hidden = true;
    $('campaigns-body').replaceChildren();
    text($('campaigns-status'), '');
    text($('campaigns-error'), '');
  }

  function start(canControl) {
    stop();
    on = true;
    control = canControl;
    render();
    connect();
  }

  return { start, stop };
}
