/**
 * pocketsphinx on words said after the caller has been quiet a while (the consent question, a call's transcript):
 * a spoken "no" after 3 s of silence, and "stop recording" (the withdrawal phrase) after 6 s, are recognised, with
 * result times on the session's own clock (the quiet counted). Real pocketsphinx_continuous on espeak-ng µ-law.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { muLawDecode } from '../../../media/g711.ts';
import { WITHDRAWAL_PHRASES } from '../../../consent/grammar.ts';
import { PocketsphinxStt } from '../../../speech/pocketsphinx.ts';
import type { SttResult, SttSessionOptions } from '../../../speech/stt.ts';
import { silenceUlaw, speechUlaw } from '../../helpers/audio.ts';

async function decode(opts: SttSessionOptions, leadMs: number, text: string): Promise<SttResult[]> {
  const session = new PocketsphinxStt().startSession(opts);
  const results: SttResult[] = [];
  session.on('result', (r) => r.isFinal && results.push(r));
  const pcm = muLawDecode(Buffer.concat([silenceUlaw(leadMs), speechUlaw(text), silenceUlaw(1500)]));
  for (let i = 0; i + 160 <= pcm.length; i += 160) session.write({ samples: pcm.slice(i, i + 160), sampleRate: 8000, timestamp: i });
  await session.end();
  session.close();
  return results;
}

test('yes-no: "no" said after 3 s of silence is "no", timed after the silence', { timeout: 60_000 }, async () => {
  const results = await decode({ sampleRate: 8000, mode: 'yes-no' }, 3000, 'no');
  assert.deepEqual(results.map((r) => r.text), ['no']);
  assert.ok(results[0]!.startMs >= 3000, `start ${results[0]!.startMs} ms counts the silence`);
});

test('transcript with phrases: "stop recording" after 6 s of silence is reported as the phrase; other speech is not', { timeout: 60_000 }, async () => {
  const opts: SttSessionOptions = { sampleRate: 8000, mode: 'transcript', phrases: WITHDRAWAL_PHRASES };
  const said = await decode(opts, 6000, 'stop recording');
  const phrase = said.filter((r) => r.phrase);
  assert.equal(phrase.length, 1, JSON.stringify(said));
  assert.equal(phrase[0]!.phrase, 'stop recording');
  assert.ok(phrase[0]!.startMs >= 6000, `start ${phrase[0]!.startMs} ms counts the silence`);
  assert.ok(said.some((r) => !r.phrase), 'the transcript decoder still reports what it heard');
  const other = await decode(opts, 6000, 'I would like to pay my bill');
  assert.deepEqual(other.filter((r) => r.phrase), [], JSON.stringify(other));
});
