/**
 * A real NATS JetStream cluster for tests and benchmarks: the product's local cluster (cli/cluster/nats.ts, which
 * `switchboard cluster up` runs too) in a temporary dir removed at exit. N `nats-server` processes (default 3) on
 * free ports, each in its own process group, killed (the whole group) by `stop()`, `kill(i)` and on process exit.
 * NATS_SERVER_BIN picks another binary.
 *
 * nats-server 2.9 writes its files a moment after it acknowledges a message, so a majority killed inside that moment
 * comes back without it (store/jetstream-log.ts): `onDisk(i, stream, text)` says whether server i's files for
 * `stream` hold `text`, and `killWritten(servers, stream)` kills servers once they have written the stream's last
 * message — the outage a cluster that loses its majority can come back from whole.
 */
import { jetstreamManager } from '@nats-io/jetstream';
import { connect } from '@nats-io/transport-node';
import fs from 'node:fs';
import path from 'node:path';
import { natsServerBin, startNatsCluster as start, type NatsCluster } from '../../cli/cluster/nats.ts';
import { tmpDir } from './tmp.ts';

export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? natsServerBin();

export interface TestNatsCluster extends NatsCluster {
  dir: string;
  onDisk(i: number, stream: string, text: string): boolean;
  killWritten(servers: number[], stream: string): Promise<void>;
}
export type { TestNatsCluster as NatsCluster };

function files(dir: string): string[] {
  if (!fs.existsSync(dir)) return [];
  return fs.readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)]));
}

/** Starts `size` routed JetStream servers and waits until each accepts clients and JetStream answers. */
export async function startNatsCluster(size = 3): Promise<TestNatsCluster> {
  const dir = tmpDir('sb-nats-');
  const cluster = await start({ dir, size, bin: NATS_SERVER, name: 'sbtest' });
  return Object.assign(cluster, {
    dir,
    onDisk(i: number, stream: string, text: string): boolean {
      const blocks = files(path.join(dir, `s${i}`)).filter((f) => f.includes(`${path.sep}streams${path.sep}${stream}${path.sep}msgs${path.sep}`) && f.endsWith('.blk'));
      return blocks.some((f) => fs.readFileSync(f).includes(text));
    },
    async killWritten(servers: number[], stream: string): Promise<void> {
      const nc = await connect({ servers: cluster.urls });
      try {
        const jsm = await jetstreamManager(nc);
        const last = (await jsm.streams.info(stream)).state.last_seq;
        const msg = last > 0 ? await jsm.streams.getMessage(stream, { seq: last }) : null;
        // a command batch's first command id (store/jetstream-publisher.ts), else the raw body
        const body = msg ? Buffer.from(msg.data).toString('utf8') : '';
        const text = /^\{"v":1,"c":\[\["([^"]+)"/.exec(body)?.[1] ?? body;
        const deadline = Date.now() + 60_000;
        while (text && !servers.every((i) => this.onDisk(i, stream, text))) {
          if (Date.now() > deadline) throw new Error(`servers ${servers.join(', ')} did not write message ${last} of ${stream} within 60 s`);
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await nc.close();
      }
      for (const i of servers) cluster.kill(i);
    },
  });
}
