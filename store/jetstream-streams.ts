/**
 * The side streams of the cluster log (snapshots: store/jetstream-snapshots.ts; checkpoint attestations:
 * store/jetstream-attestations.ts): `NAME` with subjects `NAME.>`, file storage, limits retention, the log's
 * replicas — created when missing, retried for 10 s while a cluster still forming answers with one of the
 * set-up errors the log itself retries (TRANSIENT_SETUP).
 */
import { RetentionPolicy, StorageType, type JetStreamManager } from '@nats-io/jetstream';
import { TRANSIENT_SETUP } from './jetstream-log.ts';

export async function ensureSideStream(jsm: JetStreamManager, name: string, replicas: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    try {
      await jsm.streams.info(name);
      return;
    } catch (err) {
      if (!/not found/i.test((err as Error).message)) throw err;
    }
    try {
      await jsm.streams.add({ name, subjects: [`${name}.>`], storage: StorageType.File, retention: RetentionPolicy.Limits, num_replicas: replicas });
      return;
    } catch (err) {
      if (!TRANSIENT_SETUP.test((err as Error).message) || Date.now() > deadline) throw err;
      await new Promise((r) => setTimeout(r, 250));
    }
  }
}
