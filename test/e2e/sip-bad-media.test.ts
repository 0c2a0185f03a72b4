/**
 * Unusable SDP media against the real `switchboard start` (a child process):
 * every INVITE and re-INVITE whose offer names a media address or port no
 * socket can take (a bare number, a host name, multicast, the wrong family,
 * ports out of range, an RTCP port past 65535…) is refused with 488 and a
 * Warning, before anything is answered; the process keeps answering and the
 * call in progress carries on. A dialog stored with such values (written
 * through the store's reducers, as a node that crashed would have left it)
 * ends with `sip:resume-failed` at the next start, and the node starts.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { schema } from '../../schema/index.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { freePort, spawnGateway, type GatewayProcess } from '../helpers/gateway.ts';
import { SipUa } from '../helpers/sip-ua.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { call_answered, call_media_connected, call_received, consent_policy_created, number_added, tenant_created } from '../../schema/reducers.ts';

const NUMBER = '+15557330000';
let gw: GatewayProcess | null = null;
after(async () => {
  await gw?.stop();
});

const open = (dataDir: string) => Store.open({ dataDir, schema, durability: resolveDurability({ profile: 'production' }), checkpointMs: 0 });

async function seed(dataDir: string): Promise<{ numberId: string }> {
  const store = open(dataDir);
  try {
    const who = { tenant: 'default', caller: 'test' };
    resultOf(await store.submit(tenant_created, { id: 'default', name: 'Default tenant' }, { tenant: 'default', caller: 'test', id: 'bootstrap:tenant:default' }));
    const p = resultOf<{ policy_id: string }>(await store.submit(consent_policy_created, { name: 'notify', mode: 'notify', disclosure_text: 'Recorded line.' }, who));
    const n = resultOf<{ number_id: string }>(await store.submit(number_added, { number: NUMBER, agent: 'default', consent_policy_id: p.policy_id }, who));
    return { numberId: n.number_id };
  } finally {
    store.close();
  }
}

async function waitLog(g: GatewayProcess, text: string, count: number, ms: number): Promise<void> {
  const end = Date.now() + ms;
  while (g.logs.filter((l) => l.includes(text)).length < count) {
    if (Date.now() > end) throw new Error(`no ${count}× "${text}" in the gateway log:\n${g.logs.slice(-30).join('\n')}`);
    if (g.child.exitCode !== null || g.child.signalCode !== null) throw new Error(`the gateway exited:\n${g.logs.slice(-30).join('\n')}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function sdp(c: string | null, m: string, extra: string[] = []): string {
  return ['v=0', 'o=- 1 1 IN IP4 127.0.0.1', 's=bad', ...(c === null ? [] : [c]), 't=0 0', m, 'a=rtpmap:0 PCMU/8000', ...extra, 'a=sendrecv', ''].join('\r\n');
}

/** Offers no socket can be given, each with the reason it must be refused. */
const BAD: Array<[string, string]> = [
  ['a bare number as the address', sdp('c=IN IP4 127', 'm=audio 40000 RTP/AVP 0')],
  ['a host name as the address', sdp('c=IN IP4 media.example.com', 'm=audio 40000 RTP/AVP 0')],
  ['an IPv4 address out of range', sdp('c=IN IP4 300.1.2.3', 'm=audio 40000 RTP/AVP 0')],
  ['a multicast TTL', sdp('c=IN IP4 224.2.1.1/127', 'm=audio 40000 RTP/AVP 0')],
  ['a multicast address', sdp('c=IN IP4 224.2.1.1', 'm=audio 40000 RTP/AVP 0')],
  ['an IPv6 address tagged IP4', sdp('c=IN IP4 ::1', 'm=audio 40000 RTP/AVP 0')],
  ['an IPv6 address to an IPv4 node', sdp('c=IN IP6 ::1', 'm=audio 40000 RTP/AVP 0')],
  ['an unknown address type', sdp('c=IN IPX 127.0.0.1', 'm=audio 40000 RTP/AVP 0')],
  ['no c= line at all', sdp(null, 'm=audio 40000 RTP/AVP 0')],
  ['two c= lines', sdp('c=IN IP4 127.0.0.1\r\nc=IN IP4 127', 'm=audio 40000 RTP/AVP 0')],
  ['port 99999', sdp('c=IN IP4 127.0.0.1', 'm=audio 99999 RTP/AVP 0')],
  ['port 65535 (RTCP would be 65536)', sdp('c=IN IP4 127.0.0.1', 'm=audio 65535 RTP/AVP 0')],
  ['a negative port', sdp('c=IN IP4 127.0.0.1', 'm=audio -4 RTP/AVP 0')],
  ['a port that is no number', sdp('c=IN IP4 127.0.0.1', 'm=audio 4e4 RTP/AVP 0')],
  ['an RTCP port out of range', sdp('c=IN IP4 127.0.0.1', 'm=audio 40000 RTP/AVP 0', ['a=rtcp:70000'])],
  ['an RTCP address that is no address', sdp('c=IN IP4 127.0.0.1', 'm=audio 40000 RTP/AVP 0', ['a=rtcp:40001 IN IP4 127'])],
];

test('INVITEs and re-INVITEs with unusable media addresses or ports get 488 + Warning; the gateway keeps answering and the call carries on', { timeout: 120_000 }, async (t) => {
  const port = await freePort();
  const sipPort = await freePort();
  const dataDir = tmpDir('sb-sip-badmedia-');
  await seed(dataDir);
  gw = await spawnGateway({ port, dataDir, env: { SWITCHBOARD_SIP_PORT: String(sipPort) } });
  const g = gw;
  const uas: SipUa[] = [];
  t.after(() => uas.forEach((u) => u.close()));
  const ua = async (): Promise<SipUa> => {
    const u = await SipUa.open({ gateway: { address: '127.0.0.1', port: sipPort }, to: NUMBER.slice(1) });
    uas.push(u);
    return u;
  };

  for (const [why, offer] of BAD) {
    const u = await ua();
    const res = await u.transact(u.build('INVITE', { body: offer, toTag: null }));
    assert.equal(res?.status, 488, `${why}: ${res?.status} ${res?.reason}`);
    assert.match(res!.headers.get('warning') ?? '', /^3\d\d switchboard "[^"]+"$/, `${why}: a Warning says why`);
    const alive = await u.transact(u.build('OPTIONS', { toTag: null }));
    assert.equal(alive?.status, 200, `after ${why}: OPTIONS still answered`);
  }

  // A call in progress: each unusable re-INVITE is refused and the call stays up.
  const caller = await ua();
  assert.equal((await caller.invite()).status, 200);
  for (const [why, offer] of BAD.slice(0, 6)) {
    const res = await caller.transact(caller.build('INVITE', { body: offer }));
    assert.equal(res?.status, 488, `re-INVITE with ${why}`);
    assert.match(res!.headers.get('warning') ?? '', /^3\d\d switchboard /);
  }
  // Longer than the 5 s RTCP report interval: a timer that would have sent to a bad address has fired by now.
  await new Promise((r) => setTimeout(r, 6000));
  assert.equal(caller.remoteBye, false, 'the call carries on');
  assert.equal(await caller.bye(), 200);
  assert.equal(g.child.exitCode, null, 'the gateway is still running');
  assert.equal(g.logs.some((l) => /Uncaught|ERR_SOCKET_BAD_PORT|ERR_INVALID_ARG_TYPE/.test(l)), false, 'no exception escaped');
  await g.stop();
  gw = null;
});

test('a stored dialog with an unusable media address or port ends with sip:resume-failed at the next start, and the node starts', { timeout: 90_000 }, async () => {
  const port = await freePort();
  const sipPort = await freePort();
  const dataDir = tmpDir('sb-sip-badresume-');
  const { numberId } = await seed(dataDir);
  const snapshot = (remoteMedia: unknown, rtpPort: number) => ({
    callId: `stored-${rtpPort}@test`, localTag: 'l1', remoteTag: 'r1', localUri: '<sip:gw@127.0.0.1>', remoteUri: '<sip:caller@127.0.0.1>',
    remoteTarget: 'sip:caller@127.0.0.1:5999', routeSet: [], localCseq: 10, remoteCseq: 1, transport: 'udp', peer: { address: '127.0.0.1', port: 5999 },
    rtpPort, remoteMedia, codec: 'PCMU', payloadType: 0, eventPayloadType: null, sdpSession: 1, sdpVersion: 1, direction: 'sendrecv',
  });
  const rtp = 20000 + 2 * Math.floor(Math.random() * 10000);
  const store = open(dataDir);
  const ids: string[] = [];
  try {
    const who = { tenant: 'default', caller: 'sip:invite' };
    for (const [i, media] of [{ address: 127, port: 40000 }, { address: '127.0.0.1', port: 99999 }, { address: 'media.example.com', port: 40000 }].entries()) {
      const c = resultOf<{ call_id: string }>(await store.submit(call_received, { provider: 'sip', provider_call_id: `stored-${i}@test`, from: 'sip:caller@127.0.0.1', to: NUMBER, number_id: numberId, agent: 'default' }, who));
      resultOf(await store.submit(call_answered, { call_id: c.call_id }, who));
      resultOf(await store.submit(call_media_connected, { call_id: c.call_id, provider: 'sip', media_session: `stored-${i}@test`, codec: 'PCMU', sample_rate: 8000, resume: snapshot(media, rtp + 2 * i) }, { tenant: 'default', caller: 'media' }));
      ids.push(c.call_id);
    }
  } finally {
    store.close();
  }

  gw = await spawnGateway({ port, dataDir, env: { SWITCHBOARD_SIP_PORT: String(sipPort) } });
  await waitLog(gw, 'cannot be resumed from its stored dialog', ids.length, 20_000);
  const u = await SipUa.open({ gateway: { address: '127.0.0.1', port: sipPort }, to: NUMBER.slice(1) });
  try {
    assert.equal((await u.transact(u.build('OPTIONS', { toTag: null })))?.status, 200, 'the restarted node answers');
  } finally {
    u.close();
  }
  const health = await fetch(`${gw.publicUrl}/healthz`);
  assert.equal(health.status, 200);
  assert.equal(gw.child.exitCode, null);
  await gw.stop();
  gw = null;

  const after = open(dataDir);
  try {
    for (const id of ids) {
      const call = after.read('default').calls.get(id)!;
      assert.equal(call.state, 'ended', `call ${id} ended`);
      assert.equal(call.end_reason, 'sip:resume-failed');
    }
  } finally {
    after.close();
  }
});
