/**
 * NodeDrain (bridge/drain.ts): refuses from the moment it starts, waits for the live calls (and the final status
 * of a call whose media closed), and at the time limit hands calls over (cluster) or ends them (embedded).
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import { NodeDrain, type DrainDeps } from '../../../bridge/drain.ts';

class FakeCalls {
  readonly sessions = new Set<string>();
  hungUp: string[] = [];
  get size(): number {
    return this.sessions.size;
  }
  ids(): Iterable<string> {
    return this.sessions;
  }
  async hangupAll(reason: string): Promise<void> {
    this.hungUp.push(reason);
    this.sessions.clear();
  }
}

function drainWith(over: Partial<Omit<DrainDeps, 'ended'>> & { calls: FakeCalls; ended?: Set<string> }): { drain: NodeDrain; stops: string[]; marked: number[] } {
  const stops: string[] = [];
  const marked: number[] = [];
  const ended = over.ended ?? new Set<string>();
  const drain = new NodeDrain({
    markDraining: async (ms) => {
      marked.push(ms);
      return { drainUntil: 1_000 + ms };
    },
    live: over.calls,
    ended: (id) => ended.has(id),
    cluster: over.cluster ?? false,
    timeoutMs: over.timeoutMs ?? 60_000,
    stop: async (reason) => {
      stops.push(reason);
    },
    logger: pino({ level: 'silent' }),
    pollMs: 5,
    settleMs: over.settleMs ?? 60_000,
  });
  return { drain, stops, marked };
}

test('a drain is active at once, recorded once; with no call it stops `drained`', async () => {
  const calls = new FakeCalls();
  const { drain, stops, marked } = drainWith({ calls, timeoutMs: 5000 });
  assert.equal(drain.active, false);
  const first = drain.start();
  assert.equal(drain.active, true, 'refusing before the row is committed');
  assert.deepEqual(await first, { started: true, drainUntil: 6000, liveCalls: 0, timeoutMs: 5000 });
  assert.equal((await drain.start()).started, false, 'a second request joins the running drain');
  assert.deepEqual(await drain.done, { how: 'drained', callsLeft: 0 });
  assert.deepEqual(marked, [5000]);
  assert.deepEqual(stops, ['drained']);
});

test('waits for the live call, then for its row to end after its media closed', async () => {
  const calls = new FakeCalls();
  const ended = new Set<string>();
  calls.sessions.add('c1');
  const { drain, stops } = drainWith({ calls, ended });
  await drain.start();
  let done = false;
  void drain.done.then(() => (done = true));
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(done, false, 'the call is live');
  calls.sessions.delete('c1'); // media closed (Twilio `stop`): the final status has not come yet
  await new Promise((r) => setTimeout(r, 30));
  assert.equal(done, false, 'waits for the final status');
  ended.add('c1');
  assert.deepEqual(await drain.done, { how: 'drained', callsLeft: 0 });
  assert.deepEqual(stops, ['drained']);
});

test('a call whose row never ends is waited for only settleMs after its media closed', async () => {
  const calls = new FakeCalls();
  calls.sessions.add('c1');
  const { drain, stops } = drainWith({ calls, settleMs: 20 });
  await drain.start();
  calls.sessions.delete('c1');
  assert.deepEqual(await drain.done, { how: 'drained', callsLeft: 0 });
  assert.deepEqual(stops, ['drained']);
});

test('time limit, cluster: the calls left are not ended; the node stops (node_stopped hands them over)', async () => {
  const calls = new FakeCalls();
  calls.sessions.add('c1');
  calls.sessions.add('c2');
  const { drain, stops } = drainWith({ calls, cluster: true, timeoutMs: 20 });
  await drain.start();
  assert.deepEqual(await drain.done, { how: 'timeout', callsLeft: 2 });
  assert.deepEqual(calls.hungUp, []);
  assert.deepEqual(stops, ['drain timeout (20 ms): 2 call(s) handed over']);
});

test('time limit, embedded: the calls left are ended with the reason, then the node stops', async () => {
  const calls = new FakeCalls();
  calls.sessions.add('c1');
  const { drain, stops } = drainWith({ calls, timeoutMs: 20 });
  await drain.start();
  assert.deepEqual(await drain.done, { how: 'timeout', callsLeft: 1 });
  assert.deepEqual(calls.hungUp, ['drain timeout (20 ms)']);
  assert.deepEqual(stops, ['drain timeout (20 ms): 1 call(s) ended']);
});
