/** Local TTS: espeak-ng (Debian package `espeak-ng`) → WAV on stdout → resampled to the leg's rate. */
import { spawn } from 'node:child_process';
import type { SampleRate } from '../media/frame.ts';
import { Resampler } from '../media/resample.ts';
import { TtsError, type TextToSpeech } from './tts.ts';
import { parseWav } from './wav.ts';

export interface EspeakOptions {
  voice?: string;
  /** Words per minute. */
  speed?: number;
  binary?: string;
  timeoutMs?: number;
}

export class EspeakTts implements TextToSpeech {
  readonly name = 'espeak';

  constructor(private readonly opts: EspeakOptions = {}) {}

  /** Whether espeak-ng runs here (`espeak-ng --version`), with the reason when it does not. */
  static available(opts: Pick<EspeakOptions, 'binary'> = {}): Promise<{ ok: true } | { ok: false; reason: string }> {
    const bin = opts.binary ?? 'espeak-ng';
    return new Promise((resolve) => {
      const child = spawn(bin, ['--version'], { stdio: 'ignore' });
      const timer = setTimeout(() => child.kill('SIGKILL'), 5_000);
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        resolve({ ok: false, reason: e.code === 'ENOENT' ? `${bin} not found (apt-get install espeak-ng)` : `${bin}: ${e.message}` });
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        resolve(code === 0 ? { ok: true } : { ok: false, reason: `${bin} --version exited ${code}` });
      });
    });
  }

  synthesize(text: string, sampleRate: SampleRate): Promise<Int16Array> {
    const args = ['--stdout', '-v', this.opts.voice ?? 'en-us', '-s', String(this.opts.speed ?? 165), '--', text];
    return new Promise((resolve, reject) => {
      const child = spawn(this.opts.binary ?? 'espeak-ng', args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let err = '';
      const timer = setTimeout(() => child.kill('SIGKILL'), this.opts.timeoutMs ?? 10_000);
      child.stdout.on('data', (d: Buffer) => out.push(d));
      child.stderr.on('data', (d: Buffer) => (err += d.toString()));
      child.on('error', (e: NodeJS.ErrnoException) => {
        clearTimeout(timer);
        reject(new TtsError(e.code === 'ENOENT' ? 'espeak-ng is not installed (apt-get install espeak-ng)' : e.message, false));
      });
      child.on('close', (code) => {
        clearTimeout(timer);
        if (code !== 0) return reject(new TtsError(`espeak-ng exited ${code}: ${err.trim()}`, true));
        try {
          const wav = parseWav(Buffer.concat(out));
          if (wav.sampleRate === sampleRate) return resolve(wav.samples);
          const rs = new Resampler(wav.sampleRate, sampleRate);
          const a = rs.process(wav.samples);
          const b = rs.flush();
          const all = new Int16Array(a.length + b.length);
          all.set(a);
          all.set(b, a.length);
          resolve(all);
        } catch (e) {
          reject(new TtsError(`espeak-ng output unreadable: ${(e as Error).message}`, false));
        }
      });
    });
  }
}
