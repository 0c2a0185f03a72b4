/**
 * Early media (RFC 3960, the gateway model): on the trunks and routes SWITCHBOARD_SIP_EARLY_MEDIA names, an inbound
 * call that brings an SDP offer is answered `183 Session Progress` with the SDP answer — reliable when the INVITE
 * requires 100rel — and the prompt (e.g. a recorded consent notice) is played as RTP before the `200 OK`, so it is
 * heard before the call is answered and billed. A CANCEL stops it.
 *
 *   INVITE (SDP) ─► 183 + SDP answer ─► prompt, 20 ms frames ─► (ring time) ─► 200 OK (same answer) ─► the agent
 *
 *   SWITCHBOARD_SIP_EARLY_MEDIA = FILE                          every inbound call (= `*=FILE`)
 *                               | KEY=FILE|none, …              per route (a number or SIP URI), per trunk (a CIDR)
 *                                                               or `*`; the most specific match wins (route > trunk
 *                                                               > `*`), `none` = no early media (route-rules.ts)
 *
 * Each prompt is a WAV file of 16-bit PCM, mono, 8000 Hz, read once at start (a file that is not: the start stops
 * naming the variable). Late-offer INVITEs (no SDP) get the ordinary 180: there is no answer to put in a 183.
 */
import fs from 'node:fs';
import type { RtpSession } from './rtp.ts';
import { RouteRuleError, RouteRules, type InboundKey } from './route-rules.ts';

const VARIABLE = 'SWITCHBOARD_SIP_EARLY_MEDIA';

/** Which inbound calls get early media, and which prompt (SWITCHBOARD_SIP_EARLY_MEDIA). */
export class EarlyMediaRoutes {
  private constructor(private readonly rules: RouteRules<Int16Array | null>) {}

  static none(): EarlyMediaRoutes {
    return new EarlyMediaRoutes(RouteRules.empty());
  }

  /** Parses the variable and reads every prompt it names (each file once); throws naming the variable. */
  static parse(text: string | undefined, load: (file: string) => Int16Array = loadPrompt): EarlyMediaRoutes {
    const read = new Map<string, Int16Array>();
    const value = (v: string): Int16Array | null => {
      const file = v.trim();
      if (file.toLowerCase() === 'none') return null;
      if (file === '') throw new RouteRuleError(`${VARIABLE}: a rule has no file (a WAV file, or none)`);
      const prompt = read.get(file) ?? load(file);
      read.set(file, prompt);
      return prompt;
    };
    try {
      return new EarlyMediaRoutes(RouteRules.parse(text, VARIABLE, value));
    } catch (err) {
      if (err instanceof RouteRuleError) throw new Error(err.message.replace('KEY=VALUE', 'KEY=FILE'));
      throw err;
    }
  }

  /** The prompt an inbound call hears before its 200, undefined = none (the plain 180). */
  forInbound(call: InboundKey): Int16Array | undefined {
    return this.rules.mostSpecific(call) ?? undefined;
  }
}

const FRAME = 160;

/** Reads the prompt: a RIFF/WAVE file, PCM (format 1), 1 channel, 8000 Hz, 16 bits. */
export function loadPrompt(file: string): Int16Array {
  const fail = (why: string): never => {
    throw new Error(`${VARIABLE}: ${file}: ${why}`);
  };
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (err) {
    return fail(`cannot be read (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
  }
  if (buf.length < 12 || buf.toString('latin1', 0, 4) !== 'RIFF' || buf.toString('latin1', 8, 12) !== 'WAVE') return fail('not a WAV file');
  let fmt: { format: number; channels: number; rate: number; bits: number } | null = null;
  for (let at = 12; at + 8 <= buf.length; ) {
    const id = buf.toString('latin1', at, at + 4);
    const size = buf.readUInt32LE(at + 4);
    const body = at + 8;
    if (id === 'fmt ' && size >= 16 && body + 16 <= buf.length) {
      fmt = { format: buf.readUInt16LE(body), channels: buf.readUInt16LE(body + 2), rate: buf.readUInt32LE(body + 4), bits: buf.readUInt16LE(body + 14) };
    } else if (id === 'data') {
      if (!fmt || fmt.format !== 1 || fmt.channels !== 1 || fmt.rate !== 8000 || fmt.bits !== 16) return fail('expected 16-bit PCM, mono, 8000 Hz');
      const end = Math.min(buf.length, body + size) & ~1;
      const samples = new Int16Array((end - body) / 2);
      for (let i = 0; i < samples.length; i++) samples[i] = buf.readInt16LE(body + 2 * i);
      if (samples.length === 0) return fail('no audio');
      return samples;
    }
    at = body + size + (size & 1);
  }
  return fail('no data chunk');
}

/** Plays `samples` on `rtp` in 20 ms frames, paced on the clock (no drift); resolves when done or `stop()` says so. */
export function playPrompt(rtp: RtpSession, samples: Int16Array, stop: () => boolean): Promise<void> {
  const start = Date.now();
  return new Promise((resolve) => {
    let i = 0;
    const tick = (): void => {
      if (stop() || i * FRAME >= samples.length) return resolve();
      const frame = new Int16Array(FRAME);
      frame.set(samples.subarray(i * FRAME, (i + 1) * FRAME));
      rtp.send(frame);
      i++;
      setTimeout(tick, Math.max(0, start + i * 20 - Date.now()));
    };
    tick();
  });
}
