// The console's PCI pause control on a live call: "Pause recording (PCI)" / "Resume recording", for roles with
// `recording:pause` (admin, compliance). The server holds the state: the button reads the call's pauses
// (`GET /v1/calls/:id/recording/pauses`; an open one has no `resumed_at`) and posts
// `POST /v1/calls/:id/recording/pause|resume`; the node carrying the call's media pauses its recorder and
// transcript on the row (bridge/pci-pause.ts). Rendered as text nodes only (app.js).
//
//   button (Checking…) ─► GET pauses ─► "Pause recording (PCI)" | "Resume recording" ─► click ─► POST ─► label flips
'use strict';

/** `deps`: the console's own helpers (app.js): h, text and the JSON api; `status(msg)` / `fail(msg)` report. */
export function pciButton({ h, text, api }, callId, { status, fail }) {
  const enc = encodeURIComponent;
  let paused = null;
  const label = () => (paused === null ? 'Recording pause…' : paused ? 'Resume recording' : 'Pause recording (PCI)');
  const btn = h('button', { type: 'button', class: 'secondary', 'data-pci': 'toggle', disabled: true }, label());
  const show = () => {
    text(btn, label());
    btn.disabled = paused === null;
    btn.dataset.paused = paused ? 'true' : 'false';
  };
  api('GET', `/v1/calls/${enc(callId)}/recording/pauses`)
    .then((r) => {
      paused = r.pauses.some((x) => x.resumed_at === null);
      show();
    })
    .catch((err) => fail(err.message));
  btn.addEventListener('click', async () => {
    const verb = paused ? 'resume' : 'pause';
    btn.disabled = true;
    try {
      const r = await api('POST', `/v1/calls/${enc(callId)}/recording/${verb}`, { body: verb === 'pause' ? { reason: 'pci' } : {} });
      paused = r.resumed_at === null;
      status(paused ? `Recording and transcription paused (PCI) by ${r.paused_by}.` : `Recording resumed after ${Math.round((r.duration_ms ?? 0) / 1000)} s.`);
    } catch (err) {
      fail(err.message);
    } finally {
      show();
    }
  });
  return btn;
}
