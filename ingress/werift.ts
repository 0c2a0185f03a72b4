/**
 * werift (WebRTC, DTLS, SRTP in JavaScript: ~150 modules, most of a second of CPU to load), loaded on first use
 * instead of at every start. Shared by the SIP adapter (SDES-SRTP ciphers, sip/srtp.ts) and the WebRTC adapter
 * (which loads its peer module, and werift with it, the same way: webrtc/index.ts).
 *
 *   start ─► listening ─► adapters' warm() ─► loadWerift() in the background (the restart does not wait for it)
 *   first SRTP call / resumed SRTP call ─► await loadWerift() ─► werift() (sync, from then on)
 *
 * `werift()` throws when nothing awaited `loadWerift()` first: every path that builds an SRTP context awaits it —
 * sip/app.ts holds back an INVITE or UPDATE whose SDP has RTP/SAVP until werift is loaded, sip/new-call.ts awaits it
 * for a late offer's SRTP answer, sip/uac.ts for an outbound call's SRTP answer, sip/resume.ts for a resumed SRTP
 * call (before its media starts); webrtc/index.ts imports its peer module (and werift) on the first offer.
 */
type Werift = typeof import('werift');

let loaded: Werift | null = null;
let loading: Promise<Werift> | null = null;

/** Loads werift once (later calls share the same promise); a failed load is retried by the next call. */
export function loadWerift(): Promise<Werift> {
  loading ??= import('werift').then(
    (m) => (loaded = m),
    (err: unknown) => {
      loading = null;
      throw err;
    },
  );
  return loading;
}

/** Whether `loadWerift()` has resolved (a caller that can wait: `if (!weriftLoaded()) await loadWerift()`). */
export function weriftLoaded(): boolean {
  return loaded !== null;
}

/** werift, once `loadWerift()` has resolved. */
export function werift(): Werift {
  if (!loaded) throw new Error('werift is not loaded yet: await loadWerift() before building an SRTP context');
  return loaded;
}

/** Whether an SDP body may agree SRTP: RTP/SAVP(F) on a media line, or an a=crypto line (in RTP/AVP under `prefer`). */
export function sdpWantsSrtp(sdp: string | null | undefined): boolean {
  return typeof sdp === 'string' && (/^m=[^\r\n]*RTP\/SAVP/m.test(sdp) || /^a=crypto:/m.test(sdp));
}
