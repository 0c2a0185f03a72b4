/**
 * Which node a recording's gap is about: when a call's media moves to this node from another (a failover: the
 * other node died, was paused past its lease, or handed its calls over at the end of a drain), the hole in the
 * recording is that node's lost audio, and the gap row names it (schema/recording.ts, `gap.node`).
 *
 * Read from the log, not guessed: the call's granted claims (`call_media_connected`, each command carrying the
 * node that made it), in log order; the claim before this node's latest one is the previous carrier of the
 * media. Null when there is none, or when it was this node itself (a restart of the same node, embedded mode).
 */
import { CALL_EVENTS, type SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';

export function previousMediaNode(store: Store<SwitchboardTables>, tenant: string, callId: string): string | null {
  const claims = store.query(tenant).events(CALL_EVENTS, callId).filter((e) => e.reducer === 'call_media_connected' && e.outcome.ok);
  let mine = -1;
  for (let i = claims.length - 1; i >= 0; i--) {
    if (claims[i]!.node === store.node) {
      mine = i;
      break;
    }
  }
  const before = mine > 0 ? claims[mine - 1] : undefined;
  return before && before.node !== store.node ? before.node : null;
}
