/**
 * Test speech as headerless 16-bit signed little-endian linear PCM (what the
 * Vonage WebSocket carries), at 8 or 16 kHz: espeak-ng, then SoX with dither
 * off, 300 ms of silence either side. Cached like audio.ts (memory + disk).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';

const CACHE_DIR = path.join(os.tmpdir(), 'switchboard-test-audio');
const memo = new Map<string, Buffer>();

export function speechL16(text: string, rate: 8000 | 16000 = 16000): Int16Array {
  const key = createHash('sha256').update(`l16:${rate}:${text}`, 'utf8').digest('hex');
  let bytes = memo.get(key);
  const cached = path.join(CACHE_DIR, `${key}.s16`);
  if (!bytes && fs.existsSync(cached)) bytes = fs.readFileSync(cached);
  if (!bytes || bytes.length === 0) {
    fs.mkdirSync(CACHE_DIR, { recursive: true });
    const work = fs.mkdtempSync(path.join(CACHE_DIR, 'work-'));
    try {
      const txt = path.join(work, 'in.txt');
      const wav = path.join(work, 'speech.wav');
      const raw = path.join(work, 'speech.s16');
      fs.writeFileSync(txt, text, 'utf8');
      execFileSync('espeak-ng', ['-w', wav, '-f', txt], { stdio: ['ignore', 'ignore', 'pipe'] });
      execFileSync('sox', ['-D', wav, '-r', String(rate), '-c', '1', '-b', '16', '-e', 'signed-integer', '-L', '-t', 'raw', raw, 'pad', '0.3', '0.3'], {
        stdio: ['ignore', 'ignore', 'pipe'],
      });
      bytes = fs.readFileSync(raw);
      if (bytes.length === 0) throw new Error(`speechL16: no audio for ${JSON.stringify(text)}`);
      const tmp = path.join(work, 'publish.s16');
      fs.writeFileSync(tmp, bytes);
      fs.renameSync(tmp, cached);
    } finally {
      fs.rmSync(work, { recursive: true, force: true });
    }
  }
  memo.set(key, bytes);
  const out = new Int16Array(bytes.length >> 1);
  for (let i = 0; i < out.length; i++) out[i] = bytes.readInt16LE(i * 2);
  return out;
}

/** Mean absolute amplitude of 16-bit PCM (0 for none). */
export function pcmEnergy(samples: Int16Array): number {
  if (samples.length === 0) return 0;
  let sum = 0;
  for (let i = 0; i < samples.length; i++) sum += Math.abs(samples[i] as number);
  return sum / samples.length;
}
