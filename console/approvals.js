// The console's pending tool approvals panel (users with `tools:approve`: admin, compliance). An agent's tool that
// needs approval holds its turn until someone decides (bridge/tool-gate.ts); the requests arrive live over
// `WS /v1/subscribe` (table `tool_approvals`, filter status = pending: a snapshot, then deltas) and each row offers
// Approve and Deny with an optional reason (`POST /v1/tool-approvals/:id/approve|deny`; the row keeps who and why).
// A decided, expired or cancelled request leaves the list by its delta. Rendered as text nodes only (app.js).
//
//   signedIn ─► start() ─► socket: subscribe tool_approvals {status: pending} ─► snapshot / deltas ─► table
//                          Approve / Deny ─► POST … ─► the delta removes the row     signedOut ─► stop()
'use strict';

/** `deps`: the console's own helpers (app.js): $, h, text, when, json and the JSON api. */
export function approvalsPanel({ $, h, text, when, json, api }) {
  const pending = new Map();
  let ws = null;
  let retry = 0;
  let timer = 0;
  let on = false;

  function decide(id, decision, reasonInput, buttons) {
    const reason = reasonInput.value.trim();
    for (const b of buttons) b.disabled = true;
    api('POST', `/v1/tool-approvals/${encodeURIComponent(id)}/${decision}`, { body: reason ? { reason } : {} })
      .then((r) => text($('approvals-status'), `${r.tool ?? 'Tool'} ${r.status ?? decision} (${id}).`))
      .catch((err) => { text($('approvals-error'), err.message); for (const b of buttons) b.disabled = false; });
  }

  function row(a) {
    const reason = h('input', { type: 'text', maxlength: '1000', 'aria-label': `Reason for ${a.tool} (${a.id})`, placeholder: 'reason (optional)' });
    const approve = h('button', { type: 'button' }, 'Approve');
    const deny = h('button', { type: 'button' }, 'Deny');
    approve.addEventListener('click', () => decide(a.id, 'approve', reason, [approve, deny]));
    deny.addEventListener('click', () => decide(a.id, 'deny', reason, [approve, deny]));
    return h('tr', { 'data-approval-id': a.id },
      h('td', {}, when(a.requested_at)), h('td', {}, h('code', {}, a.tool)), h('td', {}, json(a.args)),
      h('td', {}, h('a', { href: `#/calls/${encodeURIComponent(a.call_id)}` }, h('code', { class: 'id' }, a.call_id))),
      h('td', {}, a.agent), h('td', {}, when(a.expires_at)), h('td', {}, reason, ' ', approve, ' ', deny));
  }

  function render() {
    const rows = [...pending.values()].sort((x, y) => x.requested_at - y.requested_at);
    $('approvals-body').replaceChildren(...rows.map(row));
    $('approvals-empty').hidden = rows.length > 0;
    text($('approvals-count'), rows.length ? `(${rows.length})` : '');
  }

  function connect() {
    if (!on || ws) return;
    const sock = new WebSocket(`${location.protocol === 'https:' ? 'wss:' : 'ws:'}//${location.host}/v1/subscribe`);
    ws = sock;
    sock.onopen = () => { retry = 0; sock.send(JSON.stringify({ type: 'subscribe', id: 'pending-approvals', table: 'tool_approvals', filter: { status: 'pending' } })); };
    sock.onmessage = (ev) => {
      let msg;
      try { msg = JSON.parse(ev.data); } catch { return; }
      if (msg.type === 'snapshot') { pending.clear(); for (const r of msg.rows) pending.set(r.id, r); }
      else if (msg.type === 'delta') {
        const gone = msg.old ?? msg.new;
        if (gone) pending.delete(gone.id);
        if (msg.new && msg.new.status === 'pending') pending.set(msg.new.id, msg.new);
      } else if (msg.type === 'error') return void text($('approvals-error'), msg.message);
      else return;
      text($('approvals-error'), '');
      render();
    };
    sock.onclose = () => {
      if (ws !== sock) return;
      ws = null;
      if (!on) return;
      text($('approvals-error'), 'Live updates lost; reconnecting…');
      timer = setTimeout(connect, Math.min(30_000, 1000 * 2 ** retry++));
    };
  }

  function stop() {
    on = false;
    clearTimeout(timer);
    if (ws) { const s = ws; ws = null; s.close(1000, 'closed'); }
    pending.clear();
    $('approvals').hidden = true;
    $('approvals-body').replaceChildren();
    text($('approvals-status'), '');
    text($('approvals-error'), '');
  }

  function start() {
    stop();
    on = true;
    $('approvals').hidden = false;
    render();
    connect();
  }

  return { start, stop };
}
