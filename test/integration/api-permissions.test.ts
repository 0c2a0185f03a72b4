/**
 * The permission matrix, route by route, over HTTP: for every role and every
 * control-plane route, a role without the route's permission gets 403 and
 * nothing happens; a role with it gets past the check (its answer is not
 * 401/403). Mutating routes are sent an empty body, so an allowed role gets
 * the 400 of validation — which only happens after the permission check —
 * and no state changes. The store checks again: a reducer refuses a user
 * whose role lacks the permission even when the API is bypassed.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { FsBlobStore } from '../../recording/blob-fs.ts';
import { loadOrCreateMasterKey } from '../../recording/crypto.ts';
import { can, MATRIX, type Permission, type Role } from '../../schema/index.ts';
import { api, userToken } from '../helpers/api.ts';
import { finishedCall, type FinishedCall } from '../helpers/call-fixture.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { recording_accessed, recording_hold_set, user_created } from '../../schema/reducers.ts';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
let call: FinishedCall;
const tokens = {} as Record<Role, { token: string; userId: string }>;
const ROLES: Role[] = ['admin', 'compliance', 'auditor', 'developer'];

before(async () => {
  gw = await startTestGateway();
  call = await finishedCall(gw.store, new FsBlobStore(gw.dataDir), { tenant: 'default', master: loadOrCreateMasterKey(gw.dataDir) });
  for (const role of ROLES) tokens[role] = await userToken(gw.publicUrl, role);
});
after(async () => {
  await gw?.stop();
});

interface Route {
  method: string;
  path: () => string;
  permission: Permission;
  body?: unknown;
}

const ROUTES: Route[] = [
  { method: 'GET', path: () => '/v1/users', permission: 'users:read' },
  { method: 'POST', path: () => '/v1/users', permission: 'users:manage', body: {} },
  { method: 'POST', path: () => '/v1/tenants', permission: 'tenants:manage', body: {} },
  { method: 'GET', path: () => '/v1/numbers', permission: 'numbers:read' },
  { method: 'POST', path: () => '/v1/numbers', permission: 'numbers:write', body: {} },
  { method: 'DELETE', path: () => '/v1/numbers/num_missing', permission: 'numbers:write' },
  { method: 'GET', path: () => '/v1/consent-policies', permission: 'policies:read' },
  { method: 'POST', path: () => '/v1/consent-policies', permission: 'policies:write', body: {} },
  { method: 'GET', path: () => '/v1/calls', permission: 'calls:read' },
  { method: 'GET', path: () => '/v1/calls?q=appointment', permission: 'content:read' },
  { method: 'GET', path: () => `/v1/calls/${call.callId}`, permission: 'calls:read' },
  { method: 'GET', path: () => `/v1/calls/${call.callId}/recording`, permission: 'content:read' },
  { method: 'GET', path: () => `/v1/calls/${call.callId}/transcript?format=vtt`, permission: 'content:read' },
  { method: 'GET', path: () => `/v1/calls/${call.callId}/events`, permission: 'content:read' },
  { method: 'GET', path: () => `/v1/calls/${call.callId}/evidence`, permission: 'evidence:export' },
  { method: 'PUT', path: () => `/v1/recordings/${call.recordingId}/hold`, permission: 'holds:write' },
  { method: 'DELETE', path: () => `/v1/recordings/${call.recordingId}/hold`, permission: 'holds:write' },
  { method: 'GET', path: () => '/v1/access-log', permission: 'access_log:read' },
  { method: 'GET', path: () => '/v1/audit/verify', permission: 'audit:verify' },
  { method: 'GET', path: () => '/v1/cluster/nodes', permission: 'tenants:manage' },
  { method: 'GET', path: () => '/v1/nodes', permission: 'tenants:manage' },
  { method: 'GET', path: () => '/v1/agents', permission: 'agents:read' },
  { method: 'GET', path: () => '/v1/agents/pauses', permission: 'agents:read' },
  { method: 'POST', path: () => '/v1/agents/nobody/pause', permission: 'agents:deploy', body: {} },
  { method: 'POST', path: () => '/v1/agents/nobody/resume', permission: 'agents:deploy', body: {} },
  { method: 'GET', path: () => '/v1/fallbacks', permission: 'numbers:read' },
  { method: 'PUT', path: () => '/v1/numbers/num_missing/fallback', permission: 'numbers:write', body: { kind: 'message' } },
  { method: 'PUT', path: () => '/v1/fallback', permission: 'numbers:write', body: {} },
  { method: 'POST', path: () => '/v1/calls', permission: 'calls:originate', body: {} },
];

test('every route answers each role as the matrix says: 403 without the permission, past the check with it', async () => {
  const mismatches: string[] = [];
  for (const route of ROUTES) {
    for (const role of ROLES) {
      const before = gw.store.head.seq;
      const r = await api(gw.publicUrl, route.method, route.path(), { token: tokens[role].token, body: route.body });
      const allowed = can(role, route.permission);
      if (allowed && (r.status === 401 || r.status === 403)) mismatches.push(`${role} ${route.method} ${route.path()}: ${r.status}, expected access`);
      if (!allowed) {
        if (r.status !== 403) mismatches.push(`${role} ${route.method} ${route.path()}: ${r.status}, expected 403`);
        else if (gw.store.head.seq !== before) mismatches.push(`${role} ${route.method} ${route.path()}: refused but the log moved`);
      }
    }
  }
  assert.deepEqual(mismatches, []);
});

test('the rules the issue names: only admin manages users; developers deploy but never fetch recordings; auditors read but cannot change holds', async () => {
  assert.deepEqual(ROLES.filter((r) => can(r, 'users:manage')), ['admin']);
  assert.ok(can('developer', 'agents:deploy') && !can('developer', 'content:read') && !can('developer', 'evidence:export'));
  assert.ok(can('auditor', 'content:read') && can('auditor', 'access_log:read') && !can('auditor', 'holds:write'));
  assert.deepEqual(ROLES.filter((r) => can(r, 'calls:originate')), ['admin', 'developer'], 'outbound calls: admin and developer');
  const dev = await api(gw.publicUrl, 'GET', `/v1/calls/${call.callId}/recording`, { token: tokens.developer.token });
  assert.equal(dev.status, 403);
  const aud = await api(gw.publicUrl, 'PUT', `/v1/recordings/${call.recordingId}/hold`, { token: tokens.auditor.token });
  assert.equal(aud.status, 403);
  const comp = await api<{ legal_hold: boolean }>(gw.publicUrl, 'PUT', `/v1/recordings/${call.recordingId}/hold`, { token: tokens.compliance.token });
  assert.equal(comp.status, 200);
  assert.equal(gw.store.read('default').recordings.get(call.recordingId)?.legal_hold, true);
  // Every role of the matrix is covered by a route above.
  for (const role of ROLES) assert.ok(MATRIX[role].size > 0);
});

test('a developer sees call metadata but no transcript text or action payloads, and writes no access row', async () => {
  const rows = () => gw.store.read('default').access_log.find({ call_id: call.callId }).length;
  const before = rows();
  const r = await api<{ transcript: Array<{ text: string | null }>; agent_actions: Array<{ args: unknown; result: unknown }>; content: boolean }>(
    gw.publicUrl,
    'GET',
    `/v1/calls/${call.callId}`,
    { token: tokens.developer.token },
  );
  assert.equal(r.status, 200);
  assert.equal(r.body.content, false);
  assert.ok(r.body.transcript.every((s) => s.text === null));
  assert.ok(r.body.agent_actions.every((a) => a.args === null && a.result === null));
  assert.equal(JSON.stringify(r.body).includes('appointment'), false, 'no transcript words anywhere in the body');
  assert.equal(rows(), before);
});

test('the store refuses what the API would: a developer\'s recording access or hold change submitted directly is rejected as forbidden', async () => {
  const as = { tenant: 'default', caller: `user:${tokens.developer.userId}` };
  const access = await gw.store.submit(recording_accessed, { call_id: call.callId, recording_id: call.recordingId }, as);
  assert.equal(access.outcome.ok, false);
  assert.equal(!access.outcome.ok && access.outcome.error.code, 'forbidden');
  const hold = await gw.store.submit(recording_hold_set, { recording_id: call.recordingId, hold: false }, { tenant: 'default', caller: `user:${tokens.auditor.userId}` });
  assert.equal(!hold.outcome.ok && hold.outcome.error.code, 'forbidden');
  const user = await gw.store.submit(user_created, { email: 'x@example.com', role: 'admin' }, { tenant: 'default', caller: `user:${tokens.compliance.userId}` });
  assert.equal(!user.outcome.ok && user.outcome.error.code, 'forbidden');
});
