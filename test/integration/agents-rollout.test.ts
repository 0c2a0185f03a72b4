/**
 * The agent registry on a real store with real worker threads: a 10 %
 * rollout over 200 new calls lands within 10 % ± 5; a call's version is
 * stable; migrate moves only the calls the rollout covers; a retired
 * version's worker stops when its last call lets go.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import pino from 'pino';
import { bundleAgent } from '../../agents/bundle.ts';
import { defaultAgent } from '../../agents/default-agent.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import { rolloutBucket } from '../../agents/routing.ts';
import type { Agent } from '../../agents/types.ts';
import { conciergeSource } from '../helpers/agent-source.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { openTestStore, resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_received } from '../../schema/reducers.ts';

const dir = tmpDir('sb-rollout-');
const store = openTestStore({ dataDir: dir });
const registry = new AgentRegistry({ store, dataDir: dir, logger: pino({ level: 'silent' }), builtins: new Map([['default', defaultAgent]]), fallback: defaultAgent });
const T = { tenant: 'acme', caller: 'system:test' };

async function code(version: string): Promise<string> {
  const file = path.join(dir, `${version}.ts`);
  fs.writeFileSync(file, conciergeSource(version, { work: dir }));
  return (await bundleAgent(file)).code;
}

async function newCall(i: number): Promise<string> {
  return resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'twilio', provider_call_id: `CA-rollout-${i}`, from: '+1', to: '+2', agent: 'concierge' }, T)).call_id;
}

before(async () => {
  await ensureTenant(store, 'acme');
});
after(() => {
  registry.close();
  store.close();
});

test('10 % rollout over 200 new calls lands within 10 % ± 5, and each call keeps its pick', { timeout: 60_000 }, async () => {
  const v1 = await registry.deploy('acme', 'system:test', 'concierge', await code('v1'), { rollout: 100, migrate: false });
  assert.equal(v1.status, 'live');
  const v2 = await registry.deploy('acme', 'system:test', 'concierge', await code('v2'), { rollout: 10, migrate: false });
  assert.equal(v2.status, 'live');
  assert.equal(store.read('acme').agent_versions.findOne({ name: 'concierge', version: 'v1' })?.status, 'live', 'v1 keeps the other 90 %');
  const picks: Agent[] = [];
  const ids: string[] = [];
  for (let i = 0; i < 200; i++) {
    const callId = await newCall(i);
    ids.push(callId);
    picks.push(await registry.select({ tenant: 'acme', callId, name: 'concierge', pinned: null }, null));
  }
  const onV2 = picks.filter((a) => a.version === 'v2').length;
  assert.ok(onV2 >= 10 && onV2 <= 30, `${onV2} of 200 calls on v2 (want 20 ± 10)`);
  assert.equal(picks.filter((a) => a.version === 'v1').length, 200 - onV2);
  for (const [i, callId] of ids.entries()) {
    assert.equal((await registry.select({ tenant: 'acme', callId, name: 'concierge', pinned: null }, null)).version, picks[i]!.version, 'stable per call');
    assert.equal(picks[i]!.version === 'v2', rolloutBucket(callId) < 10);
  }
});

test('migrate moves a call at its next turn only when the new rollout covers it; calls stay otherwise', { timeout: 60_000 }, async () => {
  const callIds = await Promise.all(Array.from({ length: 40 }, (_, i) => newCall(1000 + i)));
  const current = await Promise.all(callIds.map((callId) => registry.select({ tenant: 'acme', callId, name: 'concierge', pinned: null }, null)));
  const v3 = await registry.deploy('acme', 'system:test', 'concierge', await code('v3'), { rollout: 50, migrate: true });
  assert.equal(v3.version, 'v3');
  for (const [i, callId] of callIds.entries()) {
    const next = await registry.select({ tenant: 'acme', callId, name: 'concierge', pinned: current[i]!.version }, current[i]!);
    const covered = rolloutBucket(callId) < 50;
    assert.equal(next.version, covered ? 'v3' : current[i]!.version, `call ${i} (bucket ${rolloutBucket(callId)})`);
  }
});

test('a retired version\'s worker stops when its last call lets go; live versions keep theirs', { timeout: 60_000 }, async () => {
  const callId = await newCall(5000);
  const held = await registry.select({ tenant: 'acme', callId, name: 'concierge', pinned: 'v3' }, null);
  assert.equal(held.version, 'v3');
  registry.retain(held);
  await registry.deploy('acme', 'system:test', 'concierge', await code('v4'), { rollout: 100, migrate: false });
  assert.equal(store.read('acme').agent_versions.findOne({ name: 'concierge', version: 'v3' })?.status, 'retired');
  assert.deepEqual(Object.keys(registry.usage('acme', 'concierge')).sort(), ['v3', 'v4'], 'v1/v2 workers (no calls held) stopped; v3 kept for its call');
  registry.release(held);
  assert.deepEqual(Object.keys(registry.usage('acme', 'concierge')), ['v4']);
});
