// The console's supervisor controls on a live call (issue 16), for roles with `supervisor` (admin): join the call
// from this browser over WebRTC (the microphone, an <audio> element for what the supervisor hears), then switch
// mode live. The server holds the state and writes every step (api/routes/supervise.ts, bridge/supervisor.ts):
//
//   Listen ─► POST /v1/calls/:id/supervise {sdp: offer with all candidates} ─► {supervision_id, sdp: answer}
//   Listen | Whisper | Take over ─► POST /v1/calls/:id/supervise/:sid/mode {mode}   (Hand back = listen after take over)
//   Leave  ─► DELETE /v1/calls/:id/supervise/:sid, the peer connection closed (closing the tab ends it too)
//
// Rendered as text nodes only (app.js helpers).
'use strict';

const LABEL = { listen: 'Listen', whisper: 'Whisper', takeover: 'Take over' };
/** The bars joined now (leaving the call's page leaves them: `leaveSupervision`). */
const joinedBars = new Set();

/** Leaves every supervision this page joined (the call's page was closed). */
export function leaveSupervision() {
  for (const leave of [...joinedBars]) leave();
}

/** `deps`: the console's helpers (h, text, api); `status(msg)` / `fail(msg)` report on the call's page. */
export function superviseBar({ h, text, api }, callId, { status, fail }) {
  const enc = encodeURIComponent;
  let pc = null, stream = null, sid = null, mode = null, busy = false;
  const audio = h('audio', { autoplay: true, 'data-supervise': 'audio' });
  const btn = (what, label) => h('button', { type: 'button', class: 'secondary', 'data-supervise': what, onclick: () => act(what) }, label);
  const buttons = {
    listen: btn('listen', 'Listen'),
    whisper: btn('whisper', 'Whisper'),
    takeover: btn('takeover', 'Take over'),
    handback: btn('handback', 'Hand back'),
    leave: btn('leave', 'Leave'),
  };
  const show = () => {
    for (const [what, b] of Object.entries(buttons)) {
      const joined = sid !== null;
      b.hidden = what === 'handback' ? mode !== 'takeover' : what === 'leave' ? !joined : what === 'listen' ? false : !joined;
      b.disabled = busy;
      if (LABEL[what]) b.setAttribute('aria-pressed', String(mode === what));
    }
    text(buttons.listen, sid === null ? 'Listen (join)' : 'Listen');
  };

  async function join() {
    stream = await navigator.mediaDevices.getUserMedia({ audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true } });
    const cfg = await fetch('/webrtc/config').then((r) => r.json()).catch(() => ({ iceServers: [] }));
    pc = new RTCPeerConnection({ iceServers: cfg.iceServers ?? [] });
    for (const track of stream.getAudioTracks()) pc.addTransceiver(track, { direction: 'sendrecv', streams: [stream] });
    pc.createDataChannel('switchboard');
    pc.ontrack = (e) => {
      audio.srcObject = e.streams[0] ?? new MediaStream([e.track]);
      void audio.play().catch(() => undefined);
    };
    pc.onconnectionstatechange = () => {
      if (pc && (pc.connectionState === 'failed' || pc.connectionState === 'closed')) { hangUp(); status('Supervision ended: the connection closed.'); }
    };
    await pc.setLocalDescription(await pc.createOffer());
    await new Promise((resolve) => {
      if (pc.iceGatheringState === 'complete') return resolve();
      const t = setTimeout(resolve, 3000);
      pc.addEventListener('icegatheringstatechange', () => { if (pc.iceGatheringState === 'complete') { clearTimeout(t); resolve(); } });
    });
    try {
      const r = await api('POST', `/v1/calls/${enc(callId)}/supervise`, { body: { sdp: pc.localDescription.sdp } });
      await pc.setRemoteDescription({ type: 'answer', sdp: r.sdp });
      sid = r.supervision_id;
      mode = r.mode;
      joinedBars.add(leaveNow);
    } catch (err) {
      hangUp();
      throw err;
    }
  }

  function leaveNow() {
    if (sid !== null) void api('DELETE', `/v1/calls/${enc(callId)}/supervise/${enc(sid)}`).catch(() => undefined);
    hangUp();
  }

  function hangUp() {
    joinedBars.delete(leaveNow);
    pc?.close();
    for (const t of stream?.getTracks() ?? []) t.stop();
    pc = null; stream = null; sid = null; mode = null;
    audio.srcObject = null;
    show();
  }

  async function act(what) {
    if (busy) return;
    busy = true; show();
    try {
      if (what === 'listen' && sid === null) {
        await join();
        status('Listening: you hear the caller and the agent; nobody hears you.');
      } else if (what === 'leave') {
        const id = sid;
        hangUp();
        await api('DELETE', `/v1/calls/${enc(callId)}/supervise/${enc(id)}`);
        status('You left the call.');
      } else {
        const want = what === 'handback' ? 'listen' : what;
        const r = await api('POST', `/v1/calls/${enc(callId)}/supervise/${enc(sid)}/mode`, { body: { mode: want } });
        mode = r.mode;
        status(what === 'handback' ? 'Handed back: the agent has the call again; you are listening.'
          : mode === 'whisper' ? 'Whispering: the agent hears you as an instruction; the caller does not.'
            : mode === 'takeover' ? 'You have the call: the agent is paused, the caller hears you.' : 'Listening.');
      }
    } catch (err) {
      fail(err.message);
    } finally {
      busy = false; show();
    }
  }

  addEventListener('pagehide', leaveNow);
  show();
  return h('span', { class: 'supervise', 'data-supervise': 'bar' }, buttons.listen, buttons.whisper, buttons.takeover, buttons.handback, buttons.leave, audio);
}
