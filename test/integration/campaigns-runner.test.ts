/**
 * The campaign runner (campaigns/scheduler.ts) over a real store with a scripted dialer: the dialer writes each
 * call's row as a real one does (call_dialed before anything is "sent"), and each callee answers and hangs up after
 * a short pseudo-random time, or is busy once. What must hold is read back from the rows: never more live attempts
 * than max_concurrent, decisions never closer than 1/cps (their command times), DNC numbers never dialled, each
 * number dialled once (plus its retries), and a restart neither loses nor repeats a decision.
 */
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { test } from 'node:test';
import pino from 'pino';
import { CampaignRunner } from '../../campaigns/scheduler.ts';
import type { DialRequest, DialResult, OutboundDialer } from '../../ingress/port.ts';
import type { SwitchboardTables } from '../../schema/index.ts';
import {
  call_answered, call_dialed, call_ended, campaign_attempt_decided, campaign_created, dnc_added, number_added, tenant_created,
} from '../../schema/reducers.ts';
import type { Store } from '../../store/index.ts';
import { openTestStore, resultOf } from '../helpers/store.ts';

const FROM = '+15550001111';
const who = { tenant: 'acme', caller: 'test' };
const target = (i: number): string => `sip:+1555010${String(i).padStart(4, '0')}@callee.test`;

async function seed(store: Store<SwitchboardTables>): Promise<void> {
  resultOf(await store.submit(tenant_created, { id: 'acme', name: 'Acme' }, who));
  resultOf(await store.submit(number_added, { number: FROM, agent: 'default', provider: 'sip' }, who));
}

/** A dialer whose callees answer after 20–120 ms (deterministic per number) or are busy on their first try. */
class ScriptedDialer implements OutboundDialer {
  readonly dialled: string[] = [];
  live = 0;
  maxLive = 0;
  constructor(
    private readonly store: Store<SwitchboardTables>,
    private readonly busyOnce: ReadonlySet<string>,
  ) {}

  targetProblem(): string | null {
    return null;
  }

  async dial(req: DialRequest): Promise<DialResult> {
    const id = crypto.randomUUID();
    const r = resultOf(await this.store.submit(call_dialed, { provider: 'sip', provider_call_id: id, from: req.from, to: req.to, agent: req.agent ?? null }, { tenant: req.tenant, caller: req.caller }));
    const busy = this.busyOnce.has(req.to) && !this.dialled.includes(req.to);
    this.dialled.push(req.to);
    this.live++;
    this.maxLive = Math.max(this.maxLive, this.live);
    const holdMs = 20 + (crypto.createHash('sha256').update(req.to).digest()[0]! % 100);
    setTimeout(() => {
      void (async () => {
        if (!busy) resultOf(await this.store.submit(call_answered, { call_id: r.call_id }, who));
        resultOf(await this.store.submit(call_ended, { call_id: r.call_id, reason: busy ? 'sip:busy' : 'sip:bye' }, who));
        this.live--;
      })();
    }, holdMs);
    return { callId: r.call_id, providerCallId: id, sipCallId: id };
  }
}

async function until(what: string, ok: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!ok()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function campaignArgs(numbers: string[], over: Partial<{ max_concurrent: number; calls_per_second: number; max_attempts: number }> = {}) {
  return {
    name: 'test', agent: null, from: FROM, numbers: numbers.map((number) => ({ number, name: null, timezone: null })), window_start: '00:00',
    window_end: '24:00', timezone: 'UTC', max_concurrent: over.max_concurrent ?? 4, calls_per_second: over.calls_per_second ?? 20,
    max_attempts: over.max_attempts ?? 2, retry_backoff_ms: 50, owner_node: 'test-node',
  };
}

test('30 numbers, 4 concurrent, 20/s: limits hold in the rows, DNC never dialled, busy retried once', { timeout: 60_000 }, async () => {
  const store = openTestStore();
  await seed(store);
  const numbers = Array.from({ length: 30 }, (_, i) => target(i));
  const dnc = [numbers[3]!, numbers[10]!, numbers[29]!];
  const busy = new Set([numbers[5]!, numbers[6]!]);
  for (const n of dnc) resultOf(await store.submit(dnc_added, { number: n.replace(/^sip:|@.*$/g, ''), reason: 'asked' }, who)); // listed by number, dialled as a URI
  const dialer = new ScriptedDialer(store, busy);
  const runner = new CampaignRunner({ store, dialer: () => dialer, logger: pino({ level: 'silent' }), tickMs: 10 });
  const { campaign_id } = resultOf(await store.submit(campaign_created, campaignArgs(numbers), who));
  await runner.start();
  try {
    await until('the campaign to complete', () => store.read('acme').campaigns.get(campaign_id)?.state === 'completed');
    await runner.idle();
  } finally {
    runner.stop();
  }
  const read = store.read('acme');
  const c = read.campaigns.get(campaign_id)!;
  assert.equal(c.numbers_dnc, 3);
  assert.equal(c.numbers_answered, 27);
  assert.equal(c.live, 0);
  for (const n of dnc) assert.ok(!dialer.dialled.includes(n), `${n} is on the DNC list and was dialled`);
  for (const n of numbers.filter((x) => !dnc.includes(x))) {
    assert.equal(dialer.dialled.filter((d) => d === n).length, busy.has(n) ? 2 : 1, `${n}: dialled once, a busy one twice`);
  }
  const attempts = read.campaign_attempts.find({ campaign_id }).sort((a, b) => a.decided_at - b.decided_at);
  assert.equal(attempts.length, 29);
  for (let i = 1; i < attempts.length; i++) assert.ok(attempts[i]!.decided_at - attempts[i - 1]!.decided_at >= 50, `decisions ${i - 1} and ${i} closer than 1/20 s`);
  for (const a of attempts) {
    const live = attempts.filter((b) => b.decided_at <= a.decided_at && (b.finished_at ?? Infinity) > a.decided_at).length;
    assert.ok(live <= 4, `${live} attempts live at ${a.decided_at}`);
  }
  assert.ok(dialer.maxLive <= 4);
  store.close();
});

test('a restart: a decision without a call row is dialled again, one with a call row is not', { timeout: 60_000 }, async () => {
  const store = openTestStore();
  await seed(store);
  const numbers = [target(1), target(2), target(3)];
  const { campaign_id } = resultOf(await store.submit(campaign_created, campaignArgs(numbers, { max_attempts: 1 }), who));
  const nums = store.read('acme').campaign_numbers.find({ campaign_id }, { orderBy: 'position' });
  const run = { tenant: 'acme', caller: `campaign:${campaign_id}` };
  // The previous process decided numbers 1 and 2, then died: number 1 before its dialer wrote anything, number 2
  // after its call row existed (that call is then ended by the restart, as SIP ends a call left ringing).
  resultOf(await store.submit(campaign_attempt_decided, { campaign_id, number_id: nums[0]!.id, local_time: 'x' }, run));
  await new Promise((r) => setTimeout(r, 60));
  resultOf(await store.submit(campaign_attempt_decided, { campaign_id, number_id: nums[1]!.id, local_time: 'x' }, run));
  const orphan = resultOf(await store.submit(call_dialed, { provider: 'sip', provider_call_id: 'dead-1', from: FROM, to: numbers[1]!, agent: null }, run));
  resultOf(await store.submit(call_ended, { call_id: orphan.call_id, reason: 'sip:interrupted' }, who));

  const dialer = new ScriptedDialer(store, new Set());
  const runner = new CampaignRunner({ store, dialer: () => dialer, logger: pino({ level: 'silent' }), tickMs: 10 });
  await runner.start();
  try {
    await until('the campaign to complete', () => store.read('acme').campaigns.get(campaign_id)?.state === 'completed');
    await runner.idle();
  } finally {
    runner.stop();
  }
  assert.deepEqual(dialer.dialled.sort(), [numbers[0], numbers[2]].sort(), 'number 2 was not dialled again');
  const read = store.read('acme');
  const byNumber = (n: string) => read.campaign_attempts.find({ campaign_id, number: n }).map((a) => `${a.attempt}:${a.state}:${a.outcome}`).sort();
  assert.deepEqual(byNumber(numbers[0]!), ['1:abandoned:abandoned', '2:finished:answered']);
  assert.deepEqual(byNumber(numbers[1]!), ['1:finished:sip:interrupted']);
  assert.equal(read.campaign_attempts.findOne({ number: numbers[1]! })!.call_id, orphan.call_id);
  assert.equal(read.calls.find({ to_uri: numbers[1]! }).length, 1);
  store.close();
});
