/**
 * Wire strings that name Object.prototype members are looked up as the unknown
 * names they are, in every table keyed by a string from outside: SIP header
 * names, SIP digest directives, Twilio/Vonage media events, agent tool names.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { defineAgent } from '../../../agents/sdk.ts';
import { LocalAgent } from '../../../agents/local.ts';
import { parseDigest } from '../../../ingress/sip/digest.ts';
import { canonicalName, prettyName } from '../../../ingress/sip/headers.ts';
import { parseInbound } from '../../../ingress/twilio/messages.ts';
import { parseText } from '../../../ingress/vonage/messages.ts';

const NAMES = ['constructor', '__proto__', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'];

test('SIP header names: a prototype member name is an ordinary extension header', () => {
  for (const n of NAMES) {
    assert.equal(canonicalName(n), n.toLowerCase());
    assert.equal(typeof prettyName(n.toLowerCase()), 'string');
  }
  assert.equal(prettyName('constructor'), 'Constructor');
});

test('SIP digest: a directive named after a prototype member is an ordinary (unused) directive', () => {
  const d = parseDigest('Digest constructor="x", toString=y, username="alice", realm="r"');
  assert.equal(d?.username, 'alice');
  assert.equal(d?.realm, 'r');
});

test('Twilio and Vonage media events named after prototype members are unknown events', () => {
  for (const n of NAMES) {
    assert.deepEqual(parseInbound(JSON.stringify({ event: n })), { ok: true, msg: { event: 'unknown', name: n } });
    assert.deepEqual(parseText(JSON.stringify({ event: n })), { ok: true, msg: { event: 'unknown', name: n } });
  }
});

test('agent tools: a tool name such as "constructor" is no tool', async () => {
  const agent = new LocalAgent(defineAgent({ name: 'proto', onStart: async () => undefined, tools: { lookup: { description: 'd', run: async () => 1 } } }), '1');
  const ctx = { callId: 'c', turn: 1, requestId: 'r' };
  for (const n of NAMES) await assert.rejects(agent.runTool(n, {}, ctx), new RegExp(`has no tool ${n}`));
  assert.equal(await agent.runTool('lookup', {}, ctx), 1);
});
