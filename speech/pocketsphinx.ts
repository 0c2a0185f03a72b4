/**
 * Local STT: CMU pocketsphinx 0.8 (Debian `pocketsphinx` + `pocketsphinx-en-us`), one
 * `pocketsphinx_continuous` process per session, raw 16 kHz s16le mono on its stdin,
 * one hypothesis line (+ `-time yes` word lines) per utterance on its stdout.
 *
 * Traps handled here (all measured on this toolchain):
 * - `-infile /dev/stdin` cannot open a Node child's stdin (libuv gives it a socket,
 *   open(2) on /proc/self/fd/0 fails with ENXIO), so the process runs behind
 *   `sh -c 'cat | exec pocketsphinx_continuous …'`, which hands it a real pipe.
 * - 8 kHz input is resampled to 16 kHz (the 8 kHz model route fails).
 * - Band-limited audio with digital silence decodes badly ("yes I agree to the
 *   recording" → "yeah"): a deterministic noise floor (±32 LSB, about −63 dBFS) is
 *   added to the 16 kHz stream, which makes it decode exactly.
 * - `yes-no` uses the answer grammar with an out-of-grammar branch (see
 *   vocabulary.ts); its per-word posteriors are always 1.0, so confidence is null.
 *   `transcript` with `phrases` runs a second decoder on a grammar of those phrases.
 * - Quiet before the caller's first sound is cut to LEAD_IN_MS: a stream that starts
 *   with over ~1 s of it spoils the first words (result times still count it).
 */
import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import type { AudioFrame } from '../media/frame.ts';
import { SafeEmitter } from '../media/emitter.ts';
import { Resampler } from '../media/resample.ts';
import { classifyYesNo, phrasesJsgf, spotPhrase, yesNoJsgf } from './vocabulary.ts';
import { SttPair } from './stt-pair.ts';
import {
  SttError,
  type SpeechToText,
  type SttResult,
  type SttSession,
  type SttSessionEvents,
  type SttSessionOptions,
  type SttWord,
} from './stt.ts';

export interface PocketsphinxOptions {
  /** Default `pocketsphinx_continuous` (looked up on PATH). */
  binary?: string;
  /** Holds `en-us/` (acoustic model), `cmudict-en-us.dict`, `en-us.lm.bin`. */
  modelDir?: string;
  /** Peak of the added uniform noise floor in LSB; 0 disables. Default 64. */
  noiseFloor?: number;
}

export type Availability = { ok: true } | { ok: false; reason: string };

const DEFAULT_BINARY = 'pocketsphinx_continuous';
/**
 * 64 LSB (~-57 dBFS): at 32, a phone line's digital silence (µ-law 0xFF) longer than ~1 s
 * before the first words left the decoder unable to find them (measured: a caller answering
 * after 1.3 s of silence got no result at 32, the right words at 64–256).
 */
const DEFAULT_NOISE_FLOOR = 64;
const DEFAULT_MODEL_DIR = '/usr/share/pocketsphinx/model/en-us';
const DECODER_RATE = 16000;
/** After the last stdout line of an utterance, wait this long for more word lines. */
const SETTLE_MS = 30;
/**
 * Quiet at the start of a stream is cut to this much: pocketsphinx 0.8 fed more than ~1 s of (noise-floored)
 * silence before the first words opens a spurious utterance that spoils the next one (measured: "stop recording"
 * after 1.2 s → "what you to", "no" after 1 s → nothing; the same words after 0.9 s, or after any length of
 * silence once it has heard speech, are exact).
 */
const LEAD_IN_MS = 300;
/** A frame no louder than this (peak, 16-bit; about −42 dBFS) counts as quiet before the first sound. */
const QUIET_PEAK = 256;
const isQuiet = (samples: Int16Array): boolean => {
  for (let i = 0; i < samples.length; i++) if (Math.abs(samples[i] as number) > QUIET_PEAK) return false;
  return true;
};
/** A `-time yes` word line; a grammar's null transition prints `(null) -0.010 -0.010 1.000000`. */
const WORD_LINE = /^(\S+) (-?\d+(?:\.\d+)?) (-?\d+(?:\.\d+)?) (-?[\d.]+(?:e[-+]?\d+)?)$/i;

function modelPaths(dir: string) {
  return { hmm: path.join(dir, 'en-us'), dict: path.join(dir, 'cmudict-en-us.dict'), lm: path.join(dir, 'en-us.lm.bin') };
}

async function findExecutable(bin: string): Promise<string | null> {
  const dirs = bin.includes('/') ? [''] : (process.env.PATH ?? '').split(path.delimiter).filter(Boolean);
  for (const dir of dirs) {
    const candidate = dir ? path.join(dir, bin) : bin;
    try {
      await fs.promises.access(candidate, fs.constants.X_OK);
      return candidate;
    } catch {
      // keep looking
    }
  }
  return null;
}

const grammarFiles = new Map<string, string>();
/** Writes a JSGF grammar once per process (content-addressed, atomic rename); returns its path. */
function grammarFile(text: string): string {
  const known = grammarFiles.get(text);
  if (known && fs.existsSync(known)) return known;
  const hash = createHash('sha256').update(text).digest('hex').slice(0, 16);
  const file = path.join(os.tmpdir(), `switchboard-${hash}.gram`);
  if (!fs.existsSync(file)) {
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, text);
    fs.renameSync(tmp, file);
  }
  grammarFiles.set(text, file);
  return file;
}

/** What a decoder's hypothesis becomes: the result's text (and phrase), or null to drop it. */
type Interpret = (raw: string) => { text: string; phrase?: string } | null;

export class PocketsphinxStt implements SpeechToText {
  readonly name = 'pocketsphinx';

  constructor(private readonly opts: PocketsphinxOptions = {}) {}

  /** Whether the binary and the en-us model are installed (no process is started). */
  static async available(opts: PocketsphinxOptions = {}): Promise<Availability> {
    const bin = opts.binary ?? DEFAULT_BINARY;
    if (!(await findExecutable(bin))) {
      return { ok: false, reason: `${bin} not found or not executable (apt-get install pocketsphinx)` };
    }
    if (!(await findExecutable('sh')) || !(await findExecutable('cat'))) {
      return { ok: false, reason: 'sh and cat are needed to feed pocketsphinx_continuous a pipe' };
    }
    const m = modelPaths(opts.modelDir ?? DEFAULT_MODEL_DIR);
    for (const file of [path.join(m.hmm, 'mdef'), m.dict, m.lm]) {
      try {
        await fs.promises.access(file, fs.constants.R_OK);
      } catch {
        return { ok: false, reason: `pocketsphinx model file missing: ${file} (apt-get install pocketsphinx-en-us)` };
      }
    }
    return { ok: true };
  }

  /**
   * `yes-no`: the answer grammar (vocabulary.ts). `transcript`: the open-vocabulary model; with `phrases`, a second decoder with
   * a grammar of those phrases runs beside it (SttPair) and reports each phrase said as a result of its own.
   */
  startSession(opts: SttSessionOptions): SttSession {
    const m = modelPaths(this.opts.modelDir ?? DEFAULT_MODEL_DIR);
    if (opts.mode === 'yes-no') {
      return this.decoder(opts, ['-jsgf', grammarFile(yesNoJsgf())], (raw) => {
        const answer = classifyYesNo(raw);
        return answer ? { text: answer } : null;
      });
    }
    const transcript = this.decoder(opts, ['-lm', m.lm], (raw) => ({ text: raw }));
    const phrases = opts.phrases ?? [];
    if (phrases.length === 0) return transcript;
    const spotter = this.decoder(opts, ['-jsgf', grammarFile(phrasesJsgf(phrases))], (raw) => {
      const phrase = spotPhrase(raw, phrases);
      return phrase ? { text: raw, phrase } : null;
    });
    return new SttPair([transcript, spotter]);
  }

  private decoder(opts: SttSessionOptions, search: string[], interpret: Interpret): PocketsphinxSession {
    const m = modelPaths(this.opts.modelDir ?? DEFAULT_MODEL_DIR);
    const args = ['-infile', '/dev/stdin', '-logfn', '/dev/null', '-time', 'yes', '-hmm', m.hmm, '-dict', m.dict, ...search];
    return new PocketsphinxSession(this.opts.binary ?? DEFAULT_BINARY, args, opts, this.opts.noiseFloor ?? DEFAULT_NOISE_FLOOR, interpret);
  }
}

interface Pending {
  hyp: string | null;
  words: SttWord[];
  confidences: number[];
}

class PocketsphinxSession extends SafeEmitter<SttSessionEvents> implements SttSession {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly resampler: Resampler | null;
  private readonly delayMs: number;
  private readonly exited: Promise<void>;
  private ending: Promise<void> | null = null;
  private stopped = false;
  private closedEmitted = false;
  private rateErrorSent = false;
  private lineBuf = '';
  private pending: Pending | null = null;
  private settleTimer: NodeJS.Timeout | null = null;
  private stderr = '';
  private seed = 0x2545f491;
  /** Quiet frames before the caller's first sound (null once the decoder is fed); `skippedMs` were never fed. */
  private leadIn: Int16Array[] | null = [];
  private skippedMs = 0;

  constructor(
    binary: string,
    args: string[],
    private readonly opts: SttSessionOptions,
    private readonly noiseFloor: number,
    private readonly interpret: Interpret,
  ) {
    super();
    this.resampler = opts.sampleRate === DECODER_RATE ? null : new Resampler(opts.sampleRate, DECODER_RATE);
    this.delayMs = this.resampler?.delayMs ?? 0;
    // detached: own process group, so close() can kill sh, cat and the decoder together.
    this.child = spawn('sh', ['-c', 'cat | exec "$0" "$@"', binary, ...args], { stdio: 'pipe', detached: true });
    this.child.stdin.on('error', () => {}); // EPIPE after a crash: reported by 'close'
    this.child.stdout.setEncoding('utf8');
    this.child.stdout.on('data', (chunk: string) => this.onStdout(chunk));
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (d: string) => (this.stderr = (this.stderr + d).slice(-2000)));
    this.exited = new Promise((resolve) => {
      this.child.on('error', (e: NodeJS.ErrnoException) =>
        this.fail(new SttError(`cannot start pocketsphinx: ${e.message}`, e.code !== 'ENOENT' && e.code !== 'EACCES')),
      );
      this.child.on('close', (code, signal) => {
        this.onStdout('\n'); // a last line without newline
        this.flushPending();
        if (!this.stopped && (code !== 0 || signal)) this.fail(this.exitError(binary, code, signal));
        this.stopped = true;
        this.emitClosed();
        resolve();
      });
    });
  }

  write(frame: AudioFrame): void {
    if (this.stopped || this.ending) return;
    if (frame.sampleRate !== this.opts.sampleRate) {
      if (!this.rateErrorSent) {
        this.rateErrorSent = true;
        this.fail(new SttError(`frame at ${frame.sampleRate} Hz in a ${this.opts.sampleRate} Hz session (dropped)`, false));
      }
      return;
    }
    if (this.leadIn) {
      // Before the caller's first sound only the last LEAD_IN_MS of quiet is kept (see the header).
      this.leadIn.push(frame.samples.slice());
      if (isQuiet(frame.samples)) {
        let keptMs = (this.leadIn.reduce((n, f) => n + f.length, 0) / this.opts.sampleRate) * 1000;
        while (keptMs > LEAD_IN_MS && this.leadIn.length > 1) {
          const dropped = (this.leadIn.shift() as Int16Array).length / this.opts.sampleRate * 1000;
          keptMs -= dropped;
          this.skippedMs += dropped;
        }
        return;
      }
      const kept = this.leadIn;
      this.leadIn = null;
      for (const samples of kept) this.feed(this.resampler ? this.resampler.process(samples) : samples);
      return;
    }
    this.feed(this.resampler ? this.resampler.process(frame.samples) : frame.samples.slice());
  }

  end(): Promise<void> {
    if (!this.ending) {
      if (!this.stopped && this.resampler) this.feed(this.resampler.flush());
      this.child.stdin.end();
      this.ending = this.exited;
    }
    return this.ending;
  }

  close(): void {
    if (!this.stopped) {
      this.stopped = true;
      this.pending = null;
      if (this.settleTimer) clearTimeout(this.settleTimer);
      if (this.child.pid !== undefined) {
        try {
          process.kill(-this.child.pid, 'SIGKILL');
        } catch {
          // already gone
        }
      }
      this.child.stdin.destroy();
    }
    this.emitClosed();
  }

  /** Adds the noise floor (in place, the array is ours) and writes 16 kHz PCM to the decoder. */
  private feed(pcm: Int16Array): void {
    if (pcm.length === 0 || !this.child.stdin.writable) return;
    const amp = this.noiseFloor;
    if (amp > 0) {
      for (let i = 0; i < pcm.length; i++) {
        this.seed = (Math.imul(this.seed, 1103515245) + 12345) >>> 0;
        const v = (pcm[i] as number) + Math.round(((this.seed >>> 8) / 0x800000 - 1) * amp);
        pcm[i] = v > 32767 ? 32767 : v < -32768 ? -32768 : v;
      }
    }
    this.child.stdin.write(Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  private onStdout(chunk: string): void {
    this.lineBuf += chunk;
    let nl: number;
    while ((nl = this.lineBuf.indexOf('\n')) >= 0) {
      const line = this.lineBuf.slice(0, nl).trim();
      this.lineBuf = this.lineBuf.slice(nl + 1);
      this.onLine(line);
    }
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = this.pending ? setTimeout(() => this.flushPending(), SETTLE_MS) : null;
  }

  private onLine(line: string): void {
    const m = WORD_LINE.exec(line);
    if (!m) {
      if (line === '' && !this.pending) return;
      this.flushPending();
      this.pending = { hyp: line, words: [], confidences: [] };
      return;
    }
    this.pending ??= { hyp: null, words: [], confidences: [] };
    const word = (m[1] as string).replace(/\(\d+\)$/, '');
    if (/^(<.*>|\[.*\]|\+\+.*\+\+|\(null\))$/i.test(word)) return; // <s> </s> <sil> [NOISE] ++UM++ (null)
    this.pending.words.push({ word, startMs: this.toMs(m[2] as string), endMs: this.toMs(m[3] as string) });
    this.pending.confidences.push(Math.min(1, Math.max(0, Number(m[4]))));
  }

  private toMs(seconds: string): number {
    return Math.max(0, Math.round(Number(seconds) * 1000 - this.delayMs + this.skippedMs));
  }

  private flushPending(): void {
    if (this.settleTimer) clearTimeout(this.settleTimer);
    this.settleTimer = null;
    const p = this.pending;
    this.pending = null;
    if (!p || this.stopped) return;
    const raw = (p.hyp ?? p.words.map((w) => w.word).join(' ')).trim().toLowerCase();
    if (raw === '' && p.words.length === 0) return;
    const meant = this.interpret(raw);
    if (!meant) return;
    // Grammar decoders' per-word posteriors are always 1.0: no confidence from them.
    const confidence = this.opts.mode === 'transcript' && !meant.phrase && p.confidences.length > 0 ? p.confidences.reduce((a, b) => a + b, 0) / p.confidences.length : null;
    const first = p.words[0];
    const last = p.words[p.words.length - 1];
    const result: SttResult = {
      ...meant,
      isFinal: true,
      startMs: first?.startMs ?? 0,
      endMs: last?.endMs ?? 0,
      confidence,
      words: p.words,
    };
    this.emit('result', result);
  }

  private exitError(binary: string, code: number | null, signal: NodeJS.Signals | null): SttError {
    if (code === 127) return new SttError(`${binary} not found (apt-get install pocketsphinx)`, false);
    if (code === 126) return new SttError(`${binary} is not executable`, false);
    const how = signal ? `was killed by ${signal}` : `exited with code ${code}`;
    const tail = this.stderr.trim() ? `: ${this.stderr.trim()}` : ' (model missing? see PocketsphinxStt.available())';
    return new SttError(`pocketsphinx ${how}${tail}`, true);
  }

  private fail(err: SttError): void {
    this.emit('error', err);
  }

  private emitClosed(): void {
    if (this.closedEmitted) return;
    this.closedEmitted = true;
    this.emit('closed');
  }
}
