/**
 * The calls read side against a real store: seven calls in two tenants
 * (finished, ringing, declined, withdrawn), driven through the reducers with a
 * controlled clock. Filters, transcript search, cursor paging, the zod errors
 * returned as 400 bodies, tenant isolation, the detail's timeline and content
 * withholding, and the transcript formats.
 */
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { z } from 'zod';
import { CallFilterSchema, CallQueries, ContentForbiddenError, filterErrorMessage, type CallFilter } from '../../../api/queries/calls.ts';
import { toJson, toText, toVtt } from '../../../api/queries/transcript-format.ts';
import { FsBlobStore } from '../../../recording/blob-fs.ts';
import { ensureTenant, finishedCall } from '../../helpers/call-fixture.ts';
import { openTestStore, resultOf } from '../../helpers/store.ts';
import { tmpDir } from '../../helpers/tmp.ts';
import { call_answered, call_received, consent_decided, consent_started, consent_withdrawn, recording_started } from '../../../schema/reducers.ts';

type S = ReturnType<typeof openTestStore>;
const T0 = Date.UTC(2024, 4, 1, 9, 0, 0);
let clock = T0;
let store: S;
const ids: Record<string, string> = {};
const sys = (tenant: string) => ({ tenant, caller: 'system:test' });
const parse = (q: Record<string, string>): CallFilter => CallFilterSchema.parse(q);

async function openCall(tenant: string, sid: string, from: string, to: string, agent: string): Promise<string> {
  await ensureTenant(store, tenant);
  const r = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'twilio', provider_call_id: sid, from, to, agent }, sys(tenant)));
  return r.call_id;
}

async function consented(tenant: string, callId: string, outcome: 'granted' | 'declined'): Promise<void> {
  const policy = store.read(tenant).consent_policies.findOne({ name: 'default' });
  assert.ok(policy);
  resultOf(await store.submit(call_answered, { call_id: callId }, sys(tenant)));
  const { consent_id } = resultOf<{ consent_id: string }>(await store.submit(consent_started, { call_id: callId, policy_id: policy.id }, sys(tenant)));
  resultOf(await store.submit(consent_decided, { consent_id, outcome, method: 'dtmf', evidence: { digit: outcome === 'granted' ? '1' : '2' } }, sys(tenant)));
}

const at = (minutes: number) => {
  clock = T0 + minutes * 60_000;
};

before(async () => {
  const dir = tmpDir();
  store = openTestStore({ dataDir: dir, clock: () => (clock += 10) });
  const blobs = new FsBlobStore(dir);
  at(0);
  ids.a1 = (await finishedCall(store, blobs, { tenant: 'acme', from: '+15550001111', to: '+15559990000', agent: 'receptionist' })).callId;
  at(10);
  ids.a2 = (
    await finishedCall(store, blobs, {
      tenant: 'acme',
      from: '+15550003333',
      to: '+15559990000',
      agent: 'billing',
      transcript: [
        { channel: 'caller', start_ms: 500, end_ms: 2500, text: 'I want a refund for my invoice' },
        { channel: 'agent', start_ms: 3000, end_ms: 3000, text: 'He said "refund" AND (maybe) <b>bold</b> & -->\n\nnext line' },
      ],
    })
  ).callId;
  at(15);
  ids.o1 = (
    await finishedCall(store, blobs, {
      tenant: 'other',
      from: '+15550003333',
      to: '+15558880000',
      agent: 'billing',
      transcript: [{ channel: 'caller', start_ms: 0, end_ms: 900, text: 'refund my invoice please' }],
    })
  ).callId;
  // Two calls received in the same millisecond: the id breaks the tie.
  at(20);
  ids.a3 = await openCall('acme', 'CA-ringing', '+15550004444', '+15559990001', 'receptionist');
  at(20);
  ids.a4 = await openCall('acme', 'CA-declined', '+15550001111', '+15559990001', 'receptionist');
  await consented('acme', ids.a4, 'declined');
  // Refused: no recording on a declined call (a rejected event in the timeline).
  assert.equal((await store.submit(recording_started, { call_id: ids.a4 }, sys('acme'))).outcome.ok, false);
  at(30);
  ids.a5 = await openCall('acme', 'CA-withdrawn', '+15550005555', '+15559990000', 'concierge');
  await consented('acme', ids.a5, 'granted');
  resultOf(await store.submit(consent_withdrawn, { call_id: ids.a5, method: 'speech', evidence: { words: 'stop recording' } }, sys('acme')));
  at(40);
  ids.o2 = await openCall('other', 'CA-other-ringing', '+15550006666', '+15558880000', 'receptionist');
  // Another tenant naming acme's call: rejected, and never part of acme's timeline.
  assert.equal((await store.submit(call_answered, { call_id: ids.a1 }, sys('other'))).outcome.ok, false);
});

after(() => store.close());

const acme = () => new CallQueries(store, 'acme');
const other = () => new CallQueries(store, 'other');
const listIds = (q: CallFilter, reader = acme()) => reader.list(q).calls.map((c) => c.id);
const byTime = (...keys: string[]) => keys.map((k) => ids[k]);

describe('list filters', () => {
  test('no filter: every call of the tenant, newest first, ties broken by id desc', () => {
    const [first, second] = [ids.a3, ids.a4].sort().reverse();
    assert.deepEqual(listIds(parse({})), [ids.a5, first, second, ids.a2, ids.a1]);
    assert.deepEqual(listIds(parse({}), other()), byTime('o2', 'o1'));
  });

  test('from, to and number (either side; a leading space from a decoded `+` counts as `+`)', () => {
    assert.deepEqual(new Set(listIds(parse({ from: '+15550001111' }))), new Set(byTime('a1', 'a4')));
    assert.deepEqual(listIds(parse({ from: ' 15550003333' })), byTime('a2'));
    assert.deepEqual(new Set(listIds(parse({ to: '+15559990001' }))), new Set(byTime('a3', 'a4')));
    assert.deepEqual(listIds(parse({ number: '+15550005555' })), byTime('a5'));
    assert.deepEqual(listIds(parse({ number: '+15559990000' })), byTime('a5', 'a2', 'a1'));
    assert.deepEqual(listIds(parse({ from: '+15550001111', to: '+15559990001' })), byTime('a4'));
  });

  test('agent, state and consent', () => {
    assert.deepEqual(listIds(parse({ agent: 'billing' })), byTime('a2'));
    assert.deepEqual(listIds(parse({ state: 'ringing' })), byTime('a3'));
    assert.deepEqual(listIds(parse({ state: 'ended' })), byTime('a2', 'a1'));
    assert.deepEqual(listIds(parse({ consent: 'granted' })), byTime('a2', 'a1'));
    assert.deepEqual(listIds(parse({ consent: 'declined' })), byTime('a4'));
    assert.deepEqual(listIds(parse({ consent: 'withdrawn' })), byTime('a5'));
    assert.deepEqual(listIds(parse({ consent: 'none' })), byTime('a3'));
    const a4 = acme().list(parse({ consent: 'declined' })).calls[0];
    assert.equal(a4?.recorded, false);
    assert.equal(acme().list(parse({ agent: 'billing' })).calls[0]?.recorded, true);
  });

  test('since (inclusive) and until (exclusive), ISO or epoch ms', () => {
    const t = (m: number) => String(T0 + m * 60_000);
    assert.deepEqual(listIds(parse({ since: t(10), until: t(30) })).length, 3);
    assert.deepEqual(listIds(parse({ since: '2024-05-01T09:30:00Z' })), byTime('a5'));
    assert.deepEqual(listIds(parse({ until: '2024-05-01T09:10:00Z' })), byTime('a1'));
    assert.deepEqual(listIds(parse({ since: '2024-05-01T11:10:00 02:00', until: '2024-05-01T09:11:00.000+00:00' })), byTime('a2'));
  });

  test('q: a transcript word or prefix, only in the tenant', () => {
    assert.deepEqual(listIds(parse({ q: 'appointment' })), byTime('a1'));
    assert.deepEqual(listIds(parse({ q: 'appoint' })), byTime('a1'));
    assert.deepEqual(listIds(parse({ q: 'REFUND invoice' })), byTime('a2'));
    assert.deepEqual(listIds(parse({ q: 'refund' }), other()), byTime('o1'));
    assert.deepEqual(listIds(parse({ q: 'refund', state: 'ringing' })), []);
    assert.deepEqual(listIds(parse({ q: 'nosuchword' })), []);
  });

  test('q with FTS syntax characters does not throw', () => {
    assert.deepEqual(listIds(parse({ q: '"refund" AND (' })), byTime('a2'));
    assert.deepEqual(listIds(parse({ q: 'refund" OR * NEAR(' })), []);
    assert.doesNotThrow(() => acme().list(parse({ q: 'x" -- ) ^ :' })));
  });

  test('q is refused to a caller without content access', () => {
    assert.throws(() => acme().list(parse({ q: 'refund' }), { content: false }), ContentForbiddenError);
    assert.equal(acme().list(parse({ agent: 'billing' }), { content: false }).calls.length, 1);
  });
});

describe('cursor pagination', () => {
  test('limit 2 walks every call exactly once, in order', () => {
    const all = listIds(parse({}));
    const seen: string[] = [];
    let cursor: string | null = null;
    let pages = 0;
    do {
      const page: ReturnType<CallQueries['list']> = acme().list(parse(cursor ? { limit: '2', cursor } : { limit: '2' }));
      assert.ok(page.calls.length <= 2);
      seen.push(...page.calls.map((c) => c.id));
      cursor = page.next_cursor;
      pages++;
    } while (cursor !== null && pages < 10);
    assert.deepEqual(seen, all);
    assert.equal(pages, 3);
  });

  test('a page that ends exactly at the last call has no next cursor', () => {
    const page = acme().list(parse({ limit: '5' }));
    assert.equal(page.calls.length, 5);
    assert.equal(page.next_cursor, null);
  });

  test('paging composes with filters', () => {
    const first = acme().list(parse({ number: '+15559990000', limit: '2' }));
    assert.deepEqual(first.calls.map((c) => c.id), byTime('a5', 'a2'));
    assert.ok(first.next_cursor);
    const second = acme().list(parse({ number: '+15559990000', limit: '2', cursor: first.next_cursor }));
    assert.deepEqual(second.calls.map((c) => c.id), byTime('a1'));
    assert.equal(second.next_cursor, null);
  });
});

describe('invalid filters fail with a message naming the parameter', () => {
  const cases: Array<[string, Record<string, unknown>, RegExp]> = [
    ['bad state', { state: 'flying' }, /^state must be one of ringing, answered/],
    ['limit 0', { limit: '0' }, /^limit must be a whole number from 1 to 200/],
    ['limit 201', { limit: '201' }, /^limit must be/],
    ['limit not a number', { limit: 'ten' }, /^limit must be/],
    ['garbage cursor', { cursor: 'not a cursor!' }, /^cursor is not a cursor this API returned/],
    ['base64 but not ours', { cursor: Buffer.from('{"a":1}').toString('base64url') }, /^cursor is not a cursor/],
    ['since after until', { since: '2024-05-02', until: '2024-05-01' }, /^since must not be after until/],
    ['unknown parameter', { colour: 'red' }, /unknown parameter colour; allowed: from, to/],
    ['non-date since', { since: 'yesterday' }, /^since must be an ISO-8601 time/],
    ['no calendar date', { until: '2024-02-30' }, /^until is not a calendar date/],
    ['local time without zone', { since: '2024-05-01T09:00:00' }, /^since must be an ISO-8601 time with a timezone/],
    ['repeated parameter', { agent: ['a', 'b'] }, /^agent must be given once/],
    ['bad consent', { consent: 'maybe' }, /^consent must be one of granted, declined/],
    ['q without words', { q: '" ( )' }, /^q needs at least one letter or digit/],
  ];
  for (const [name, input, message] of cases) {
    test(name, () => {
      const r = CallFilterSchema.safeParse(input);
      assert.equal(r.success, false);
      assert.ok(r.error instanceof z.ZodError);
      assert.match(filterErrorMessage(r.error), message);
    });
  }

  test('blank values count as not given; limit defaults to 50', () => {
    const f = parse({ agent: '', q: '  ', limit: '' });
    assert.equal(f.agent, undefined);
    assert.equal(f.q, undefined);
    assert.equal(f.limit, 50);
  });
});

describe('detail', () => {
  test("another tenant's call is null, as is its transcript", () => {
    assert.equal(other().detail(ids.a1 ?? ''), null);
    assert.equal(other().transcript(ids.a1 ?? ''), null);
    assert.equal(acme().detail(ids.o1 ?? ''), null);
    assert.equal(acme().detail('call_nope'), null);
  });

  test('one object: call, legs, consent with evidence, policy, recording without uri, transcript, actions, state', () => {
    const d = acme().detail(ids.a1 ?? '');
    assert.ok(d);
    assert.equal(d.content, true);
    assert.equal(d.call.id, ids.a1);
    assert.equal(d.consents.length, 1);
    assert.deepEqual(d.consents[0]?.evidence, { digit: '1', at_ms: 2100 });
    assert.equal(d.policy?.name, 'default');
    assert.equal(d.policy?.version, 1);
    assert.equal(d.policy?.mode, 'notify');
    assert.match(d.policy?.disclosure_text ?? '', /may be recorded/);
    assert.equal(d.recordings.length, 1);
    const rec = d.recordings[0];
    assert.ok(rec);
    assert.equal(rec.status, 'finalized');
    assert.equal(rec.legal_hold, false);
    assert.match(rec.sha256 ?? '', /^[0-9a-f]{64}$/);
    assert.ok((rec.retention_until ?? 0) > T0);
    assert.equal('uri' in rec, false);
    assert.doesNotMatch(JSON.stringify(d), /"fs:|\.sbrec/);
    assert.deepEqual(d.transcript.map((s) => s.start_ms), [0, 2000, 4500]);
    assert.equal(d.transcript[1]?.text, 'I would like to change my appointment');
    assert.deepEqual(d.agent_actions[0]?.args, { name: 'file_reason', reason: 'appointment' });
    assert.equal(d.agent_state?.turn, 1);
    assert.deepEqual(acme().transcript(ids.a1 ?? '')?.map((s) => s.text), d.transcript.map((s) => s.text));
  });

  test('timeline: sorted, with consent and recording events, no transcript text, only this tenant', () => {
    const d = acme().detail(ids.a1 ?? '');
    assert.ok(d);
    const kinds = d.timeline.map((e) => e.kind);
    for (const k of ['call_received', 'call_answered', 'consent_started', 'consent_decided', 'recording_started', 'transcript_appended', 'agent_action_requested', 'agent_action_completed', 'recording_finalized', 'call_ended']) {
      assert.ok(kinds.includes(k), `timeline has ${k}`);
    }
    for (let i = 1; i < d.timeline.length; i++) {
      const [a, b] = [d.timeline[i - 1], d.timeline[i]];
      assert.ok(a && b && (a.at < b.at || (a.at === b.at && a.seq < b.seq)), 'sorted by time, then seq');
    }
    assert.ok(d.timeline.every((e) => e.ok && e.by === 'system:test'));
    assert.deepEqual(d.timeline.find((e) => e.kind === 'consent_decided')?.detail, { consent_id: d.consents[0]?.id, evidence: { digit: '1', at_ms: 2100 }, method: 'dtmf', outcome: 'granted' });
    const json = JSON.stringify(d.timeline);
    for (const seg of d.transcript) assert.equal(json.includes(seg.text ?? '?'), false);
    assert.doesNotMatch(json, /fs:/);
    assert.equal(kinds.filter((k) => k === 'call_answered').length, 1, "the other tenant's rejected call_answered is not here");
  });

  test('a rejected command shows with its error code', () => {
    const d = acme().detail(ids.a4 ?? '');
    assert.ok(d);
    const refused = d.timeline.find((e) => e.kind === 'recording_started');
    assert.equal(refused?.ok, false);
    assert.equal(refused?.error, 'consent_required');
    assert.deepEqual(d.consents.map((k) => k.outcome), ['declined']);
  });

  test('withdrawal: both consent rows, and the withdrawal in the timeline', () => {
    const d = acme().detail(ids.a5 ?? '');
    assert.ok(d);
    assert.deepEqual(d.consents.map((k) => k.outcome), ['granted', 'withdrawn']);
    assert.ok(d.timeline.some((e) => e.kind === 'consent_withdrawn'));
  });

  test('content: false keeps metadata but withholds transcript text, action args/results, state and evidence', () => {
    const d = acme().detail(ids.a1 ?? '', { content: false });
    assert.ok(d);
    assert.equal(d.content, false);
    assert.equal(d.transcript.length, 3);
    assert.ok(d.transcript.every((s) => s.text === null && s.end_ms >= s.start_ms));
    assert.ok(d.agent_actions.every((a) => a.args === null && a.result === null && a.status === 'succeeded'));
    assert.equal(d.agent_state?.state, null);
    assert.equal(d.consents[0]?.evidence, null);
    assert.equal(d.consents[0]?.outcome, 'granted');
    const json = JSON.stringify(d);
    for (const word of ['appointment', 'Thank you', 'file_reason', 'T-1', '"digit"']) assert.equal(json.includes(word), false, word);
  });
});

describe('transcript formats', () => {
  const VTT = /^WEBVTT\n(?:\n\d{2,}:[0-5]\d:[0-5]\d\.\d{3} --> \d{2,}:[0-5]\d:[0-5]\d\.\d{3}\n<v (?:Caller|Agent)>(?:[^<>&\n]|&amp;|&lt;|&gt;)+\n)*$/;

  test('VTT: strict cues, voices, escaping, no blank line inside a cue, end after start', () => {
    const segs = acme().transcript(ids.a2 ?? '') ?? [];
    const vtt = toVtt(segs);
    assert.match(vtt, VTT);
    assert.match(vtt, /00:00:00\.500 --> 00:00:02\.500\n<v Caller>I want a refund for my invoice\n/);
    assert.match(vtt, /00:00:03\.000 --> 00:00:03\.001\n<v Agent>He said "refund" AND \(maybe\) &lt;b&gt;bold&lt;\/b&gt; &amp; --&gt; next line\n/);
    assert.match(toVtt(acme().transcript(ids.a1 ?? '') ?? []), VTT);
    assert.equal(toVtt([]), 'WEBVTT\n');
    assert.match(toVtt([{ channel: 'caller', start_ms: 3_723_004, end_ms: 3_724_000, text: 'late' }]), /^WEBVTT\n\n01:02:03\.004 --> 01:02:04\.000\n<v Caller>late\n$/);
  });

  test('text: one line per segment in start order', () => {
    const text = toText(acme().transcript(ids.a1 ?? '') ?? []);
    assert.equal(
      text,
      '[00:00.000] Agent: Thank you for calling, how can I help?\n[00:02.000] Caller: I would like to change my appointment\n[00:04.500] Agent: Certainly, which day suits you?\n',
    );
    assert.equal(toText([{ channel: 'agent', start_ms: 3_600_000, end_ms: 3_601_000, text: 'a\nb' }]), '[01:00:00.000] Agent: a b\n');
  });

  test('json: call metadata and segments', () => {
    const d = acme().detail(ids.a2 ?? '');
    assert.ok(d);
    const doc = toJson(d.call, acme().transcript(ids.a2 ?? '') ?? []);
    assert.equal(doc.call_id, ids.a2);
    assert.equal(doc.from, '+15550003333');
    assert.equal(doc.segments.length, 2);
    assert.equal(doc.segments[0]?.speaker, 'Caller');
    assert.equal(doc.segments[0]?.start, '00:00:00.500');
    assert.equal(doc.segments[0]?.confidence, 0.9);
    assert.match(doc.received_at, /^2024-05-01T09:10:00\.\d{3}Z$/);
  });
});
