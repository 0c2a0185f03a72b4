/**
 * Durable replay protection for signed provider webhooks that carry a nonce
 * (Vonage: the JWT `jti`). The in-memory cache in each adapter refuses a replay
 * within one process; this claims the nonce through the store
 * (`webhook_nonce_claimed`, table `webhook_nonces`), so a replay is refused
 * after a restart too, for as long as the signed request could otherwise pass.
 *
 * The command id is derived from the nonce: a replay is answered by the log's
 * own duplicate detection (nothing is appended), and the reducer refuses a
 * live nonce claimed under any other id. Storage failure fails closed (503,
 * which a provider retries with a freshly signed request).
 *
 * Twilio does not use this: its X-Twilio-Signature is an HMAC over URL and
 * params with no nonce or timestamp, so there is nothing to remember.
 */
import { OPERATOR_TENANT } from '../schema/index.ts';
import type { IngressRecords } from './port.ts';
import { webhook_nonce_claimed } from '../schema/reducers.ts';

export type NonceVerdict = { ok: true } | { ok: false; status: 403 | 503; reason: string };

export class WebhookNonces {
  constructor(
    private readonly store: IngressRecords,
    /** The adapter's name (`provider` of the nonce row). */
    private readonly provider: string,
  ) {}

  /** Claims `nonce` until `expiresAtMs`; refused if it was already claimed (in this process or before a restart). */
  async claim(nonce: string, expiresAtMs: number): Promise<NonceVerdict> {
    try {
      const r = await this.store.submit(
        webhook_nonce_claimed,
        { provider: this.provider, nonce, expires_at: Math.ceil(expiresAtMs) },
        { tenant: OPERATOR_TENANT, caller: `${this.provider}:webhook`, id: `nonce:${this.provider}:${nonce}` },
      );
      if (r.duplicate) return { ok: false, status: 403, reason: 'replayed (nonce already used)' };
      if (!r.outcome.ok) return { ok: false, status: 403, reason: `${r.outcome.error.code}: ${r.outcome.error.message}` };
      return { ok: true };
    } catch (err) {
      return { ok: false, status: 503, reason: `replay protection unavailable: ${(err as Error).message}` };
    }
  }
}
