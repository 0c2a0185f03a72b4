/**
 * The local NATS cluster (cli/cluster/nats.ts) on a shared loopback: the ports it picks are distinct, and a server
 * that finds its port taken by another process by the time it binds makes the cluster start again on new ports
 * rather than fail — the race a busy CI machine ran into ("nats-server s2 exited before listening").
 */
import assert from 'node:assert/strict';
import net from 'node:net';
import { test } from 'node:test';
import { startNatsCluster } from '../../cli/cluster/nats.ts';
import { freeTcpPorts } from '../../cli/cluster/processes.ts';
import { NATS_SERVER } from '../helpers/nats-cluster.ts';
import { tmpDir } from '../helpers/tmp.ts';

test('freeTcpPorts hands out distinct ports, every one bindable', async () => {
  const ports = await freeTcpPorts(40);
  assert.equal(new Set(ports).size, 40);
  const srv = net.createServer();
  await new Promise<void>((resolve, reject) => srv.once('error', reject).listen(ports[39], '127.0.0.1', resolve));
  await new Promise((r) => srv.close(r));
});

test('a server whose port another process took is started again on new ports, and the cluster comes up', async () => {
  const squatter = net.createServer((socket) => socket.destroy()); // accepts, and is not a NATS server
  await new Promise<void>((resolve) => squatter.listen(0, '127.0.0.1', resolve));
  const taken = (squatter.address() as net.AddressInfo).port;
  let attempts = 0;
  const cluster = await startNatsCluster({
    dir: tmpDir('sb-nats-ports-'),
    size: 3,
    bin: NATS_SERVER,
    async choosePorts(n) {
      attempts++;
      const ports = await freeTcpPorts(n);
      if (attempts === 1) ports[2] = taken; // s2's client port is already someone else's
      return ports;
    },
  });
  try {
    assert.equal(attempts, 2, 'the first attempt failed on the taken port and the second succeeded');
    assert.ok(!cluster.urls.includes(`nats://127.0.0.1:${taken}`));
  } finally {
    await cluster.stop();
    await new Promise((r) => squatter.close(r));
  }
});

test('a server that fails for another reason is not retried: the error names its logs', async () => {
  let attempts = 0;
  await assert.rejects(
    startNatsCluster({
      dir: tmpDir('sb-nats-ports-'),
      size: 1,
      bin: NATS_SERVER,
      async choosePorts(n) {
        attempts++;
        return Array.from({ length: n }, () => 99999); // not a TCP port: nats-server refuses it, and a retry would not help
      },
    }),
    /logs: .*s\*\.log/,
  );
  assert.equal(attempts, 1);
});
