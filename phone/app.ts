/**
 * The softphone page (GET /phone): dial a number (or the demo agent), talk,
 * mute, keypad, hang up, follow the live transcript, and open the call in the
 * console when it ends. While consent is pending the page says what to do
 * (say yes or press 1); when the call ends it says why, from the end reason
 * the gateway recorded (the subscription's call row); the console link opens
 * that call (`/console#/calls/ID`). Built on the SDK (sdk.ts); renders with
 * DOM APIs only (no HTML strings), so it runs under the strict CSP.
 */
import { SwitchboardCall } from './sdk.ts';

const $ = <T extends HTMLElement>(id: string): T => {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} missing`);
  return el as T;
};

const ui = {
  dial: $<HTMLFormElement>('dial'),
  to: $<HTMLInputElement>('to'),
  call: $<HTMLButtonElement>('call'),
  directory: $<HTMLDataListElement>('directory'),
  incall: $('incall'),
  callee: $('callee'),
  status: $('status'),
  timer: $('timer'),
  recording: $('recording'),
  consentHint: $('consent-hint'),
  mute: $<HTMLButtonElement>('mute'),
  hangup: $<HTMLButtonElement>('hangup'),
  ended: $('ended'),
  endedText: $('ended-text'),
  endedReason: $('ended-reason'),
  endedCall: $('ended-call'),
  consoleLink: $<HTMLAnchorElement>('console-link'),
  again: $<HTMLButtonElement>('again'),
  error: $('error'),
  remote: $<HTMLAudioElement>('remote'),
  transcript: $<HTMLOListElement>('transcript'),
  transcriptEmpty: $('transcript-empty'),
};

let call: SwitchboardCall | null = null;
let connectedAt = 0;
let ticker: number | null = null;

const STATUS: Record<string, string> = {
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  ended: 'Call ended',
};

function show(view: 'dial' | 'incall' | 'ended'): void {
  ui.dial.hidden = view !== 'dial';
  ui.incall.hidden = view !== 'incall';
  ui.ended.hidden = view !== 'ended';
}

function clock(): void {
  const s = connectedAt ? Math.floor((Date.now() - connectedAt) / 1000) : 0;
  ui.timer.textContent = `${String(Math.floor(s / 60)).padStart(2, '0')}:${String(s % 60).padStart(2, '0')}`;
}

/** What the caller is asked while consent is pending, by the policy's mode (consent/stage.ts says the same). */
const CONSENT_HINT: Record<string, string> = {
  'opt-in': 'To agree to the recording, say yes or press 1. To decline, say no or press 2.',
  'opt-out': 'If you do not agree to the recording, say no or press 2.',
};

/** Why a call ended, in words, from the gateway's end reason (the raw reason is kept in brackets). */
function endReasonText(reason: string): string | null {
  if (reason === 'webrtc:hangup' || reason === 'hung up') return null; // the caller's own hang-up needs no explanation
  if (reason.includes('media never connected')) {
    return 'The call could not connect: no audio from your browser reached the gateway (webrtc: media never connected). A firewall, VPN or proxy may be blocking it.';
  }
  if (reason === 'webrtc: not resumed') return 'The connection was lost and not restored in time (webrtc: not resumed).';
  if (/^consent /.test(reason)) return `The call ended because the recording was not agreed to (${reason}).`;
  return `Reason: ${reason}`;
}

function renderEnded(c: SwitchboardCall): void {
  const why = endReasonText(c.info.end_reason ?? c.endReason);
  ui.endedReason.textContent = why ?? '';
  ui.endedReason.hidden = !why;
}

function renderRecording(c: SwitchboardCall): void {
  const consent = c.info.consent;
  const hint = consent === 'pending' && c.state !== 'ended' ? CONSENT_HINT[c.info.consent_mode ?? ''] : undefined;
  ui.consentHint.textContent = hint ?? '';
  ui.consentHint.hidden = !hint;
  if (c.state === 'ended') renderEnded(c);
  ui.recording.className = 'badge';
  if (consent === 'granted') {
    ui.recording.textContent = 'Recording: on';
    ui.recording.classList.add('on');
  } else if (consent === 'declined' || consent === 'no_response' || consent === 'withdrawn') {
    ui.recording.textContent = consent === 'withdrawn' ? 'Recording: stopped' : 'Recording: off (declined)';
    ui.recording.classList.add('off');
  } else {
    ui.recording.textContent = 'Recording: waiting for consent';
  }
}

function addLine(channel: 'caller' | 'agent', text: string, startMs: number): void {
  ui.transcriptEmpty.hidden = true;
  const li = document.createElement('li');
  li.className = `line ${channel}`;
  li.dataset.start = String(startMs);
  const who = document.createElement('span');
  who.className = 'speaker';
  who.textContent = channel === 'agent' ? 'Agent' : 'You';
  li.append(who, document.createTextNode(text));
  const after = [...ui.transcript.children].find((el) => Number((el as HTMLElement).dataset.start) > startMs);
  ui.transcript.insertBefore(li, after ?? null);
  ui.transcript.scrollTop = ui.transcript.scrollHeight;
}

function onState(c: SwitchboardCall): void {
  ui.status.textContent = STATUS[c.state] ?? c.state;
  if (c.state === 'connected' && !connectedAt) connectedAt = Date.now();
  ui.mute.setAttribute('aria-pressed', String(c.isMuted));
  ui.mute.setAttribute('aria-label', c.isMuted ? 'Unmute' : 'Mute');
  if (c.state !== 'ended') return;
  if (ticker !== null) clearInterval(ticker);
  ticker = null;
  // A call that never connected says why (the gateway's end reason, e.g. "webrtc: media never connected").
  const why = !connectedAt && c.endReason && c.endReason !== 'hung up' ? `: ${c.endReason}` : '';
  ui.endedText.textContent = `Call ended${connectedAt ? ` after ${ui.timer.textContent}` : why}`;
  ui.endedCall.textContent = c.callId || '—';
  ui.consoleLink.href = c.callId ? `/console#/calls/${encodeURIComponent(c.callId)}` : '/console';
  ui.consoleLink.hidden = !c.callId;
  ui.consentHint.hidden = true;
  renderEnded(c);
  show('ended');
}

async function start(): Promise<void> {
  ui.error.textContent = '';
  ui.call.disabled = true;
  const to = ui.to.value.trim();
  ui.callee.textContent = to || 'Demo agent';
  ui.transcript.replaceChildren();
  ui.transcriptEmpty.hidden = false;
  connectedAt = 0;
  clock();
  show('incall');
  ui.status.textContent = 'Connecting…';
  try {
    const c = await SwitchboardCall.start({ to, audio: ui.remote });
    call = c;
    c.hangupOnUnload();
    c.addEventListener('state', () => onState(c));
    c.addEventListener('info', () => renderRecording(c));
    c.addEventListener('transcript', (e) => {
      const line = (e as CustomEvent<{ channel: 'caller' | 'agent'; text: string; start_ms: number }>).detail;
      addLine(line.channel, line.text, line.start_ms);
    });
    ticker = window.setInterval(clock, 500);
    onState(c);
    renderRecording(c);
  } catch (err) {
    show('dial');
    ui.error.textContent = err instanceof Error ? err.message : String(err);
  } finally {
    ui.call.disabled = false;
  }
}

ui.dial.addEventListener('submit', (e) => {
  e.preventDefault();
  void start();
});
ui.hangup.addEventListener('click', () => void call?.hangup());
ui.mute.addEventListener('click', () => call?.setMuted(!call.isMuted));
ui.again.addEventListener('click', () => {
  call = null;
  show('dial');
  ui.to.focus();
});
for (const key of document.querySelectorAll<HTMLButtonElement>('.key')) {
  key.addEventListener('click', () => call?.sendDtmf(key.dataset.key ?? ''));
}
document.addEventListener('keydown', (e) => {
  if (ui.incall.hidden || e.target instanceof HTMLInputElement) return;
  if (/^[0-9*#]$/.test(e.key)) call?.sendDtmf(e.key);
});

// Numbers open to browsers, for the picker.
void fetch('/webrtc/directory')
  .then((r) => (r.ok ? (r.json() as Promise<{ numbers: Array<{ number: string; agent: string }> }>) : { numbers: [] }))
  .then(({ numbers }) => {
    for (const n of numbers) {
      const opt = document.createElement('option');
      opt.value = n.number;
      opt.label = `${n.number} — agent ${n.agent}`;
      ui.directory.append(opt);
    }
  })
  .catch(() => undefined);
