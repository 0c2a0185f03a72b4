/**
 * SWITCHBOARD_HOLD_AUDIO is checked at the edge: `switchboard start` with a hold file that is not a WAV of 16-bit PCM,
 * mono, 8 or 16 kHz stops with exit code 2 and one line naming the variable, the file and what is wrong (bridge/
 * hold-audio.ts), before anything is opened.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

test('a hold file that is not 8/16 kHz mono 16-bit PCM stops the start naming the variable and the file', () => {
  const dir = tmpDir('sb-hold-start-');
  const file = path.join(dir, 'music.wav');
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + 8, 4);
  h.write('WAVEfmt ', 8);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20);
  h.writeUInt16LE(2, 22);
  h.writeUInt32LE(44100, 24);
  h.writeUInt32LE(44100 * 4, 28);
  h.writeUInt16LE(4, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(8, 40);
  fs.writeFileSync(file, Buffer.concat([h, Buffer.alloc(8)]));
  const r = spawnSync(process.execPath, [BIN, 'start'], {
    env: { ...process.env, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_DATA_DIR: path.join(dir, 'data'), SWITCHBOARD_HTTP_PORT: '0', SWITCHBOARD_SIP_PORT: '0', SWITCHBOARD_HOLD_AUDIO: file },
    encoding: 'utf8',
    timeout: 20_000,
  });
  const out = `${r.stdout}${r.stderr}`;
  assert.equal(r.status, 2, out);
  assert.match(out, new RegExp(`SWITCHBOARD_HOLD_AUDIO: ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: 2 channels; expected a WAV of 16-bit PCM, mono, 8000 or 16000 Hz`));
  assert.doesNotMatch(out, /\n\s+at /, 'no stack trace');
});
