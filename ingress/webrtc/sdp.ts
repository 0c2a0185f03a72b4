/**
 * Validation of a WHIP-style SDP offer before anything is negotiated or
 * written: a bad offer is answered `400` with the first reason found, and no
 * call row exists for it.
 *
 * What a caller's offer must carry (RFC 8829/8866, RFC 9725 WHIP):
 *   v=0, o=, s= (in that order), at most MAX_SDP_BYTES of printable text;
 *   exactly one usable audio m-line, UDP/TLS/RTP/SAVPF, that can send
 *   (sendrecv or sendonly — we must hear the caller) and offers Opus/48000;
 *   ICE credentials (ice-ufrag/ice-pwd) and a DTLS fingerprint (sha-256 or
 *   better) at session or media level; no video (this is a voice gateway).
 * telephone-event is optional (the data channel carries DTMF too). An
 * m=application (data channel) is accepted. Candidates are not required: the
 * gateway is ICE-lite and answers checks from whatever address the browser uses.
 */

export const MAX_SDP_BYTES = 32 * 1024;

export interface OfferSummary {
  /** Opus payload type the caller offered. */
  opusPayloadType: number;
  /** telephone-event payload types (any clock rate) the caller offered. */
  dtmfPayloadTypes: number[];
  dataChannel: boolean;
  candidates: number;
}

export type OfferCheck = { ok: true; offer: OfferSummary } | { ok: false; reason: string };

interface Section {
  media: string | null;
  proto: string;
  port: number;
  formats: string[];
  lines: string[];
}

const fail = (reason: string): OfferCheck => ({ ok: false, reason });

function sections(lines: string[]): Section[] {
  const out: Section[] = [{ media: null, proto: '', port: 0, formats: [], lines: [] }];
  for (const line of lines) {
    if (line.startsWith('m=')) {
      const [media = '', port = '', proto = '', ...formats] = line.slice(2).split(' ');
      out.push({ media, proto, port: Number(port), formats, lines: [] });
    } else {
      (out[out.length - 1] as Section).lines.push(line);
    }
  }
  return out;
}

const attr = (s: Section, name: string): string[] =>
  s.lines.filter((l) => l.startsWith(`a=${name}:`) || l === `a=${name}`).map((l) => l.slice(name.length + 3));

export function checkOffer(sdp: unknown): OfferCheck {
  if (typeof sdp !== 'string' || sdp.trim() === '') return fail('the body must be an SDP offer (Content-Type: application/sdp)');
  if (Buffer.byteLength(sdp) > MAX_SDP_BYTES) return fail(`the SDP offer is larger than ${MAX_SDP_BYTES} bytes`);
  // eslint-disable-next-line no-control-regex
  if (/[\u0000-\u0008\u000b\u000c\u000e-\u001f\u007f]/.test(sdp)) return fail('the SDP offer contains control characters');
  const lines = sdp.split(/\r?\n/).filter((l) => l !== '');
  if (lines[0] !== 'v=0') return fail('not an SDP offer: the first line must be "v=0"');
  if (!lines[1]?.startsWith('o=')) return fail('not an SDP offer: "o=" must follow "v=0"');
  if (!lines[2]?.startsWith('s=')) return fail('not an SDP offer: "s=" must follow "o="');
  const bad = lines.find((l) => !/^[a-z]=/.test(l));
  if (bad !== undefined) return fail(`malformed SDP line: "${bad.slice(0, 60)}"`);
  const [session, ...media] = sections(lines) as [Section, ...Section[]];
  if (media.length === 0) return fail('the offer has no media section (m=audio)');
  if (media.some((m) => m.media === 'video')) return fail('video is not supported: offer audio only');
  const audios = media.filter((m) => m.media === 'audio' && m.port !== 0);
  if (audios.length === 0) return fail('the offer has no active audio section (m=audio)');
  if (audios.length > 1) return fail('offer exactly one audio section');
  const audio = audios[0] as Section;
  if (audio.proto !== 'UDP/TLS/RTP/SAVPF') return fail(`audio transport must be UDP/TLS/RTP/SAVPF (DTLS-SRTP), not ${audio.proto || '(none)'}`);
  const direction = ['sendrecv', 'sendonly', 'recvonly', 'inactive'].find((d) => audio.lines.includes(`a=${d}`) || session.lines.includes(`a=${d}`)) ?? 'sendrecv';
  if (direction === 'recvonly' || direction === 'inactive') return fail(`audio direction must be sendrecv (the agent has to hear the caller), not ${direction}`);
  const rtpmaps = attr(audio, 'rtpmap').map((v) => {
    const m = /^(\d+) ([^/\s]+)\/(\d+)/.exec(v);
    return m ? { pt: Number(m[1]), name: (m[2] as string).toLowerCase(), rate: Number(m[3]) } : null;
  });
  const offered = new Set(audio.formats.map(Number));
  const opus = rtpmaps.find((r) => r && r.name === 'opus' && r.rate === 48000 && offered.has(r.pt));
  if (!opus) return fail('the audio section must offer opus/48000');
  const dtmf = rtpmaps.filter((r) => r !== null && r.name === 'telephone-event' && offered.has(r.pt)).map((r) => (r as { pt: number }).pt);
  const both = (name: string): string[] => [...attr(audio, name), ...attr(session, name)];
  if (both('ice-ufrag').length === 0 || both('ice-pwd').length === 0) return fail('ICE credentials (a=ice-ufrag, a=ice-pwd) are missing');
  const fingerprints = both('fingerprint');
  if (fingerprints.length === 0) return fail('a DTLS fingerprint (a=fingerprint) is missing');
  if (!fingerprints.some((f) => /^sha-(256|384|512) ([0-9A-Fa-f]{2}:)+[0-9A-Fa-f]{2}$/.test(f))) return fail('the DTLS fingerprint must be sha-256 or stronger');
  const setup = both('setup')[0];
  if (setup !== undefined && !['actpass', 'active', 'passive'].includes(setup)) return fail(`a=setup:${setup} is not valid in an offer`);
  return {
    ok: true,
    offer: {
      opusPayloadType: opus.pt,
      dtmfPayloadTypes: dtmf,
      dataChannel: media.some((m) => m.media === 'application' && m.port !== 0),
      candidates: media.reduce((n, m) => n + attr(m, 'candidate').length, 0),
    },
  };
}
