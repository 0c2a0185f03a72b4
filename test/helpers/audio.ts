/**
 * Test audio: synthetic speech and silence as 8 kHz mono headerless µ-law
 * (the format Twilio Media Streams carry), plus a simple energy measure.
 *
 * Speech is made with espeak-ng, padded with 300 ms of silence either side
 * and converted by SoX with dither off (`-D`), so the bytes are deterministic
 * for a given text and toolchain. Results are cached on disk by the sha256 of
 * the text in os.tmpdir()/switchboard-test-audio/ (written atomically, so
 * concurrent test processes can share the cache).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { muLawDecode, MU_LAW_SILENCE } from '../../media/g711.ts';

/** µ-law bytes per millisecond at 8 kHz. */
const BYTES_PER_MS = 8;

const CACHE_DIR = path.join(os.tmpdir(), 'switchboard-test-audio');
const memo = new Map<string, Buffer>();

/**
 * Speech for `text` as 8 kHz mono headerless µ-law (with 300 ms of silence
 * before and after). Synchronous; cached in memory and on disk.
 */
export function speechUlaw(text: string): Buffer {
  const key = createHash('sha256').update(text, 'utf8').digest('hex');
  const hit = memo.get(key);
  if (hit) return Buffer.from(hit);

  const cached = path.join(CACHE_DIR, `${key}.ul`);
  if (fs.existsSync(cached)) {
    const bytes = fs.readFileSync(cached);
    if (bytes.length > 0) {
      memo.set(key, bytes);
      return Buffer.from(bytes);
    }
  }

  fs.mkdirSync(CACHE_DIR, { recursive: true });
  const work = fs.mkdtempSync(path.join(CACHE_DIR, 'work-'));
  try {
    const txt = path.join(work, 'in.txt');
    const wav = path.join(work, 'speech.wav');
    const ul = path.join(work, 'speech.ul');
    // Text via a file so a leading '-' or shell metacharacters are never options.
    fs.writeFileSync(txt, text, 'utf8');
    execFileSync('espeak-ng', ['-w', wav, '-f', txt], { stdio: ['ignore', 'ignore', 'pipe'] });
    execFileSync('sox', ['-D', wav, '-r', '8000', '-c', '1', '-t', 'ul', ul, 'pad', '0.3', '0.3'], {
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    const bytes = fs.readFileSync(ul);
    if (bytes.length === 0) throw new Error(`speechUlaw: no audio produced for ${JSON.stringify(text)}`);
    // Atomic publish: rename within the same directory.
    const tmp = path.join(work, 'publish.ul');
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, cached);
    memo.set(key, bytes);
    return Buffer.from(bytes);
  } finally {
    fs.rmSync(work, { recursive: true, force: true });
  }
}

/** `ms` milliseconds of µ-law digital silence (0xFF), rounded to whole samples. */
export function silenceUlaw(ms: number): Buffer {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`silenceUlaw: bad duration ${ms}`);
  return Buffer.alloc(Math.round(ms * BYTES_PER_MS), MU_LAW_SILENCE);
}

/**
 * Mean absolute decoded amplitude (16-bit PCM scale, 0..32124) of µ-law
 * bytes; 0 for an empty buffer. Digital silence (0xFF) decodes to 0.
 */
export function ulawEnergy(buf: Uint8Array): number {
  if (buf.length === 0) return 0;
  const pcm = muLawDecode(buf);
  let sum = 0;
  for (let i = 0; i < pcm.length; i++) sum += Math.abs(pcm[i] as number);
  return sum / pcm.length;
}
