/**
 * A paused agent across a restart (agents/registry.ts `start`): the paused agent's live version is not started
 * again — unless an unended call still holds it (a call kept by a keep-live pause) — and a resume starts it.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, test } from 'node:test';
import pino from 'pino';
import { bundleAgent } from '../../agents/bundle.ts';
import { defaultAgent } from '../../agents/default-agent.ts';
import { AgentRegistry } from '../../agents/registry.ts';
import { conciergeSource } from '../helpers/agent-source.ts';
import { ensureTenant } from '../helpers/call-fixture.ts';
import { openTestStore, resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { agent_paused, agent_resumed, agent_turn_started, call_answered, call_ended, call_received, consent_decided, consent_policy_created, consent_started } from '../../schema/reducers.ts';

const T = { tenant: 'acme', caller: 'system:test' };
const closers: Array<() => void> = [];
after(() => {
  for (const c of closers.reverse()) c();
});

function registry(store: ReturnType<typeof openTestStore>, dir: string): AgentRegistry {
  const r = new AgentRegistry({ store, dataDir: dir, logger: pino({ level: 'silent' }), builtins: new Map([['default', defaultAgent]]), fallback: defaultAgent });
  closers.push(() => r.close());
  return r;
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`${what}: not within ${ms} ms`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

test('restart while paused: the worker stays stopped unless a kept call holds it; resume starts it', { timeout: 60_000 }, async () => {
  const dir = tmpDir('sb-pause-restart-');
  const store = openTestStore({ dataDir: dir });
  closers.push(() => store.close());
  await ensureTenant(store, 'acme');
  const file = path.join(dir, 'v1.ts');
  fs.writeFileSync(file, conciergeSource('v1', { work: dir }));
  const first = registry(store, dir);
  await first.start();
  await first.deploy('acme', 'system:test', 'concierge', (await bundleAgent(file)).code, { rollout: 100, migrate: false });
  assert.equal(first.workers, 1);
  // A call on v1 (its turn pinned it), kept by a keep-live pause.
  const callId = resultOf(await store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-kept', from: '+1', to: '+2', agent: 'concierge' }, T)).call_id;
  resultOf(await store.submit(call_answered, { call_id: callId }, T));
  resultOf(await store.submit(agent_paused, { agent: 'concierge', keep_live: true }, T));
  await until(() => first.workers === 0, 'the idle worker stops at the pause');
  first.close();

  const kept = registry(store, dir);
  await kept.start();
  assert.equal(kept.workers, 0, 'no call pinned to v1 yet: nothing started for a paused agent');
  kept.close();
  // The call's consent, then its first turn on v1: the call is pinned to v1 (calls.agent_version).
  const policy = resultOf(await store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, T)).policy_id;
  const consent = resultOf(await store.submit(consent_started, { call_id: callId, policy_id: policy }, T)).consent_id;
  resultOf(await store.submit(consent_decided, { consent_id: consent, outcome: 'granted', method: 'implied', evidence: {} }, T));
  resultOf(await store.submit(agent_turn_started, { call_id: callId, agent: 'concierge', version: 'v1', turn: 1, kind: 'onStart' }, T));
  assert.equal(store.read('acme').calls.get(callId)?.agent_version, 'v1');
  const again = registry(store, dir);
  await again.start();
  assert.equal(again.workers, 1, 'a call pinned to the paused agent\'s version keeps its worker across the restart');
  again.close();

  resultOf(await store.submit(call_ended, { call_id: callId, reason: 'done' }, T));
  const last = registry(store, dir);
  await last.start();
  assert.equal(last.workers, 0);
  resultOf(await store.submit(agent_resumed, { agent: 'concierge' }, T));
  await until(() => last.workers === 1, 'resume starts the live version');
});
