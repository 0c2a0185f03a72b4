/**
 * SIP takeover races on a real 3-server NATS JetStream cluster (ingress/sip/takeover.ts): node A carries a SIP call
 * (its dialog stored on its leg) and stops heartbeating; nodes B and C, each with a mounted SIP stack, see A marked
 * lost and are made to take A's calls over at the same moment. The log's order decides: exactly one claims the call
 * and sends one re-INVITE (its own Contact, an SDP with its own RTP port) to the caller, a scripted UDP peer; the
 * other sends nothing (no re-INVITE, no BYE). A re-INVITE answered 481 ends the call `sip:takeover-failed`, with no
 * BYE (the dialog is gone); a call A had not answered yet ends `sip:node-lost`.
 */
import assert from 'node:assert/strict';
import dgram from 'node:dgram';
import { after, before, test } from 'node:test';
import { pino } from 'pino';
import type { Agent } from '../../agents/types.ts';
import { CallControl } from '../../bridge/call-control.ts';
import { CallManager } from '../../bridge/call-manager.ts';
import { NodeOwnership } from '../../bridge/ownership.ts';
import type { RecordingHandle } from '../../bridge/recording-port.ts';
import { MediaClock } from '../../media/pacer.ts';
import type { DialogSnapshot } from '../../ingress/sip/dialog.ts';
import { mountSip, type SipIngress } from '../../ingress/sip/index.ts';
import { parseMessage, type SipRequest } from '../../ingress/sip/message.ts';
import { NODE_LOST, TAKEOVER_FAILED } from '../../ingress/sip/takeover.ts';
import { schema, type SwitchboardTables } from '../../schema/index.ts';
import { call_answered, call_received, consent_decided, consent_policy_created, consent_started, tenant_created } from '../../schema/reducers.ts';
import { resolveDurability, Store } from '../../store/index.ts';
import { MemoryLeg } from '../helpers/memory-leg.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { resultOf } from '../helpers/store.ts';
import { tmpDir } from '../helpers/tmp.ts';

const T = { tenant: 'acme', caller: 'test' };
const LEASE_MS = 1_500;
let nats: NatsCluster;
const cleanup: Array<() => Promise<void> | void> = [];

before(async () => {
  nats = await startNatsCluster(3);
});

after(async () => {
  for (const c of cleanup.reverse()) await c();
  await nats.stop();
});

interface Node {
  store: Store<SwitchboardTables>;
  calls: CallManager;
  control: CallControl;
  ownership: NodeOwnership;
  sip: SipIngress | null;
}

/** A node on `stream`: store, sessions, call control, ownership (started); with `rtp`, a SIP stack on port 0. */
async function node(name: string, stream: string, rtp?: number): Promise<Node> {
  const dataDir = tmpDir();
  const store = await Store.openCluster({ dataDir, schema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, node: name, cluster: { servers: nats.urls, stream, replicas: 3 } });
  const logger = pino({ level: 'silent' });
  let ownership: NodeOwnership | null = null;
  const clock = new MediaClock({ gate: () => ownership?.mayTransmit() ?? true });
  clock.start();
  const agent: Agent = { name: 'a', version: '1', has: () => false, runTurn: async () => ({ state: {} }), runTool: async () => null };
  const handle: RecordingHandle = { recordingId: 'rec', tap: { name: 'recorder', process: () => undefined }, pause: async () => undefined, finish: async () => undefined };
  const calls = new CallManager({
    store,
    clock,
    tts: { name: 'silence', synthesize: async (_text: string, rate: number) => new Int16Array(rate / 50) },
    agents: { select: async () => agent, retain: () => undefined, release: () => undefined },
    logger,
    stt: { name: 'none', startSession: () => ({ write: () => undefined, end: async () => undefined, close: () => undefined, on: () => () => undefined }) },
    recordings: { begin: async () => handle },
  } as unknown as ConstructorParameters<typeof CallManager>[0]);
  ownership = new NodeOwnership({ store, sessions: calls, cluster: true, leaseMs: LEASE_MS, version: 'test', logger });
  await ownership.start();
  const control = new CallControl({ store, sessions: calls, logger });
  const sip = rtp === undefined ? null : await mountSip({ store: { read: (t) => store.read(t), node: store.node }, logger, dataDir, calls: control }, { host: '127.0.0.1', port: 0, rtpPorts: { low: rtp, high: rtp + 19 }, checkRtpRange: false });
  // The test says when to take over (both nodes at once), not the 1 s poll.
  sip?.app.startTakeover().stop();
  const own = ownership;
  cleanup.push(async () => {
    await sip?.close();
    await own.stop();
    calls.close();
    clock.stop();
    store.close();
    await store.whenClosed();
  });
  return { store, calls, control, ownership: own, sip };
}

/** The caller: a UDP socket answering each re-INVITE with `status` (200 with SDP) and noting every request. */
async function caller(status: number): Promise<{ port: number; requests: SipRequest[]; close(): void }> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, '127.0.0.1', r));
  const port = sock.address().port;
  const requests: SipRequest[] = [];
  sock.on('message', (buf, rinfo) => {
    const p = parseMessage(buf);
    if (!p.ok || p.message.kind !== 'request') return;
    const req = p.message;
    requests.push(req);
    if (req.method === 'ACK') return;
    const code = req.method === 'INVITE' ? status : 200;
    const sdp = code === 200 && req.method === 'INVITE' ? `v=0\r\no=peer 9 2 IN IP4 127.0.0.1\r\ns=-\r\nc=IN IP4 127.0.0.1\r\nt=0 0\r\nm=audio ${port + 2} RTP/AVP 0 101\r\na=rtpmap:0 PCMU/8000\r\na=rtpmap:101 telephone-event/8000\r\n` : '';
    const lines = [`SIP/2.0 ${code} ${code === 200 ? 'OK' : 'Call/Transaction Does Not Exist'}`];
    for (const v of req.headers.values('via')) lines.push(`Via: ${v}`);
    for (const h of ['from', 'to', 'call-id', 'cseq']) lines.push(`${h}: ${req.headers.get(h) ?? ''}`);
    lines.push(`Contact: <sip:peer@127.0.0.1:${port}>`);
    if (sdp) lines.push('Content-Type: application/sdp');
    lines.push(`Content-Length: ${Buffer.byteLength(sdp)}`, '', sdp);
    sock.send(Buffer.from(lines.join('\r\n')), rinfo.port, rinfo.address);
  });
  return { port, requests, close: () => sock.close() };
}

/** A SIP call answered on `a`, consent granted, its caller leg connected with the dialog `snap` (A's, as UAS). */
async function sipCallOn(a: Node, sid: string, peerPort: number): Promise<{ callId: string; snap: DialogSnapshot }> {
  const s = a.store;
  if (!s.read(null).tenants.get('acme')) await s.submit(tenant_created, { id: 'acme', name: 'Acme' }, T);
  const policy = s.read('acme').consent_policies.findOne({ name: 'p' })?.id ?? resultOf(await s.submit(consent_policy_created, { name: 'p', mode: 'notify', disclosure_text: 'Recorded.' }, T)).policy_id;
  const callId = resultOf(await s.submit(call_received, { provider: 'sip', provider_call_id: sid, from: 'sip:peer@127.0.0.1', to: '+15550100', number_id: null, agent: null }, T)).call_id;
  resultOf(await s.submit(call_answered, { call_id: callId }, T));
  const { consent_id } = resultOf(await s.submit(consent_started, { call_id: callId, policy_id: policy }, T));
  resultOf(await s.submit(consent_decided, { consent_id, outcome: 'granted', method: 'implied', evidence: {} }, T));
  const snap: DialogSnapshot = {
    callId: sid,
    localTag: 'nodea',
    remoteTag: 'peer',
    localUri: '<sip:+15550100@127.0.0.1>',
    remoteUri: '<sip:peer@127.0.0.1>',
    remoteTarget: `sip:peer@127.0.0.1:${peerPort}`,
    routeSet: [],
    localCseq: 100,
    remoteCseq: 1,
    transport: 'udp',
    peer: { address: '127.0.0.1', port: peerPort },
    rtpPort: 20000,
    remoteMedia: { address: '127.0.0.1', port: peerPort + 2 },
    codec: 'PCMU',
    payloadType: 0,
    eventPayloadType: 101,
    sdpSession: 4242,
    sdpVersion: 3,
  };
  const leg = new MemoryLeg(false, true);
  Object.assign(leg.description, { provider: 'sip', session: sid, resume: { ...snap } });
  await a.control.attach({ tenant: 'acme', callId }, leg);
  return { callId, snap };
}

async function until(cond: () => boolean, what: string, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > deadline) throw new Error(`not met within ${ms} ms: ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** A stops heartbeating (as if killed); B and C, once both have applied A's `lost`, take over at the same moment. */
async function raceAfterLoss(a: Node, b: Node, c: Node): Promise<void> {
  await a.ownership.stop();
  await until(() => [b, c].every((n) => n.store.read(null).nodes.get(a.store.node)?.state === 'lost'), 'A is marked lost on B and C');
  const tb = b.sip!.app.startTakeover();
  const tc = c.sip!.app.startTakeover();
  tb.stop();
  tc.stop();
  tb.poll();
  tc.poll();
  await Promise.all([tb.settled(), tc.settled()]);
}

test('B and C take a dead node\'s SIP call over at once: exactly one claims it and sends the re-INVITE, the other sends nothing', { timeout: 120_000 }, async () => {
  const peer = await caller(200);
  cleanup.push(() => peer.close());
  const a = await node('race-a', 'LOG_SIP_RACE');
  const b = await node('race-b', 'LOG_SIP_RACE', 40_000 + 2 * Math.floor(Math.random() * 1000));
  const c = await node('race-c', 'LOG_SIP_RACE', 44_000 + 2 * Math.floor(Math.random() * 1000));
  const { callId, snap } = await sipCallOn(a, 'race-call-1@peer', peer.port);
  await raceAfterLoss(a, b, c);
  await until(() => peer.requests.some((r) => r.method === 'ACK'), 'the 200 to the re-INVITE is ACKed');

  const owner = b.store.read('acme').calls.get(callId)?.owner_node;
  assert.ok(owner === 'race-b' || owner === 'race-c', `a survivor owns the call: ${owner}`);
  const [winner, loser] = owner === 'race-b' ? [b, c] : [c, b];
  await loser.store.waitForPosition(winner.store.logPosition);
  assert.equal(loser.store.read('acme').calls.get(callId)?.owner_node, owner, 'one owner on both nodes');
  const invites = peer.requests.filter((r) => r.method === 'INVITE');
  const branches = new Set(invites.map((r) => /branch=([^;\s]+)/.exec(r.headers.get('via') ?? '')?.[1]));
  assert.equal(branches.size, 1, 'one re-INVITE (retransmissions aside)');
  const invite = invites[0]!;
  assert.match(invite.headers.get('contact') ?? '', new RegExp(`:${winner.sip!.port}>`), 'the winner\'s Contact');
  assert.match(invite.headers.get('to') ?? '', /tag=peer/, 'in the dialog');
  assert.match(invite.headers.get('from') ?? '', /tag=nodea/);
  const cseq = Number(/^(\d+) INVITE/.exec(invite.headers.get('cseq') ?? '')?.[1]);
  assert.ok(cseq > snap.localCseq, `CSeq ${cseq} above the dead node's ${snap.localCseq}`);
  const sdp = invite.body.toString();
  assert.match(sdp, /^o=\S+ 4242 4 /m, 'same session id, version + 1');
  const winnerLeg = winner.store.read('acme').legs.find({ call_id: callId, state: 'connected' });
  assert.equal(winnerLeg.length, 1, 'one connected leg: the winner\'s');
  const mPort = Number(/^m=audio (\d+) /m.exec(sdp)?.[1]);
  assert.equal((winnerLeg[0]!.resume as { rtpPort: number }).rtpPort, mPort, 'the offer names the RTP port the winner bound');
  assert.equal((winnerLeg[0]!.resume as { remoteTarget: string }).remoteTarget, `sip:peer@127.0.0.1:${peer.port}`, 'the 200\'s Contact stored as the remote target');
  assert.equal(peer.requests.filter((r) => r.method === 'BYE').length, 0, 'no BYE from the loser (nor anyone)');
  assert.equal(winner.calls.has(callId), true, 'the winner carries the call');
  assert.equal(loser.calls.has(callId), false, 'no session on the loser');

  const claims = [...winner.store.events()].filter((e) => e.reducer === 'call_media_connected' && (e.args as { call_id: string }).call_id === callId);
  assert.deepEqual(claims.map((e) => (e.outcome.ok ? `ok ${e.node}` : e.outcome.error.code)), ['ok race-a', `ok ${owner}`, 'call_owned']);
  const lost = [...winner.store.events()].filter((e) => e.reducer === 'call_media_lost' && (e.args as { call_id: string }).call_id === callId && e.outcome.ok);
  assert.equal(lost.length, 1, 'A\'s leg is marked lost once');
});

test('a re-INVITE answered 481 ends the taken-over call `sip:takeover-failed`, with no BYE; a call not yet answered ends `sip:node-lost`', { timeout: 120_000 }, async () => {
  const peer = await caller(481);
  cleanup.push(() => peer.close());
  const a = await node('fail-a', 'LOG_SIP_FAIL');
  const b = await node('fail-b', 'LOG_SIP_FAIL', 40_000 + 2 * Math.floor(Math.random() * 1000));
  const c = await node('fail-c', 'LOG_SIP_FAIL', 44_000 + 2 * Math.floor(Math.random() * 1000));
  const { callId } = await sipCallOn(a, 'fail-call-1@peer', peer.port);
  // A call A had not answered yet: its INVITE transaction died with A; there is nothing to move.
  const ringing = resultOf(await a.store.submit(call_received, { provider: 'sip', provider_call_id: 'ringing-1@peer', from: 'sip:peer@127.0.0.1', to: '+15550100', number_id: null, agent: null }, T)).call_id;
  await raceAfterLoss(a, b, c);
  await until(() => b.store.read('acme').calls.get(callId)?.state === 'ended', 'the call ended');
  await until(() => b.store.read('acme').calls.get(ringing)?.state === 'ended', 'the unanswered call ended');
  assert.equal(b.store.read('acme').calls.get(ringing)?.end_reason, NODE_LOST);
  assert.equal(b.store.read('acme').calls.get(callId)?.end_reason, TAKEOVER_FAILED);
  assert.equal(new Set(peer.requests.filter((r) => r.method === 'INVITE').map((r) => r.headers.get('via'))).size, 1, 'one re-INVITE');
  assert.equal(peer.requests.filter((r) => r.method === 'BYE').length, 0, 'no BYE after a 481');
});
