/**
 * Two recogniser sessions fed the same frames, seen as one: results and errors of both, `end()` once both have
 * flushed, `closed` once both have closed. A provider uses it to listen for `phrases` with a grammar beside its
 * open-vocabulary transcript (pocketsphinx.ts).
 */
import type { AudioFrame } from '../media/frame.ts';
import { SafeEmitter } from '../media/emitter.ts';
import type { SttSession, SttSessionEvents } from './stt.ts';

export class SttPair extends SafeEmitter<SttSessionEvents> implements SttSession {
  private open = 2;

  constructor(private readonly sessions: readonly [SttSession, SttSession]) {
    super();
    for (const s of sessions) {
      s.on('result', (r) => this.emit('result', r));
      s.on('error', (e) => this.emit('error', e));
      s.on('closed', () => --this.open === 0 && this.emit('closed'));
    }
  }

  write(frame: AudioFrame): void {
    for (const s of this.sessions) s.write(frame);
  }

  async end(): Promise<void> {
    await Promise.all(this.sessions.map((s) => s.end()));
  }

  close(): void {
    for (const s of this.sessions) s.close();
  }
}
