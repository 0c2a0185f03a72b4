/**
 * Cluster mode: which node finalizes an ended call's recordings. Every node watches calls end (recording/service.ts),
 * so exactly one must act, and every node must work out the same one from its own copy of the tables:
 *
 *   the call's owner (`calls.owner_node`), while it is alive or draining
 *   else the first alive node by id (the owner lost or stopped: it may have died mid-call)
 *   else (no node rows: a store without node ownership) the node holding the recording's working dir
 *
 * Two nodes that disagree for a moment (one has applied a node's loss, the other not yet) both finalize: the blob keys
 * name the node, and the second `recording_finalized` is refused, so its blob is deleted (recording/service.ts).
 */
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';

export function finalizesHere(store: Store<SwitchboardTables>, tenant: string, callId: string, hasWork: (recordingId: string) => boolean): boolean {
  const owner = store.read(tenant).calls.get(callId)?.owner_node ?? null;
  const nodes = store.read(null).nodes;
  const ownerUp = owner !== null && ['alive', 'draining'].includes(nodes.get(owner)?.state ?? '');
  if (ownerUp) return owner === store.node;
  const alive = nodes.find({ state: 'alive' }).map((n) => n.id).sort();
  if (alive[0] !== undefined) return alive[0] === store.node;
  return store.read(tenant).recordings.find({ call_id: callId }).some((r) => hasWork(r.id));
}
