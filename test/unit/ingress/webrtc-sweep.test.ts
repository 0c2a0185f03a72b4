/**
 * The WebRTC resume-grace sweep in cluster mode (ingress/webrtc/sessions.ts): every node holds every call row, so a
 * node must not end, as "not resumed", a call that another node owns while that node's lease runs; a call whose
 * owner is stopped (or lost) is orphaned anywhere and ended after the grace. Three nodes share one data dir opened
 * in turn under their names (each command carries its node); the sweep runs on node-b with no browser attached.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import pino from 'pino';
import type { CallControl } from '../../../bridge/call-control.ts';
import { WebrtcSessions } from '../../../ingress/webrtc/sessions.ts';
import { schema } from '../../../schema/index.ts';
import { call_received, node_heartbeat, node_stopped } from '../../../schema/reducers.ts';
import { resolveDurability, Store } from '../../../store/index.ts';
import { resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';

const OPS = { tenant: 'default', caller: 'system:node' };

function asNode(dir: string, node: string) {
  return Store.open({ dataDir: dir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node });
}

async function callOf(dir: string, node: string, session: string, stop: boolean): Promise<string> {
  const s = asNode(dir, node);
  resultOf(await s.submit(node_heartbeat, { lease_ms: 600_000, version: '0.1.0', boot: true }, OPS));
  const id = resultOf(await s.submit(call_received, { provider: 'webrtc', provider_call_id: session, from: 'webrtc:browser', to: 'demo' }, { tenant: 'default', caller: 'test' })).call_id;
  if (stop) resultOf(await s.submit(node_stopped, { reason: 'test' }, OPS));
  await s.close();
  return id;
}

test("a node leaves alone a WebRTC call another live node owns, and ends after the grace one whose owner stopped", async () => {
  const dir = tmpDir('sb-wrtc-sweep-');
  const live = await callOf(dir, 'node-a', 'wrtc_live', false);
  const orphan = await callOf(dir, 'node-c', 'wrtc_orphan', true);
  const store = asNode(dir, 'node-b');
  const ended: string[] = [];
  const calls = { hasSession: () => false, end: async (ref: { callId: string }) => void ended.push(ref.callId) } as unknown as CallControl;
  const sessions = new WebrtcSessions({ store, calls, logger: pino({ level: 'silent' }), resumeGraceMs: 1 });
  try {
    await sessions['sweep'](); // both seen; the orphan's grace starts
    await new Promise((r) => setTimeout(r, 5));
    await sessions['sweep']();
    assert.deepEqual(ended, [orphan], `only the call of the stopped node is ended (live: ${live})`);
  } finally {
    sessions.close();
    await store.close();
  }
});
