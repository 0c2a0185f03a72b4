/**
 * Reading sealed content (issue 17): the call detail, transcript and evidence views with their content opened by
 * the call's key (recording/content-seal.ts), and, for an erased call, what is shown in its place: "erased on …
 * by … (reason)" from its `content_erasures` row.
 */
import type { ContentSealer } from '../../recording/content-seal.ts';
import type { SwitchboardTables } from '../../schema/index.ts';
import { isSealed } from '../../recording/content-crypto.ts';
import type { Store } from '../../store/index.ts';
import type { CallDetail, Segment } from './calls.ts';

export interface ErasureView {
  kind: 'request' | 'retention';
  erased_at: number;
  erased_by: string;
  reason: string;
  reference: string | null;
  keys: string[];
  /** `erased on <ISO time> by <who> (<reason>)`: shown in place of the call's content. */
  note: string;
}

/** The call's erasure, or null when its content is not erased. */
export function erasureOf(store: Pick<Store<SwitchboardTables>, 'read'>, tenant: string, callId: string): ErasureView | null {
  const row = store.read(tenant).content_erasures.get(callId);
  if (!row) return null;
  const why = row.reference ? `${row.reason}; ref ${row.reference}` : row.reason;
  return { kind: row.kind, erased_at: row.erased_at, erased_by: row.erased_by, reason: row.reason, reference: row.reference, keys: row.keys, note: `erased on ${new Date(row.erased_at).toISOString()} by ${row.erased_by} (${why})` };
}

/** The transcript segments with their text opened (an erased call's read ''). */
export async function openSegments(sealer: ContentSealer | undefined, tenant: string, segments: Segment[]): Promise<Segment[]> {
  return sealer ? sealer.openRows(tenant, 'transcript_segments', segments) : segments;
}

/** The call detail with its content opened, and `erasure` (null unless erased). */
export async function openDetail(sealer: ContentSealer | undefined, store: Pick<Store<SwitchboardTables>, 'read'>, tenant: string, d: CallDetail): Promise<CallDetail & { erasure: ErasureView | null }> {
  const erasure = erasureOf(store, tenant, d.call.id);
  // an erased call's content is not opened, even where a key might linger: its rows are cleared, its events sealed
  if (!sealer || !d.content || erasure) return { ...d, erasure };
  const opened = { ...d };
  opened.consents = await sealer.openRows(tenant, 'consents', d.consents);
  opened.agent_actions = await sealer.openRows(tenant, 'agent_actions', d.agent_actions);
  if (d.agent_state && d.agent_state.state !== null) opened.agent_state = await sealer.openRow(tenant, 'agent_state', d.agent_state as Parameters<typeof sealer.openRow>[2] & typeof d.agent_state);
  opened.transcript = (await sealer.openRows(tenant, 'transcript_segments', d.transcript.map((s) => ({ ...s, call_id: d.call.id })))) as typeof d.transcript;
  opened.timeline = await Promise.all(
    d.timeline.map(async (e) => {
      const detail = { ...e.detail };
      for (const [k, v] of Object.entries(detail)) if (isSealed(v)) detail[k] = ((await sealer.openField(tenant, d.call.id, k, v)) ?? null) as typeof v;
      return { ...e, detail };
    }),
  );
  return { ...opened, erasure };
}
