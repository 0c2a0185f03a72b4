/**
 * Fencing (issue 15): two real `switchboard start` nodes on a real 3-server NATS JetStream cluster. A Twilio call
 * streams from node A; A is stopped (SIGSTOP) past its lease while the call's media reconnects to node B (the
 * same CallSid's webhook and media stream on B, as Twilio's <Redirect> through a load balancer would), and B takes
 * the call once A's lease has run out. A is then continued (SIGCONT): it learns from the log that the call is
 * B's and sends no further frame on the stream that stayed connected to it, although it still had the
 * disclosure queued; it closes that stream.
 */
import assert from 'node:assert/strict';
import { after, test } from 'node:test';
import { api } from '../helpers/api.ts';
import { freePort, spawnGateway, TWILIO_TOKEN, type GatewayProcess } from '../helpers/gateway.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';
import { TwilioPeer } from '../helpers/twilio-peer.ts';

const NUMBER = '+15550107777';
const LEASE_MS = 3_000;
/** About a minute of speech: the disclosure is still queued on A whenever A is stopped. */
const DISCLOSURE = Array.from({ length: 12 }, (_, i) => `Part ${i + 1} of this notice: this call is recorded for quality and training, and you may ask us to stop at any time.`).join(' ');

let nats: NatsCluster | null = null;
const gateways: GatewayProcess[] = [];
const peers: TwilioPeer[] = [];
after(async () => {
  for (const g of gateways) if (g.child.pid !== undefined && g.child.exitCode === null) g.child.kill('SIGCONT');
  for (const p of peers) await p.close().catch(() => undefined);
  await Promise.all(gateways.map((g) => g.stop()));
  await nats?.stop();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test('a node paused past its lease while its call moves to another node sends no further frame for that call', { timeout: 240_000 }, async () => {
  nats = await startNatsCluster(3);
  for (const name of ['node-a', 'node-b']) {
    const port = await freePort();
    gateways.push(
      await spawnGateway({
        port,
        dataDir: tmpDir(`sb-fence-${name}-`),
        env: { SWITCHBOARD_CLUSTER_NATS: nats.env, SWITCHBOARD_NODE_ID: name, SWITCHBOARD_CLUSTER_LEASE_MS: String(LEASE_MS), SWITCHBOARD_STT: 'none', SWITCHBOARD_SIP_PORT: '0' },
      }),
    );
  }
  const [a, b] = gateways as [GatewayProcess, GatewayProcess];
  const policy = await api(a.publicUrl, 'POST', '/v1/consent-policies', { body: { name: 'long', mode: 'notify', disclosure_text: DISCLOSURE } });
  assert.equal(policy.status, 201, JSON.stringify(policy.body));
  const number = await api(a.publicUrl, 'POST', '/v1/numbers', { body: { number: NUMBER, agent: 'default', consent_policy: 'long', provider: 'twilio' } });
  assert.equal(number.status, 201, JSON.stringify(number.body));

  // The call on A; the stream that stays connected to A does not follow redirects (Twilio would not open a second).
  const onA = new TwilioPeer({ publicUrl: a.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', followRedirect: false, statusOnEnd: false });
  peers.push(onA);
  assert.equal((await onA.dial()).kind, 'streaming');
  await onA.waitFor(() => onA.receivedAudio().length > 8000, 30_000, 'A plays the disclosure');

  const pid = a.child.pid as number;
  process.kill(pid, 'SIGSTOP');
  await sleep(500); // what A sent before it stopped has arrived
  const beforeResume = onA.receivedAudio().length;

  // The same call's webhook and media stream on B (what Twilio's <Redirect> through the balancer does). B's claim
  // is refused while A's lease runs; the peer retries (its redirect) until B takes the call.
  const onB = new TwilioPeer({ publicUrl: b.publicUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: '+15550002222', callSid: onA.callSid, redirectRetryMs: 60_000 });
  peers.push(onB);
  await onB.dial();
  await onB.waitFor(() => onB.receivedAudio().length > 8000, 60_000, 'B plays the call’s audio');
  assert.equal(onA.receivedAudio().length, beforeResume, 'nothing from A while it is stopped');

  process.kill(pid, 'SIGCONT');
  // A wakes up: it holds its media until its heartbeat is applied, and by then it has applied B's claim.
  await onA.waitFor(() => onA.streamSid === null || onA.endReason !== null, 20_000, 'A closes the stream of the call it lost');
  await sleep(1_000);
  assert.equal(onA.receivedAudio().length, beforeResume, `A sent ${onA.receivedAudio().length - beforeResume} bytes after it was continued`);
  assert.ok(a.logs.some((l) => l.includes('outgoing media held until a heartbeat is applied')), 'A held its media on waking');
  assert.ok(a.logs.some((l) => l.includes('call taken over by node-b')), 'A logged that it lost the call to node-b');
  // B carries on.
  const heard = onB.receivedAudio().length;
  await onB.waitFor(() => onB.receivedAudio().length > heard + 8000, 20_000, 'B still streams the call');
});
