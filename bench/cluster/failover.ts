/**
 * Failover time: kill -9 of the node carrying a Twilio call → the caller hears audio again, over `kills` rounds.
 *
 *   cluster (3 NATS, 2 nodes, HAProxy; SWITCHBOARD_CLUSTER_LEASE_MS = leaseMs)
 *   rounds × { dial one call through HAProxy (test/helpers/twilio-peer.ts), wait for its first non-silent frame
 *              ─► the call's owner (/v1/calls: the node terminating its media) is the victim
 *              ─► t0, kill -9 of the victim's process group
 *              ─► the peer's <Redirect> (retried every 200 ms while refused) lands, through HAProxy, on the survivor,
 *                 which takes the call once the victim's lease ran out and the agent speaks again
 *              ─► t1 = the first non-silent frame on a new media stream      sample = t1 − t0
 *              ─► hang up; restart the victim on its data dir; wait until it is ready and HAProxy has it UP }
 *
 * The lease bounds the wait: the survivor may only take the call once the dead owner's lease ran out, and that lease
 * was last renewed (in bulk, every few seconds) some time before the kill, so the wait is between 0 and the lease.
 */
import fs from 'node:fs';
import { api } from '../../test/helpers/api.ts';
import { TWILIO_TOKEN } from '../../test/helpers/gateway.ts';
import { TwilioPeer } from '../../test/helpers/twilio-peer.ts';
import { log, now, sleep } from '../lib.ts';
import { route, startBenchCluster, type BenchCluster } from './local.ts';

const NUMBER = '+15550109001';

/** A µ-law frame with any sample louder than near-silence (0xFF / 0x7F are the two zeros; the low 7 bits, inverted, are the magnitude). */
export function nonSilent(ulaw: Buffer): boolean {
  for (const b of ulaw) if ((~b & 0x7f) > 0x10) return true;
  return false;
}

/** Resolves with now() at the first non-silent frame the peer receives while `accept()` holds. */
function firstAudio(peer: TwilioPeer, accept: () => boolean, timeoutMs: number, what: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const onMedia = (audio: Buffer): void => {
      if (!accept() || !nonSilent(audio)) return;
      done();
      resolve(now());
    };
    const timer = setTimeout(() => {
      done();
      reject(new Error(`${what}: no audio within ${timeoutMs} ms`));
    }, timeoutMs);
    const done = (): void => {
      clearTimeout(timer);
      peer.off('media', onMedia);
    };
    peer.on('media', onMedia);
  });
}

/**
 * The index of the node carrying the call from `from`: its owner in the store (the node terminating its media — not
 * necessarily the one that answered the webhook: HAProxy balances each connection on its own).
 */
async function carrier(c: BenchCluster, from: string): Promise<number> {
  for (let tries = 0; tries < 100; tries++) {
    const r = await api<{ calls?: Array<{ from: string; owner_node: string | null; ended_at: unknown }> }>(c.httpUrl, 'GET', '/v1/calls?limit=50');
    const call = r.body.calls?.find((x) => (x.from === from || x.from === from.slice(1)) && x.ended_at === null);
    const i = call?.owner_node ? c.nodes.findIndex((n) => n.id === call.owner_node) : -1;
    if (i >= 0) return i;
    await sleep(100);
  }
  throw new Error(`no owner for the call from ${from}`);
}

export interface FailoverResult {
  samples: number[];
  victims: string[];
}

export async function runFailover(kills: number, leaseMs: number): Promise<FailoverResult> {
  const cluster = await startBenchCluster({ nodes: 2, env: { SWITCHBOARD_CLUSTER_LEASE_MS: String(leaseMs) }, say: log });
  const samples: number[] = [];
  const victims: string[] = [];
  try {
    await route(cluster, NUMBER);
    for (let round = 0; round < kills; round++) {
      const peer = new TwilioPeer({ publicUrl: cluster.httpUrl, authToken: TWILIO_TOKEN, to: NUMBER, from: `+1555020${String(1000 + round)}`, redirectRetryMs: 60_000 });
      try {
        const heard = firstAudio(peer, () => true, 30_000, `round ${round + 1}: first audio`);
        const dialed = await peer.dial();
        if (dialed.kind !== 'streaming') throw new Error(`round ${round + 1}: dial ${JSON.stringify(dialed)}`);
        await heard;
        const victim = await carrier(cluster, peer.from);
        await sleep(300);
        const streams = peer.streams;
        const again = firstAudio(peer, () => peer.streams > streams, 60_000, `round ${round + 1}: audio after the kill`);
        const t0 = now();
        await cluster.kill(victim);
        let framesAfter = 0;
        peer.on('media', () => void (peer.streams > streams && framesAfter++));
        const ms =
          (await again.catch((err: Error) => {
            const tails = cluster.nodes.map((n) => `${n.id}:\n${fs.readFileSync(n.log, 'utf8').split('\n').filter((l) => l.includes(peer.callSid) || /"level":[56]0/.test(l)).slice(-8).join('\n')}`);
            throw new Error(`${err.message} (streams ${peer.streams} (was ${streams}), frames since ${framesAfter}, ended ${String(peer.endReason)}, infos ${JSON.stringify(peer.streamInfos)})\n${tails.join('\n')}`);
          })) - t0;
        samples.push(ms);
        victims.push(cluster.nodes[victim]!.id);
        log(`  failover ${round + 1}/${kills}: kill -9 ${cluster.nodes[victim]!.id} → audio again in ${ms.toFixed(0)} ms (lease ${leaseMs} ms)`);
        await peer.hangup();
        const t1 = now();
        await cluster.restart(victim);
        log(`  ${cluster.nodes[victim]!.id} restarted, ready and UP in HAProxy after ${(now() - t1).toFixed(0)} ms`);
      } finally {
        await peer.close().catch(() => undefined);
      }
    }
  } finally {
    await cluster.stop();
  }
  return { samples, victims };
}
