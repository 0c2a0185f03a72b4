// The console's agents panel: each agent with its live versions, numbers, live calls and whether it is paused
// (`GET /v1/agents`; the open pause says who paused it, when and why). Users who may deploy agents (admin,
// developer: `agents:deploy`) get a Pause / Resume control per agent (`POST /v1/agents/:name/pause|resume`; a
// pause asks for a reason and whether live calls keep the agent). Shown to anyone with `agents:read`; refreshed
// every few seconds while signed in, after each control and on "Refresh". Rendered as text nodes only (app.js).
//
//   signedIn ─► start(mayPause) ─► load ─► table ─► every REFRESH_MS again        signedOut ─► stop()
//   Pause ─► reason + keep-live (the row's form) ─► POST pause ─► load     Resume ─► POST resume ─► load
'use strict';

const REFRESH_MS = 5000;

/** `deps`: the console's own helpers (app.js): $, h, text, when and the JSON api. */
export function agentsPanel({ $, h, text, when, api }) {
  let timer = 0;
  let epoch = 0;
  let mayPause = false;

  async function act(name, verb, body) {
    try {
      await api('POST', `/v1/agents/${encodeURIComponent(name)}/${verb}`, { body: body ?? {} });
      text($('agents-error'), '');
    } catch (err) {
      text($('agents-error'), err.message);
    }
    await load(epoch, true);
  }

  function pauseForm(a) {
    const reason = h('input', { type: 'text', maxlength: '500', placeholder: 'Reason', 'aria-label': `Why pause ${a.name}` });
    const keep = h('input', { type: 'checkbox', 'aria-label': 'Live calls keep the agent' });
    const form = h('form', { class: 'inline', 'data-agent': a.name },
      reason, h('label', {}, keep, ' live calls keep it'), h('button', { type: 'submit' }, 'Pause'));
    form.addEventListener('submit', (e) => {
      e.preventDefault();
      void act(a.name, 'pause', { reason: reason.value.trim(), keep_live: keep.checked });
    });
    return form;
  }

  function control(a) {
    if (!mayPause) return '—';
    if (!a.paused) return pauseForm(a);
    const b = h('button', { type: 'button', 'data-agent': a.name }, 'Resume');
    b.addEventListener('click', () => void act(a.name, 'resume'));
    return b;
  }

  function status(a) {
    if (!a.paused) return h('span', { class: 'state' }, 'serving');
    const p = a.paused;
    return [h('span', { class: 'state paused' }, 'paused'), h('span', { class: 'muted' },
      ` by ${p.paused_by}, ${when(p.paused_at)}${p.reason ? ` — ${p.reason}` : ''}${p.keep_live ? ' (live calls kept)' : ''}`)];
  }

  function row(a) {
    const live = a.versions.filter((v) => v.status === 'live').map((v) => `${v.version} ${v.rollout}%`).join(', ') || '—';
    return h('tr', { 'data-agent': a.name },
      h('td', {}, h('code', {}, a.name)), h('td', {}, status(a)), h('td', {}, live), h('td', {}, a.numbers.join(', ') || '—'),
      h('td', {}, String(a.live_calls)), h('td', {}, control(a)));
  }

  async function load(e, force = false) {
    try {
      const r = await api('GET', '/v1/agents');
      if (e !== epoch) return;
      $('agents').hidden = false;
      const paused = r.agents.filter((a) => a.paused).length;
      text($('agents-status'), `${r.agents.length} agent${r.agents.length === 1 ? '' : 's'}${paused ? `, ${paused} paused` : ''}.`);
      // A pause form being filled in is not replaced under the user's hands.
      if (!force && $('agents-body').contains(document.activeElement)) return;
      $('agents-body').replaceChildren(...r.agents.map(row));
    } catch (err) {
      if (e !== epoch) return;
      if (err.status === 403 || err.status === 401) return stop();
      text($('agents-error'), err.message);
    }
  }

  function stop() {
    epoch++;
    clearInterval(timer);
    timer = 0;
    $('agents').hidden = true;
    $('agents-body').replaceChildren();
    text($('agents-status'), '');
    text($('agents-error'), '');
  }

  function start(canPause) {
    stop();
    mayPause = canPause;
    const e = epoch;
    void load(e);
    timer = setInterval(() => void load(e), REFRESH_MS);
  }

  $('agents-refresh').addEventListener('click', () => void load(epoch));
  return { start, stop };
}
