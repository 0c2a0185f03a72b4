// The console's cluster view: the nodes panel. It lists the gateway's nodes as `GET /v1/cluster/nodes` gives them
// (api/routes/cluster.ts): id (and which one answered), state alive | draining | lost | stopped, version, start,
// last heartbeat, lease, and why a node is down. Refreshed every few seconds while signed in, and on "Refresh".
// The list is deployment-wide, so only admins of the operator tenant may read it: for anyone else (403) the panel
// stays hidden and polling stops. Rendered as text nodes only, like the rest of the console (app.js).
//
//   signedIn ─► start() ─► load ─► 200: table + summary ─► every REFRESH_MS again
//                               └► 403: hidden, stopped      signedOut ─► stop()
'use strict';

const REFRESH_MS = 5000;

/** `deps`: the console's own helpers (app.js): $, h, text, when and the JSON api. */
export function nodesPanel({ $, h, text, when, api }) {
  let timer = 0;
  let epoch = 0;

  function row(n) {
    const lease = n.lease_until === null ? (n.state === 'alive' || n.state === 'draining' ? 'no expiry' : '—') : when(n.lease_until);
    return h('tr', { 'data-node-id': n.id },
      h('td', {}, h('code', { class: 'id' }, n.id), n.self ? h('span', { class: 'muted' }, ' (this node)') : null),
      h('td', {}, h('span', { class: `state n-${n.state}` }, n.state)),
      h('td', {}, n.version), h('td', {}, when(n.started_at)), h('td', {}, when(n.last_heartbeat_at)), h('td', {}, lease),
      h('td', {}, n.down_reason ?? (n.drain_until ? ['draining until ', when(n.drain_until)] : '—')));
  }

  function summary(r) {
    const counts = {};
    for (const n of r.nodes) counts[n.state] = (counts[n.state] ?? 0) + 1;
    const parts = Object.entries(counts).map(([s, k]) => `${k} ${s}`).join(', ');
    const mode = r.mode === 'embedded' ? 'Embedded (one node, no cluster)' : 'Cluster';
    return `${mode}: ${r.nodes.length} node${r.nodes.length === 1 ? '' : 's'}${parts ? ` (${parts})` : ''}; this console is served by ${r.self}.`;
  }

  async function load(e) {
    try {
      const r = await api('GET', '/v1/cluster/nodes');
      if (e !== epoch) return;
      $('nodes').hidden = false;
      text($('nodes-error'), '');
      text($('nodes-status'), summary(r));
      $('nodes-body').replaceChildren(...r.nodes.map(row));
    } catch (err) {
      if (e !== epoch) return;
      if (err.status === 403 || err.status === 401) return stop();
      text($('nodes-error'), err.message);
    }
  }

  function stop() {
    epoch++;
    clearInterval(timer);
    timer = 0;
    $('nodes').hidden = true;
    $('nodes-body').replaceChildren();
    text($('nodes-status'), '');
    text($('nodes-error'), '');
  }

  function start() {
    stop();
    const e = epoch;
    void load(e);
    timer = setInterval(() => void load(e), REFRESH_MS);
  }

  $('nodes-refresh').addEventListener('click', () => void load(epoch));
  return { start, stop };
}
