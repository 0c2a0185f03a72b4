/**
 * The shared blob-store suite (test/unit/store/blob-store-suite.ts) on the JetStream object store
 * (store/jetstream-blobs.ts) of a real 3-server NATS cluster, R3; and what one node puts another reads.
 */
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import { connect } from '@nats-io/transport-node';
import type { NatsConnection } from '@nats-io/nats-core';
import { JetStreamBlobStore } from '../../store/jetstream-blobs.ts';
import { startNatsCluster, type NatsCluster } from '../helpers/nats-cluster.ts';
import { blobStoreSuite } from '../unit/store/blob-store-suite.ts';

let nats: NatsCluster;
const conns: NatsConnection[] = [];
let buckets = 0;

before(async () => {
  nats = await startNatsCluster(3);
});
after(async () => {
  await Promise.all(conns.map((c) => c.close()));
  await nats.stop();
});

async function conn(server = 0): Promise<NatsConnection> {
  const nc = await connect({ servers: [nats.urls[server]!] });
  conns.push(nc);
  return nc;
}

blobStoreSuite('JetStream object store (R3)', async () => JetStreamBlobStore.open(await conn(), `SUITE_${++buckets}_BLOBS`, 3));

test('a blob put through one server is read through another, same bytes', async () => {
  const a = await JetStreamBlobStore.open(await conn(0), 'SHARED_BLOBS', 3);
  const b = await JetStreamBlobStore.open(await conn(2), 'SHARED_BLOBS', 3);
  const uri = await a.put('acme/rec.sbrec', Buffer.from('hello from a'));
  assert.equal((await b.get(uri)).toString(), 'hello from a');
  assert.deepEqual(await b.list('acme/'), ['acme/rec.sbrec']);
  await b.delete(uri);
  assert.equal(await a.exists(uri), false);
});
