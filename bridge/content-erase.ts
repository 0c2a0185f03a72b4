/**
 * Erasing a call's content (issue 17): by request (POST /v1/calls/:id/erase, or every call of a subject's number)
 * or by retention (the policy's retention days after the call ended). One path for both:
 *
 *   refuse early: not this tenant's call, live call, legal hold, already erased   (the reducer is the authority)
 *   ─► call_content_erased {reason, reference, keys}   (typed handle; the rows' content columns are cleared)
 *   ─► destroy the content key (recording/content-keys.ts: tombstone, then delete)
 *   ─► delete each recording's media (its data key is in the blob's header: it goes with it)
 *   ─► truncate the WAL (the store runs secure_delete: cleared pages leave no copy behind)
 *
 * A crash after the command and before the deletions leaves an erased call whose key still exists: `sweep()`
 * (run on the retention timer) finishes every erased call whose key or media remain.
 */
import type { Logger } from 'pino';
import { call_content_erased } from '../schema/reducers.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { Store } from '../store/index.ts';
import type { ContentSealer } from '../recording/content-seal.ts';

const DAY_MS = 86_400_000;

export type EraseResult = { ok: true; callId: string; keys: string[] } | { ok: false; callId: string; code: string; message: string };

export interface EraseRequest {
  kind: 'request' | 'retention';
  reason: string;
  reference: string | null;
  /** The command's caller (`user:<id>`, or `system:retention`). */
  caller: string;
}

export interface ContentEraserDeps {
  store: Store<SwitchboardTables>;
  content: ContentSealer;
  /** Deletes a recording's media (recording/service.ts deleteMedia). */
  deleteMedia(row: { tenant: string; id: string; uri: string | null }): Promise<void>;
  logger: Logger;
  nowMs?: () => number;
}

export class ContentEraser {
  private timer: NodeJS.Timeout | undefined;
  private readonly log: Logger;

  constructor(private readonly d: ContentEraserDeps) {
    this.log = d.logger.child({ component: 'content-erase' });
  }

  /** Erases one call's content; resolves the refusal (code, message) instead of throwing for a refused erasure. */
  async erase(tenant: string, callId: string, req: EraseRequest): Promise<EraseResult> {
    const read = this.d.store.read(tenant);
    const call = read.calls.get(callId);
    if (!call) return { ok: false, callId, code: 'call_not_found', message: `no call ${callId}` };
    const recordings = read.recordings.find({ call_id: callId });
    const ref = { tenant, callId };
    const contentKey = await this.d.content.keyring.keyIdOf(ref);
    const keys = [...(contentKey ? [contentKey] : []), ...recordings.filter((r) => r.uri !== null).map((r) => `recording:${r.id}`)];
    const r = await this.d.store.submit(call_content_erased, { call_id: callId, kind: req.kind, reason: req.reason, reference: req.reference, keys }, { tenant, caller: req.caller });
    if (!r.outcome.ok) return { ok: false, callId, code: r.outcome.error.code, message: r.outcome.error.message };
    await this.destroy(tenant, callId, recordings);
    return { ok: true, callId, keys };
  }

  private async destroy(tenant: string, callId: string, recordings: ReadonlyArray<{ tenant: string; id: string; uri: string | null }>): Promise<void> {
    await this.d.content.keyring.destroy({ tenant, callId }, (this.d.nowMs ?? Date.now)());
    for (const rec of recordings) await this.d.deleteMedia(rec);
    if (!this.d.store.scrubWal()) this.log.warn({ call: callId }, 'WAL busy: its older pages are overwritten at the next checkpoint');
  }

  /** Every ended call of `tenant` whose caller (inbound) or callee (outbound) is `subject`. */
  callsOf(tenant: string, subject: string): string[] {
    const read = this.d.store.read(tenant);
    const ids = new Set<string>();
    for (const c of read.calls.find({ from_uri: subject, direction: 'inbound' })) ids.add(c.id);
    for (const c of read.calls.find({ to_uri: subject, direction: 'outbound' })) ids.add(c.id);
    return [...ids].sort();
  }

  /**
   * Retention of content: every ended call whose consent policy's retention days have passed since it ended, not
   * on legal hold and not yet erased, is erased (`kind: retention`) once its recordings' media is purged (the
   * recordings' sweep on the same timer purges it first, writing `recording_purged`). Then any erased call whose key remains (a
   * crash between the command and the deletion) is finished.
   */
  async sweep(): Promise<string[]> {
    const now = (this.d.nowMs ?? Date.now)();
    const read = this.d.store.read(null);
    const erased: string[] = [];
    for (const call of read.calls.find({ state: 'ended' })) {
      if (read.content_erasures.get(call.id) || call.ended_at === null) continue;
      const consent = call.consent_id ? read.consents.get(call.consent_id) : undefined;
      const policy = consent ? read.consent_policies.get(consent.policy_id) : undefined;
      if (!policy || call.ended_at + policy.retention_days * DAY_MS > now) continue;
      const recs = read.recordings.find({ call_id: call.id });
      if (recs.some((r) => r.legal_hold)) continue;
      // media first, by the recordings' own sweep (recording_purged, recording/retention.ts); the content follows
      if (recs.some((r) => r.status !== 'purged')) continue;
      const r = await this.erase(call.tenant, call.id, { kind: 'retention', reason: `retention: ${policy.retention_days} days under policy ${policy.name} v${policy.version}`, reference: null, caller: 'system:retention' });
      if (r.ok) erased.push(call.id);
      else this.log.warn({ call: call.id, code: r.code }, 'content retention erase refused');
    }
    for (const e of read.content_erasures.find({})) {
      const ref = { tenant: e.tenant, callId: e.call_id };
      if ((await this.d.content.keyring.get(ref)) !== null) await this.destroy(e.tenant, e.call_id, read.recordings.find({ call_id: e.call_id }));
    }
    return erased;
  }

  start(intervalMs: number): void {
    if (this.timer) return;
    this.timer = setInterval(() => void this.sweep().catch((err: unknown) => this.log.warn({ err }, 'content retention sweep failed')), intervalMs);
    this.timer.unref();
  }

  stop(): void {
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
  }
}
