/**
 * Start after a storage fault the previous process never recovered from
 * (`Store.previousFault`: the disk was full when it stopped). Whatever it held
 * in memory then — a call's end, a recording's failure — was never committed,
 * so its calls may still look live in the tables although nobody serves them.
 * Each call this node owned that is not `ended` is ended with the reason
 * `gateway:<fault>` (e.g. `gateway:disk_full`), after its unfinished recording
 * is marked failed with the reason (the recorder stopped when the fault began;
 * what it flushed stays beside the row until retention). Then the record of
 * the fault is cleared. Idempotent (command ids per call), so a crash half-way
 * is finished by the next start.
 */
import type { Logger } from 'pino';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import { endCall } from './call-facts.ts';
import { recording_failed } from '../schema/reducers.ts';

const LIVE = ['ringing', 'answered', 'consenting', 'active', 'held', 'transferring', 'resuming'] as const;

export async function endCallsLeftByFault(store: Store<SwitchboardTables>, log: Logger): Promise<number> {
  const fault = store.previousFault;
  if (!fault) return 0;
  const reason = `gateway:${fault.kind}`;
  const since = new Date(fault.since).toISOString();
  const calls = store.read(null).calls.find({ state: [...LIVE] }).filter((c) => c.owner_node === null || c.owner_node === store.node);
  for (const call of calls) {
    const who = { tenant: call.tenant, caller: 'system:fault-recovery' };
    for (const rec of store.read(call.tenant).recordings.find({ call_id: call.id, status: ['recording', 'paused', 'finalizing'] })) {
      await store.submit(
        recording_failed,
        { recording_id: rec.id, reason: `${fault.kind === 'disk_full' ? 'disk full' : fault.kind} since ${since} (${fault.reason}): recording stopped; the gateway restarted before the store recovered`.slice(0, 1000) },
        { ...who, id: `fault-recovery:recording:${rec.id}` },
      );
    }
    await endCall(store, log, { tenant: call.tenant, callId: call.id }, reason, { caller: who.caller, id: `fault-recovery:end:${call.id}` });
  }
  log.warn({ fault: fault.kind, detail: fault.reason, since, calls: calls.map((c) => c.id) }, `the previous process stopped while the store could not write: ${calls.length} call(s) it left live ended with ${reason}`);
  store.faultHandled();
  return calls.length;
}
