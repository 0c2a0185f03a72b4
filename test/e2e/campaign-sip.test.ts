/**
 * The campaign: 50 numbers (a CSV upload) at 5 calls/s with at most 10 live, against sipp callees that
 * answer and hang up after a random 0.5–2.5 s, in a private network namespace. Three numbers are on the tenant's
 * do-not-call list. The gateway is killed with -9 mid-campaign and restarted; the campaign resumes by itself.
 * Read back from the rows (not from wall-clock timing): never more than 10 attempts live at any decision, decisions
 * never closer than 200 ms (their command times), DNC numbers never dialled, and no number dialled twice.
 *
 * The waits fail only when the campaign stops moving for a minute (its attempts and finished numbers), not after a
 * fixed total, so a loaded machine only makes them longer. Known remaining cause of failures (not fixed here): with
 * the restart delayed by 25 s, the campaign stalled in 3 of 4 runs with 3 numbers `live` — calls answered before
 * the kill that stay live after the restart, apparently those whose callee hung up while the node was down (sipp's
 * BYE retransmitted for longer, `-max_retrans`/`-max_non_invite_retrans 60`, did not change it). Under load a slow
 * restart can hit the same case. Such a call now ends `sip:rtp-timeout` (ingress/sip/rtp-timeout.ts): the test runs
 * with SWITCHBOARD_SIP_RTP_TIMEOUT_MS=10000 (sipp's callees send no RTP, and hang up within 2.5 s).
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { api } from '../helpers/api.ts';
import { ADMIN_TOKEN, freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { insidePrivateNetwork } from '../helpers/netns.ts';
import { startSippUas, type SippUas } from '../helpers/sipp-uas.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const FROM = '+15558880000';
const COUNT = 50;
const target = (i: number): string => `sip:+1555020${String(i).padStart(4, '0')}@127.0.0.1:5070`;

async function seed(dataDir: string): Promise<void> {
  const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
  const who = { tenant: 'default', caller: 'test' };
  resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
  const p = resultOf(await store.submit(consent_policy_created, { name: 'notice', mode: 'notify', disclosure_text: 'This call is recorded.', timeout_ms: 5_000, retries: 0 }, who));
  resultOf(await store.submit(number_added, { number: FROM, agent: 'default', consent_policy_id: p.policy_id }, who));
  store.close();
}

interface Progress {
  state: string;
  progress: { total: number; finished: number; dnc: number; attempts: number; live: number };
}

async function progress(g: GatewayProcess, id: string): Promise<Progress> {
  const r = await api<Progress>(g.publicUrl, 'GET', `/v1/campaigns/${id}`);
  assert.equal(r.status, 200, JSON.stringify(r.body));
  return r.body;
}

/**
 * Polls `probe` until it gives a value; fails only when the campaign has not moved (`moved`: its attempts and
 * finished numbers) for `stallMs`, so a slow, loaded machine only makes the wait longer.
 */
async function until<T>(what: string, probe: () => Promise<T | null>, moved: () => string, stallMs: number, state: () => string = () => ''): Promise<T> {
  let mark = moved();
  let since = Date.now();
  for (;;) {
    const v = await probe();
    if (v !== null) return v;
    const now = moved();
    if (now !== mark) (mark = now), (since = Date.now());
    if (Date.now() - since > stallMs) throw new Error(`waiting for ${what}: nothing moved for ${stallMs} ms: ${state()}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

if (insidePrivateNetwork(import.meta.filename, 600_000)) {
  let gw: GatewayProcess | null = null;
  let sipp: SippUas | null = null;
  after(async () => {
    sipp?.kill();
    await gw?.stop();
  });

  test('50 numbers at 5/s, 10 live at most, DNC skipped, kill -9 mid-campaign: no number dialled twice', { timeout: 580_000 }, async () => {
    const port = await freePort();
    const dataDir = tmpDir('sb-campaign-');
    await seed(dataDir);
    // sipp's callees send no RTP and hang up within 2.5 s: a call still live after 10 s without RTP is one whose BYE
    // was lost while the node was down, and the RTP inactivity timeout ends it (the default 60 s is as long as the waits).
    const env = { SWITCHBOARD_SIP_PORT: '5060', SWITCHBOARD_RTP_PORTS: '33000-33199', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none', SWITCHBOARD_SIP_RTP_TIMEOUT_MS: '10000' };
    gw = await spawnGateway({ port, dataDir, env });
    sipp = await startSippUas({ scenario: 'uas_answer_random.xml', ip: '127.0.0.1', port: 5070, timeoutS: 560, calls: COUNT });
    const dnc = [target(4), target(17), target(33)];
    for (const n of dnc) {
      const r: { status: number; body: unknown } = await api(gw.publicUrl, 'POST', '/v1/dnc', { body: { number: n.replace(/^sip:|@.*$/g, ''), reason: 'asked not to be called' } });
      assert.equal(r.status, 201, JSON.stringify(r.body));
    }
    const csv = ['number,name,timezone', ...Array.from({ length: COUNT }, (_, i) => `${target(i)},callee ${i},Europe/Paris`)].join('\n');
    const q = new URLSearchParams({ from: FROM, calls_per_second: '5', max_concurrent: '10', max_attempts: '1', window: '00:00-24:00' });
    const res = await fetch(`${gw.publicUrl}/v1/campaigns?${q}`, { method: 'POST', headers: { authorization: `Bearer ${ADMIN_TOKEN}`, 'content-type': 'text/csv' }, body: csv });
    const created = (await res.json()) as { id: string; calls_per_second: number };
    assert.equal(res.status, 201, JSON.stringify(created));
    assert.equal(created.calls_per_second, 5);

    // Mid-campaign: some numbers decided, most not.
    const g1 = gw;
    let last: Progress | null = null;
    const moved = (): string => `${last?.progress.attempts}/${last?.progress.finished}`;
    await until('20 attempts', async () => ((last = await progress(g1, created.id)).progress.attempts >= 20 ? true : null), moved, 60_000);
    await gw.kill9();
    gw = await spawnGateway({ port, dataDir, env });
    const g2 = gw;
    const final = await until('the campaign to complete', async () => {
      const p = (last = await progress(g2, created.id));
      return p.state === 'completed' ? p : null;
    }, moved, 60_000, () => `${JSON.stringify(last)}\n${g2.logs.filter((l) => /campaign|outbound|interrupted/i.test(l)).slice(-30).join('\n')}`);
    assert.equal(final.progress.total, COUNT);
    assert.equal(final.progress.dnc, 3);
    const list = await api<{ campaigns: Array<{ id: string }> }>(gw.publicUrl, 'GET', '/v1/campaigns');
    assert.ok(list.body.campaigns.some((c) => c.id === created.id));
    await gw.stop();
    gw = null;

    const store = Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });
    try {
      const read = store.read('default');
      const attempts = read.campaign_attempts.find({ campaign_id: created.id }).sort((a, b) => a.decided_at - b.decided_at);
      const dialled = attempts.filter((a) => a.state !== 'abandoned');
      for (let i = 1; i < attempts.length; i++) {
        assert.ok(attempts[i]!.decided_at - attempts[i - 1]!.decided_at >= 200, `decisions ${i - 1} and ${i} are ${attempts[i]!.decided_at - attempts[i - 1]!.decided_at} ms apart`);
      }
      for (const a of attempts) {
        const live = attempts.filter((b) => b.decided_at <= a.decided_at && (b.finished_at ?? Infinity) > a.decided_at).length;
        assert.ok(live <= 10, `${live} attempts live at ${a.decided_at}`);
      }
      const calls = read.calls.find({ direction: 'outbound' });
      for (const c of calls) {
        const overlapping = calls.filter((o) => o.received_at <= c.received_at && (o.ended_at ?? Infinity) > c.received_at).length;
        assert.ok(overlapping <= 10, `${overlapping} calls live when ${c.id} was dialled`);
      }
      for (let i = 0; i < COUNT; i++) {
        const n = target(i);
        const rows = calls.filter((c) => c.to_uri === n);
        if (dnc.includes(n)) {
          assert.equal(rows.length, 0, `${n} is on the DNC list and was dialled`);
          assert.equal(read.campaign_numbers.findOne({ campaign_id: created.id, number: n })!.state, 'dnc');
        } else {
          assert.equal(rows.length, 1, `${n} dialled ${rows.length} times`);
          assert.equal(dialled.filter((a) => a.number === n).length, 1);
        }
      }
      assert.ok(attempts.every((a) => a.local_time.endsWith('Europe/Paris')), 'the window was checked in the callee\'s zone');
    } finally {
      store.close();
    }
  });
}
