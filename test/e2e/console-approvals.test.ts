/**
 * The console's pending tool approvals panel, driven by headless Chromium: a compliance user sees a waiting
 * request (tool, arguments as text, call), a new one arrives live over the subscription socket, Approve and Deny
 * (with a reason) are recorded with who and why, and a decided request leaves the panel. A developer (no
 * `tools:approve`) gets no panel.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import { after, before, test } from 'node:test';
import { chromium, type Browser, type Page } from 'playwright-core';
import { api } from '../helpers/api.ts';
import { CHROMIUM, CHROMIUM_ARGS } from '../helpers/chromium.ts';
import { startTestGateway } from '../helpers/gateway.ts';
import { resultOf } from '../helpers/store.ts';
import { call_answered, call_received, tool_approval_requested } from '../../schema/reducers.ts';

const PASSWORD = 'correct horse battery staple';
const HOSTILE = '<img src=x id=pwned> & <script>window.__pwned = 1</script>';

let gw: Awaited<ReturnType<typeof startTestGateway>>;
let browser: Browser;
let callId: string;
const users: Record<'compliance' | 'developer', { id: string; email: string }> = {} as never;

before(async () => {
  if (!fs.existsSync(CHROMIUM)) throw new Error(`no Chromium at ${CHROMIUM}: run "bash scripts/ensure-deps.sh" or set SWITCHBOARD_CHROMIUM`);
  gw = await startTestGateway();
  for (const role of ['compliance', 'developer'] as const) {
    const email = `${role}@approvals.example.com`;
    const r = await api<{ id: string }>(gw.publicUrl, 'POST', '/v1/users', { body: { email, role, password: PASSWORD } });
    assert.equal(r.status, 201, JSON.stringify(r.body));
    users[role] = { id: r.body.id, email };
  }
  const who = { tenant: 'default', caller: 'test' };
  callId = resultOf(await gw.store.submit(call_received, { provider: 'twilio', provider_call_id: 'CA-approvals', from: '+15550001111', to: '+15550002222' }, who)).call_id;
  await gw.store.submit(call_answered, { call_id: callId }, who);
  browser = await chromium.launch({ executablePath: CHROMIUM, args: [...CHROMIUM_ARGS], timeout: 30_000 });
});

after(async () => {
  await browser?.close();
  await gw?.stop();
});

const request = async (requestId: string, args: unknown) =>
  resultOf(await gw.store.submit(tool_approval_requested, { call_id: callId, request_id: requestId, agent: 'cashier', tool: 'refund', args, timeout_ms: 600_000 }, { tenant: 'default', caller: 'agent:cashier' })).approval_id;

async function signedIn(role: 'compliance' | 'developer'): Promise<{ page: Page; problems: string[] }> {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.setDefaultTimeout(15_000);
  const problems: string[] = [];
  page.on('pageerror', (err) => problems.push(`page error: ${err.message}`));
  page.on('console', (msg) => {
    if (msg.type() === 'error' && /Content Security Policy|Refused to/i.test(msg.text())) problems.push(`console: ${msg.text()}`);
  });
  await page.goto(`${gw.publicUrl}/console`);
  await page.getByLabel('Email').fill(users[role].email);
  await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in' }).click();
  await page.locator('#who', { hasText: users[role].email }).waitFor();
  return { page, problems };
}

test('a compliance user approves and denies waiting tool calls from the console; they arrive live and leave when decided', { timeout: 90_000 }, async () => {
  const first = await request('tool:1:refund:a', { amount: 40, note: HOSTILE });
  const { page, problems } = await signedIn('compliance');
  const firstRow = page.locator(`#approvals-body tr[data-approval-id="${first}"]`);
  await firstRow.waitFor();
  assert.match(await firstRow.innerText(), /refund[\s\S]*"amount":40[\s\S]*cashier/);
  assert.ok((await firstRow.innerText()).includes(HOSTILE), 'arguments shown as text');
  assert.equal(await page.evaluate(() => (window as unknown as { __pwned?: number }).__pwned), undefined);
  assert.equal(await page.locator('#pwned').count(), 0);

  await firstRow.getByRole('textbox').fill('verified by phone');
  await firstRow.getByRole('button', { name: 'Approve' }).click();
  await firstRow.waitFor({ state: 'detached' });
  const approved = gw.store.read('default').tool_approvals.get(first)!;
  assert.deepEqual([approved.status, approved.decided_by, approved.reason], ['approved', `user:${users.compliance.id}`, 'verified by phone']);

  const second = await request('tool:2:refund:b', { amount: 900 });
  const secondRow = page.locator(`#approvals-body tr[data-approval-id="${second}"]`);
  await secondRow.waitFor(); // pushed over the subscription socket, no reload
  await secondRow.getByRole('textbox').fill('over the limit');
  await secondRow.getByRole('button', { name: 'Deny' }).click();
  await secondRow.waitFor({ state: 'detached' });
  await page.locator('#approvals-empty').waitFor();
  assert.deepEqual([gw.store.read('default').tool_approvals.get(second)?.status, gw.store.read('default').tool_approvals.get(second)?.reason], ['denied', 'over the limit']);
  assert.deepEqual(problems, []);
});

test('a developer has no approvals panel', { timeout: 60_000 }, async () => {
  await request('tool:3:refund:c', { amount: 1 });
  const { page, problems } = await signedIn('developer');
  await page.locator('#calls-body tr').first().waitFor();
  assert.equal(await page.locator('#approvals').isHidden(), true);
  assert.deepEqual(problems, []);
});
