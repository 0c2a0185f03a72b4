/**
 * What `switchboard start` logs about speech on a machine without the local
 * engines (cli/speech.ts): with neither espeak-ng nor pocketsphinx on PATH and
 * no DEEPGRAM_API_KEY, the start log warns for each, saying what the caller
 * will notice and which package to install; with espeak-ng present there is
 * no espeak warning.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { pino, type Logger } from 'pino';
import { loadConfig } from '../../../cli/config/index.ts';
import { chooseSpeech } from '../../../cli/speech.ts';
import { tmpDir } from '../../helpers/tmp.ts';

function capture(): { logger: Logger; lines: Array<{ level: number; msg: string; reason?: string }> } {
  const lines: Array<{ level: number; msg: string; reason?: string }> = [];
  const logger: Logger = pino({ level: 'info' }, { write: (s: string) => void lines.push(JSON.parse(s)) });
  return { logger, lines };
}

test('without espeak-ng and pocketsphinx the start log says what breaks and how to install them', async (t) => {
  const saved = process.env.PATH;
  t.after(() => {
    process.env.PATH = saved;
  });
  process.env.PATH = tmpDir('sb-empty-path-'); // an empty directory: no engine can be found
  const { logger, lines } = capture();
  const choice = await chooseSpeech(loadConfig({ SWITCHBOARD_STT: 'auto', SWITCHBOARD_TTS: 'auto' }).speech, logger);
  assert.equal(choice.stt, null);
  const warnings = lines.filter((l) => l.level === 40);
  const espeak = warnings.find((l) => /espeak-ng is not available/.test(l.msg));
  assert.ok(espeak, `no espeak-ng warning in ${JSON.stringify(lines)}`);
  assert.match(espeak.msg, /calls are answered and then ended/);
  assert.match(espeak.msg, /apt-get install espeak-ng/);
  const sphinx = warnings.find((l) => /pocketsphinx is not available/.test(l.msg));
  assert.ok(sphinx, `no pocketsphinx warning in ${JSON.stringify(lines)}`);
  assert.match(sphinx.msg, /DTMF only/);
  assert.match(sphinx.reason ?? '', /apt-get install pocketsphinx/);
});

test('with espeak-ng installed there is no espeak warning', async () => {
  const { logger, lines } = capture();
  await chooseSpeech(loadConfig({ SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'espeak' }).speech, logger);
  assert.equal(lines.filter((l) => /espeak/.test(l.msg) && l.level >= 40).length, 0, JSON.stringify(lines));
});
