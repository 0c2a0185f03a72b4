/**
 * The tenant's provider accounts: the credentials its outbound calls are placed with (schema/provider-accounts.ts),
 * preferred over SWITCHBOARD_PROVIDER_ACCOUNTS. Admin only (`provider_accounts:write`).
 *
 *   PUT    /v1/provider-accounts/:provider  { credentials: {…}, numbers?: [E.164…] }
 *            ──► the adapter checks them (ingress/dial-router.ts checkAccount: Twilio fetches the account through
 *                its SDK, Vonage parses the private key, SIP the trunk) ── refused: 400 invalid_credentials,
 *                nothing written
 *            ──► sealed under the master key (ingress/account-seal.ts) ──► provider_account_set (ciphertext,
 *                key id, redacted summary) ──► 201 (200 when it replaced one) with the redacted view
 *   GET    /v1/provider-accounts[/:provider]  the redacted view: provider, numbers, the non-secret fields
 *                                             (`account_sid`, `application_id`, `trunk`), secrets as "set"
 *   DELETE /v1/provider-accounts/:provider    removes it (404 provider_account_not_found)
 *
 * The secret is never in a response, a log line or the log in clear. `numbers` must be the tenant's numbers.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { sealCredentials } from '../../ingress/account-seal.ts';
import { DialError } from '../../ingress/port.ts';
import { provider_account_removed, provider_account_set } from '../../schema/reducers.ts';
import { authorize } from '../auth/principal.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';

const Params = z.strictObject({ provider: z.string().regex(/^[a-z][a-z0-9-]{1,31}$/, 'an adapter name (twilio, vonage, sip)') });
const Body = z.strictObject({
  credentials: z.record(z.string().regex(/^[a-z_]{1,64}$/, 'a credential field name'), z.string().max(16_384)),
  numbers: z.array(z.string().min(2).max(256)).min(1).max(1000).nullable().optional(),
});

type Row = { provider: string; numbers: readonly string[] | null; summary: Record<string, string>; set_by: string; set_at: number };
const view = (r: Row) => ({ provider: r.provider, numbers: r.numbers, credentials: r.summary, set_by: r.set_by, set_at: new Date(r.set_at).toISOString() });

export function mountProviderAccountRoutes(app: FastifyInstance, ctx: ApiContext): void {
  app.put('/v1/provider-accounts/:provider', async (req, reply) => {
    const p = authorize(ctx, req, 'provider_accounts:write');
    const { provider } = parse(Params, req.params);
    const body = parse(Body, req.body);
    const numbers = body.numbers ?? null;
    const own = ctx.store.read(p.tenant).numbers;
    const foreign = (numbers ?? []).filter((n) => !own.findOne({ number: n }));
    if (foreign.length) throw new HttpError(400, 'invalid_request', `numbers: ${foreign.join(', ')} ${foreign.length === 1 ? 'is not one of your numbers' : 'are not your numbers'} (GET /v1/numbers)`);
    if (!ctx.dialer?.checkAccount) throw new HttpError(503, 'dialer_unavailable', 'outbound calling is not running on this gateway');
    let summary: Record<string, string>;
    try {
      summary = await ctx.dialer.checkAccount(provider, body.credentials);
    } catch (err) {
      if (err instanceof DialError) throw new HttpError(err.status, err.code, err.message);
      throw err;
    }
    const { sealed, keyId } = sealCredentials(ctx.master, p.tenant, provider, body.credentials);
    const r = await submitAs(ctx, p, provider_account_set, { provider, numbers, sealed, key_id: keyId, summary });
    ctx.logger.info({ tenant: p.tenant, provider, numbers: numbers?.length ?? 'all', replaced: r.replaced, by: p.caller }, 'provider account set');
    reply.code(r.replaced ? 200 : 201);
    return view(ctx.store.read(p.tenant).provider_accounts.findOne({ provider })!);
  });

  app.get('/v1/provider-accounts', async (req) => {
    const p = authorize(ctx, req, 'provider_accounts:write');
    return { accounts: ctx.store.read(p.tenant).provider_accounts.find({}).map(view) };
  });

  app.get('/v1/provider-accounts/:provider', async (req) => {
    const p = authorize(ctx, req, 'provider_accounts:write');
    const { provider } = parse(Params, req.params);
    const row = ctx.store.read(p.tenant).provider_accounts.findOne({ provider });
    if (!row) throw new HttpError(404, 'provider_account_not_found', `no ${provider} account is set for this tenant`);
    return view(row);
  });

  app.delete('/v1/provider-accounts/:provider', async (req) => {
    const p = authorize(ctx, req, 'provider_accounts:write');
    const { provider } = parse(Params, req.params);
    await submitAs(ctx, p, provider_account_removed, { provider });
    ctx.logger.info({ tenant: p.tenant, provider, by: p.caller }, 'provider account removed');
    return { provider, removed: true };
  });
}
