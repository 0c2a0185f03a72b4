/**
 * A real NATS JetStream cluster for tests and benchmarks: the product's local cluster (cli/cluster/nats.ts, which
 * `switchboard cluster up` runs too) in a temporary dir removed at exit. N `nats-server` processes (default 3) on
 * free ports, each in its own process group, killed (the whole group) by `stop()`, `kill(i)` and on process exit.
 * NATS_SERVER_BIN picks another binary.
 */
import { natsServerBin, startNatsCluster as start, type NatsCluster } from '../../cli/cluster/nats.ts';
import { tmpDir } from './tmp.ts';

export type { NatsCluster };
export const NATS_SERVER = process.env.NATS_SERVER_BIN ?? natsServerBin();

/** Starts `size` routed JetStream servers and waits until each accepts clients and JetStream answers. */
export function startNatsCluster(size = 3): Promise<NatsCluster> {
  return start({ dir: tmpDir('sb-nats-'), size, bin: NATS_SERVER, name: 'sbtest' });
}
