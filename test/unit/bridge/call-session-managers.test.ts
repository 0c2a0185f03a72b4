/**
 * The call session's managers, through CallSession (bridge/call-session.ts) on a real store and an in-memory leg,
 * with scripted STT, recording and agent: what each manager does when the session closes (once), when the caller
 * says the withdrawal phrase, and when consent was declined under a hang-up policy — as the store and the caller
 * would see it.
 */
import assert from 'node:assert/strict';
import { test, type TestContext } from 'node:test';
import { pino } from 'pino';
import type { Agent, GatherResult, Hook } from '../../../agents/types.ts';
import { CallSession, type SessionDeps } from '../../../bridge/call-session.ts';
import type { RecordingHandle } from '../../../bridge/recording-port.ts';
import { MediaClock } from '../../../media/pacer.ts';
import type { SpeechToText, SttResult, SttSession, SttSessionEvents, SttSessionOptions } from '../../../speech/stt.ts';
import { MemoryLeg } from '../../helpers/memory-leg.ts';
import { openTestStore, resultOf, T } from '../../helpers/store.ts';
import { call_answered, call_received, consent_decided, consent_policy_created, consent_started, tenant_created } from '../../../schema/reducers.ts';

class ScriptedSession implements SttSession {
  closed = false;
  private readonly results: Array<(r: SttResult) => void> = [];
  constructor(readonly opts: SttSessionOptions) {}
  write(): void {}
  async end(): Promise<void> {}
  close(): void {
    this.closed = true;
  }
  on<K extends keyof SttSessionEvents>(event: K, listener: (...args: SttSessionEvents[K]) => void): () => void {
    if (event === 'result') this.results.push(listener as (r: SttResult) => void);
    return () => undefined;
  }
  /** The recogniser reports a final result. */
  say(text: string, startMs: number, phrase?: string): void {
    const r: SttResult = { text, isFinal: true, startMs, endMs: startMs + 600, confidence: 0.9, words: [], ...(phrase ? { phrase } : {}) };
    for (const l of this.results) l(r);
  }
}

class ScriptedStt implements SpeechToText {
  readonly name = 'scripted';
  readonly sessions: ScriptedSession[] = [];
  startSession(opts: SttSessionOptions): SttSession {
    const s = new ScriptedSession(opts);
    this.sessions.push(s);
    return s;
  }
}

async function until(cond: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not met within 10 s: ${what}`);
    await new Promise((r) => setTimeout(r, 5));
  }
}

interface Setup {
  outcome: 'granted' | 'declined';
  onDecline?: 'continue-unrecorded' | 'hangup';
  hooks?: Partial<Record<Hook, (actions: Parameters<Agent['runTurn']>[1]) => Promise<void>>>;
}

async function setup(t: TestContext, opts: Setup) {
  const store = openTestStore();
  const clock = new MediaClock();
  clock.start();
  t.after(() => {
    clock.stop();
    store.close();
  });
  await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const policy = resultOf<{ policy_id: string }>(
    await store.submit(consent_policy_created, { name: 'default', mode: 'opt-in', disclosure_text: 'We record calls.', on_decline: opts.onDecline ?? 'continue-unrecorded' }, T),
  );
  const { call_id: callId } = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'webrtc', provider_call_id: 'm1', from: 'a', to: 'b' }, T));
  resultOf(await store.submit(call_answered, { call_id: callId }, T));
  const { consent_id } = resultOf<{ consent_id: string }>(await store.submit(consent_started, { call_id: callId, policy_id: policy.policy_id }, T));
  resultOf(await store.submit(consent_decided, { consent_id, outcome: opts.outcome, method: 'dtmf', evidence: { digit: opts.outcome === 'granted' ? '1' : '2' } }, T));

  const stt = new ScriptedStt();
  const rec = { paused: [] as string[], finished: [] as true[] };
  const agents = { retained: 0, released: 0 };
  const turns: Hook[] = [];
  const agent: Agent = {
    name: 'a',
    version: '1',
    has: (hook) => opts.hooks?.[hook] !== undefined,
    runTurn: async (input, actions) => {
      turns.push(input.hook);
      await opts.hooks?.[input.hook]?.(actions);
      return { state: {} };
    },
    runTool: async () => null,
  };
  const handle: RecordingHandle = {
    recordingId: 'rec-1',
    tap: { name: 'recorder', process: () => undefined },
    pause: async (reason) => void rec.paused.push(reason),
    finish: async () => void rec.finished.push(true),
  };
  const deps: SessionDeps = {
    store,
    clock,
    tts: { name: 'silence', synthesize: async (_text, rate) => new Int16Array(rate / 50) },
    agents: {
      select: async () => agent,
      retain: () => void agents.retained++,
      release: () => void agents.released++,
    },
    logger: pino({ level: 'silent' }),
    stt,
    recordings: { begin: async () => handle },
  };
  const reducers = (name: string) => [...store.events()].filter((e) => e.reducer === name && (e.args as { call_id?: string }).call_id === callId);
  return { store, callId, deps, stt, rec, agents, turns, reducers };
}

test('the close cascade runs once: transcriber closed, agent released, one media loss, one recording flush', async (t) => {
  const s = await setup(t, { outcome: 'granted' });
  const leg = new MemoryLeg(false);
  let onClosed = 0;
  const session = await CallSession.attach(s.deps, { tenant: 'acme', callId: s.callId }, leg, () => onClosed++);
  await until(() => s.stt.sessions.length === 1, 'the transcriber starts once consent is granted');
  assert.deepEqual(s.stt.sessions[0]!.opts.phrases, ['stop recording', 'stop the recording'], 'it listens for the withdrawal phrases');

  leg.drop('socket gone');
  leg.drop('socket gone again');
  leg.close('and closed by us', false);
  await until(() => s.rec.finished.length > 0, 'the recording segment is flushed');
  await session.settled();

  assert.equal(session.isClosed, true);
  assert.equal(onClosed, 1, 'the call manager hears of the close once');
  assert.equal(s.stt.sessions[0]!.closed, true, 'the recogniser is closed with the media');
  assert.deepEqual(s.agents, { retained: 1, released: 1 }, 'the agent version is released once');
  assert.deepEqual(s.rec.finished, [true], 'the segment is flushed once (finalizing is the recording service\'s, once the call row is ended)');
  assert.equal(s.reducers('call_media_lost').length, 1, 'one media loss: the call waits for a resume');
  assert.equal(s.store.read('acme').calls.get(s.callId)?.state, 'resuming');
});

test('a gather waiting in a turn hears the session close: it times out and the turn ends', async (t) => {
  let gathered: GatherResult | null = null;
  const s = await setup(t, {
    outcome: 'granted',
    hooks: {
      onStart: async (actions) => {
        gathered = await actions.gather({ dtmf: { maxDigits: 4 }, timeoutMs: 120_000 });
      },
    },
  });
  const leg = new MemoryLeg(false);
  const session = await CallSession.attach(s.deps, { tenant: 'acme', callId: s.callId }, leg);
  await until(() => s.turns.includes('onStart'), 'the agent starts');
  leg.drop('caller gone');
  await until(() => gathered !== null, 'the gather resolves');
  await session.settled();
  assert.deepEqual(gathered, { kind: 'timeout' });
  assert.deepEqual(s.turns, ['onStart'], 'no turn after the close');
});

test('the caller saying "stop recording": consent withdrawn, recording paused, transcription stops, the phrase is not transcribed', async (t) => {
  const s = await setup(t, { outcome: 'granted' });
  const leg = new MemoryLeg(false);
  const session = await CallSession.attach(s.deps, { tenant: 'acme', callId: s.callId }, leg);
  t.after(() => leg.close('test over', false));
  await until(() => s.stt.sessions.length === 1, 'the transcriber starts');
  const stt = s.stt.sessions[0]!;
  stt.say('I would like to pay my bill', 0);
  await until(() => s.reducers('transcript_appended').length === 1, 'the first words are transcribed');

  stt.say('okay stop recording', 2000, 'stop recording');
  await until(() => s.rec.paused.length === 1, 'the recording pauses');
  const withdrawn = s.reducers('consent_withdrawn');
  assert.equal(withdrawn.length, 1);
  assert.deepEqual((withdrawn[0]!.args as { method: string }).method, 'speech');
  assert.deepEqual(s.rec.paused, ['consent withdrawn']);
  assert.equal(stt.closed, true, 'the recogniser stops');
  stt.say('my card number is', 4000); // a result the recogniser still had in flight
  leg.press('*');
  leg.press('9'); // a second withdrawal, by keypad, is nothing new
  await new Promise((r) => setImmediate(r));
  assert.equal(s.reducers('transcript_appended').length, 1, 'neither the phrase nor what followed is transcribed');
  assert.equal(s.reducers('consent_withdrawn').length, 1);
  assert.equal(session.isClosed, false, 'the call goes on, unrecorded');
});

test('consent declined under a hang-up policy: the caller hears goodbye, the call ends, the agent never runs', async (t) => {
  const s = await setup(t, { outcome: 'declined', onDecline: 'hangup', hooks: { onStart: async () => undefined, onDtmf: async () => undefined } });
  const leg = new MemoryLeg(false);
  const session = await CallSession.attach(s.deps, { tenant: 'acme', callId: s.callId }, leg);
  leg.press('5');
  await until(() => leg.closed, "the leg is closed");
  await session.settled();
  const ended = s.reducers('call_ended');
  assert.equal(ended.length, 1);
  assert.equal((ended[0]!.args as { reason: string }).reason, 'consent declined');
  assert.ok(leg.sentFrames.length > 0, 'the goodbye was played');
  assert.deepEqual(s.turns, [], 'no agent turn for a caller who declined');
  assert.equal(s.reducers('call_media_lost').length, 0, 'an ended call lost no media');
  assert.equal(s.stt.sessions.length, 0, 'no transcriber without consent');
});
