/**
 * The held set for the answering-machine detector (media/amd.ts): generated answers as a phone line carries them
 * (8 kHz, through G.711 µ-law and back, with line noise), never used to tune the detector's thresholds.
 *
 *   human    "hello?", "hello, this is Anna", … (espeak-ng, several voices and speeds), then the silence of
 *            someone waiting for an answer
 *   machine  5–15 s voicemail greetings (espeak-ng, several voices), a pause, a beep (sox: 440–2000 Hz,
 *            200–800 ms), then silence — the truth records where the beep ends
 *   silence  nobody says anything (line noise only)
 *
 * `makeSet()` writes each item as headerless 16-bit PCM into a cache directory (os.tmpdir()/switchboard-amd-set,
 * keyed by the recipe, so a second run reuses it) and returns the items; `tsx bench/amd/make-set.ts` prints them.
 * Needs espeak-ng and sox on PATH (npm test's scripts/ensure-deps.sh installs both).
 */
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { muLawDecode, muLawEncode } from '../../media/g711.ts';

export const RATE = 8000;

export interface SetItem {
  id: string;
  truth: 'human' | 'machine' | 'unknown';
  /** PCM16 mono at RATE. */
  file: string;
  /** For machines: ms from the start at which the beep ends. */
  beepEndMs: number | null;
  beepHz: number | null;
}

const VOICES = ['en-us', 'en-gb', 'en-gb-scotland', 'en-029', 'en-us+f3', 'en-gb-x-rp+f2', 'en-us+m4'];
const HUMAN_LINES = ['Hello?', 'Hello, this is Anna.', 'Yes?', 'Hi, who is this?', 'Hello, Anna speaking.', 'Good morning.'];
const MACHINE_LINES = [
  "Hi, you've reached Anna Smith. I can't take your call right now. Please leave your name and number after the tone.",
  'Hello. You have reached the office of Doctor Miller. Our office is currently closed. Our opening hours are Monday to Friday, nine to five. Please leave a message after the beep and we will call you back.',
  "Hey, it's Tom. Leave a message.",
  'The person you are calling is not available. Please record your message after the tone. When you are finished, hang up or press the pound key for more options.',
  "Thanks for calling Green Valley Plumbing. We're out on a job at the moment, but your call is important to us. Leave your name, your address and a short description of the problem, and we'll get back to you today.",
];
const BEEPS = [440, 850, 1000, 1400, 2000];
const BEEP_MS = [200, 400, 800];

const CACHE = path.join(os.tmpdir(), 'switchboard-amd-set');

/** Seeded PRNG (LCG): the set is the same on every run. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 0x100000000;
  };
}

function raw(args: string[]): Int16Array {
  const buf = execFileSync(args[0]!, args.slice(1), { stdio: ['ignore', 'pipe', 'pipe'], maxBuffer: 64 << 20 });
  return new Int16Array(buf.buffer, buf.byteOffset, buf.length >> 1).slice();
}

function speech(text: string, voice: string, speed: number): Int16Array {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'amd-say-'));
  try {
    const wav = path.join(dir, 'say.wav');
    execFileSync('espeak-ng', ['-v', voice, '-s', String(speed), '-w', wav, text], { stdio: ['ignore', 'ignore', 'pipe'] });
    return raw(['sox', '-D', wav, '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', '-']);
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

const beep = (hz: number, ms: number): Int16Array => raw(['sox', '-n', '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', '-', 'synth', String(ms / 1000), 'sine', String(hz), 'vol', '0.3']);
const silence = (ms: number): Int16Array => new Int16Array((RATE * ms) / 1000);

/** A phone line: the parts joined, line noise added (sox white noise, brown-ish), through µ-law and back. */
function line(parts: Int16Array[], noiseLevel: number, seed: number): Int16Array {
  const total = parts.reduce((n, p) => n + p.length, 0);
  const out = new Int16Array(total);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  const noise = raw(['sox', '-R', '-n', '-r', String(RATE), '-c', '1', '-b', '16', '-e', 'signed-integer', '-t', 'raw', '-', 'synth', String(total / RATE + 0.1), 'whitenoise', 'vol', String(noiseLevel)]);
  const r = prng(seed);
  const shift = Math.floor(r() * 400);
  for (let i = 0; i < total; i++) out[i] = Math.max(-32768, Math.min(32767, out[i]! + (noise[(i + shift) % noise.length] ?? 0)));
  return muLawDecode(muLawEncode(out));
}

function recipe(): Array<{ id: string; truth: SetItem['truth']; build: () => { pcm: Int16Array; beepEndMs: number | null; beepHz: number | null } }> {
  const r = prng(20);
  const items: ReturnType<typeof recipe> = [];
  const noise = (): number => [0.002, 0.005, 0.01][Math.floor(r() * 3)]!;
  for (const [vi, voice] of VOICES.entries()) {
    for (const [li, text] of HUMAN_LINES.entries()) {
      const speed = 150 + Math.floor(r() * 50);
      const lead = 200 + Math.floor(r() * 600);
      const n = noise();
      items.push({ id: `human-${vi}-${li}`, truth: 'human', build: () => ({ pcm: line([silence(lead), speech(text, voice, speed), silence(6000)], n, vi * 10 + li), beepEndMs: null, beepHz: null }) });
    }
    for (const [li, text] of MACHINE_LINES.entries()) {
      const speed = 150 + Math.floor(r() * 40);
      const lead = 100 + Math.floor(r() * 400);
      const gap = 300 + Math.floor(r() * 700);
      const hz = BEEPS[Math.floor(r() * BEEPS.length)]!;
      const ms = BEEP_MS[Math.floor(r() * BEEP_MS.length)]!;
      const n = noise();
      items.push({
        id: `machine-${vi}-${li}`,
        truth: 'machine',
        build: () => {
          const greeting = speech(text, voice, speed);
          const beepEnd = ((lead + gap + ms) * RATE) / 1000 + greeting.length;
          return { pcm: line([silence(lead), greeting, silence(gap), beep(hz, ms), silence(4000)], n, 100 + vi * 10 + li), beepEndMs: (beepEnd * 1000) / RATE, beepHz: hz };
        },
      });
    }
    const n = noise();
    items.push({ id: `silence-${vi}`, truth: 'unknown', build: () => ({ pcm: line([silence(8000)], n, 500 + vi), beepEndMs: null, beepHz: null }) });
  }
  return items;
}

/** Builds (or reuses) the held set; returns its items. */
export function makeSet(): SetItem[] {
  fs.mkdirSync(CACHE, { recursive: true });
  const version = createHash('sha256').update(JSON.stringify({ VOICES, HUMAN_LINES, MACHINE_LINES, BEEPS, BEEP_MS, v: 1 })).digest('hex').slice(0, 12);
  const index = path.join(CACHE, `${version}.json`);
  if (fs.existsSync(index)) return JSON.parse(fs.readFileSync(index, 'utf8')) as SetItem[];
  const out: SetItem[] = [];
  for (const item of recipe()) {
    const built = item.build();
    const file = path.join(CACHE, `${version}-${item.id}.pcm`);
    fs.writeFileSync(file, Buffer.from(built.pcm.buffer, built.pcm.byteOffset, built.pcm.byteLength));
    out.push({ id: item.id, truth: item.truth, file, beepEndMs: built.beepEndMs, beepHz: built.beepHz });
  }
  fs.writeFileSync(`${index}.tmp`, JSON.stringify(out));
  fs.renameSync(`${index}.tmp`, index);
  return out;
}

/** Reads an item's PCM. */
export function readPcm(item: SetItem): Int16Array {
  const b = fs.readFileSync(item.file);
  return new Int16Array(b.buffer, b.byteOffset, b.length >> 1).slice();
}

if (import.meta.url === `file://${process.argv[1]}`) {
  for (const item of makeSet()) process.stdout.write(`${item.id}\t${item.truth}\t${item.beepHz ?? ''}\t${item.beepEndMs ?? ''}\t${item.file}\n`);
}
