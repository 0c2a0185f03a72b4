/**
 * Hold audio (bridge/hold-audio.ts): SWITCHBOARD_HOLD_AUDIO parsed and each WAV checked at the edge (16-bit PCM,
 * mono, 8 or 16 kHz: anything else is refused naming the variable, the file and what is wrong), the clip per number,
 * and its loop at the call's rate.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { HoldAudio, HoldLoop, holdSource, loadHoldClip } from '../../../bridge/hold-audio.ts';
import { HoldTone } from '../../../bridge/hold-tone.ts';
import { tmpDir } from '../../helpers/tmp.ts';

function wav(o: { rate?: number; channels?: number; format?: number; bits?: number; samples?: number[] } = {}): Buffer {
  const rate = o.rate ?? 8000;
  const channels = o.channels ?? 1;
  const bits = o.bits ?? 16;
  const samples = o.samples ?? Array.from({ length: 400 }, (_, i) => (i % 2 ? 1000 : -1000));
  const data = Buffer.alloc(samples.length * (bits / 8));
  samples.forEach((v, i) => (bits === 16 ? data.writeInt16LE(v, i * 2) : data.writeUInt8(v & 0xff, i)));
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(o.format ?? 1, 20);
  h.writeUInt16LE(channels, 22);
  h.writeUInt32LE(rate, 24);
  h.writeUInt32LE((rate * channels * bits) / 8, 28);
  h.writeUInt16LE((channels * bits) / 8, 32);
  h.writeUInt16LE(bits, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}

const dir = tmpDir('sb-hold-');
const file = (name: string, bytes: Buffer): string => {
  const p = path.join(dir, name);
  fs.writeFileSync(p, bytes);
  return p;
};

test('a hold WAV must be 16-bit PCM, mono, 8 or 16 kHz; anything else names the variable, the file and why', () => {
  assert.equal(loadHoldClip(file('ok8.wav', wav())).rate, 8000);
  assert.equal(loadHoldClip(file('ok16.wav', wav({ rate: 16000 }))).rate, 16000);
  const refused = (name: string, bytes: Buffer, why: RegExp) => assert.throws(() => loadHoldClip(file(name, bytes)), (err: Error) => err.message.startsWith(`SWITCHBOARD_HOLD_AUDIO: ${path.join(dir, name)}: `) && why.test(err.message));
  refused('stereo.wav', wav({ channels: 2 }), /2 channels; expected a WAV of 16-bit PCM, mono, 8000 or 16000 Hz/);
  refused('cd.wav', wav({ rate: 44100 }), /44100 Hz/);
  refused('ulaw.wav', wav({ format: 7, bits: 8 }), /not 16-bit PCM/);
  refused('song.mp3', Buffer.from('ID3\u0003\u0000 not a wave at all'), /not a RIFF\/WAVE file/);
  refused('short.wav', wav({ samples: [1, 2, 3] }), /shorter than 20 ms/);
  assert.throws(() => loadHoldClip(path.join(dir, 'missing.wav')), /SWITCHBOARD_HOLD_AUDIO: .*missing\.wav: cannot be read \(ENOENT\)/);
});

test('SWITCHBOARD_HOLD_AUDIO: one file for every call, or per number with * and tone', () => {
  const a = file('a.wav', wav());
  const b = file('b.wav', wav({ rate: 16000 }));
  assert.equal(HoldAudio.load(undefined).forNumber('+15550001'), null);
  assert.equal(HoldAudio.load(a).forNumber(null)?.rate, 8000);
  const rules = HoldAudio.load(`+15550001=${b}, +15550002=tone, *=${a}`);
  assert.equal(rules.forNumber('+15550001')?.rate, 16000);
  assert.equal(rules.forNumber('+15550002'), null, 'tone');
  assert.equal(rules.forNumber('+15550003')?.rate, 8000, 'the * file');
  assert.equal(rules.describe(), '2 WAV files');
  assert.throws(() => HoldAudio.load(`5550001=${a}`), /SWITCHBOARD_HOLD_AUDIO: "5550001" is not an E\.164 number/);
  assert.throws(() => HoldAudio.load(`+15550001=`), /is not NUMBER=FILE/);
  assert.throws(() => HoldAudio.load(`*=${path.join(dir, 'nope.wav')}`), /cannot be read/);
});

test("the clip loops 20 ms at a time at the call's rate; no clip is the tone", () => {
  const clip = { samples: Int16Array.from({ length: 240 }, (_, i) => i), rate: 8000 as const };
  const loop = new HoldLoop(clip, 8000);
  assert.deepEqual([...loop.next()].slice(0, 3), [0, 1, 2]);
  const second = [...loop.next()];
  assert.deepEqual(second.slice(0, 2), [160, 161]);
  assert.deepEqual(second.slice(80, 82), [0, 1], 'wrapped around at the end of the clip');
  assert.equal(new HoldLoop(clip, 16000).next().length, 320, 'resampled to 16 kHz');
  assert.ok(holdSource(null, 8000) instanceof HoldTone);
});
