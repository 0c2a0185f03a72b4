/**
 * Control-plane routes: tenants (operator only), users, numbers, consent
 * policies, legal holds, the access log, the log integrity check and the
 * agent list. Each route names its permission (schema/permissions.ts), reads
 * through the principal's tenant, and writes through a reducer as the user.
 */
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { z } from 'zod';
import { OPERATOR_TENANT } from '../../schema/index.ts';
import { PolicyArgs } from '../../schema/consent.ts';
import { agentRouteWarning, numberRouteProblem, NumberSchema } from '../../schema/tenancy.ts';
import { PROVIDERS, ROLES } from '../../schema/tables.ts';
import { authorize } from '../auth/principal.ts';
import { hashPassword, newToken, tokenHash } from '../auth/secrets.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { iso, TimeParam } from './time.ts';
import { consent_policy_created, number_added, number_removed, recording_hold_set, tenant_created, token_created, user_created, user_disabled } from '../../schema/reducers.ts';

const Password = z.string().min(12, 'at least 12 characters').max(1024);
const UserBody = z.strictObject({ email: z.string().email().max(320), role: z.enum(ROLES), password: Password.optional() });
const TenantBody = z.strictObject({
  id: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, 'lowercase id: letters, digits, - and _'),
  name: z.string().min(1).max(200),
  admin_email: z.string().email().max(320),
  admin_password: Password.optional(),
});
/** `provider`: one of the ingress adapters this gateway mounts (`ctx.providers`; default the built-in four). */
const numberBody = (providers: readonly string[]) =>
  z.strictObject({
    number: NumberSchema,
    agent: z.string().min(1).max(100),
    /** A policy id, or a policy name (its newest version). Default: the tenant's `default`. */
    consent_policy: z.string().min(1).max(200).optional(),
    provider: z.enum(providers as [string, ...string[]]).optional(),
  });
const IdParam = z.strictObject({ id: z.string().min(1).max(200) });
const AccessQuery = z.strictObject({
  call_id: z.string().min(1).max(200).optional(),
  user_id: z.string().min(1).max(200).optional(),
  since: TimeParam.optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export function mountAdminRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const NumberBody = numberBody(ctx.providers ?? PROVIDERS);
  app.post('/v1/tenants', async (req, reply) => {
    const p = authorize(ctx, req, 'tenants:manage');
    if (p.tenant !== OPERATOR_TENANT) throw new HttpError(403, 'forbidden', `only admins of the ${OPERATOR_TENANT} tenant create tenants`);
    const body = parse(TenantBody, req.body);
    // The new tenant has no users yet: its first commands run as the operator who created it.
    const op = { tenant: body.id, caller: `operator:${p.userId}` };
    await submitAs(ctx, op, tenant_created, { id: body.id, name: body.name });
    const password_hash = body.admin_password ? await hashPassword(body.admin_password) : null;
    const u = await submitAs(ctx, op, user_created, { email: body.admin_email, role: 'admin', password_hash });
    const token = newToken();
    const t = await submitAs(ctx, op, token_created, { user_id: u.user_id, name: 'bootstrap', token_hash: tokenHash(token) });
    return reply.code(201).send({ id: body.id, admin: { id: u.user_id, email: body.admin_email.toLowerCase() }, token, token_id: t.token_id });
  });

  app.get('/v1/users', async (req) => {
    const p = authorize(ctx, req, 'users:read');
    const users = ctx.store.read(p.tenant).users.find({}, { orderBy: 'created_at' });
    return { users: users.map((u) => ({ id: u.id, email: u.email, role: u.role, disabled: u.disabled, has_password: u.password_hash !== null, created_at: iso(u.created_at) })) };
  });

  app.post('/v1/users', async (req, reply) => {
    const p = authorize(ctx, req, 'users:manage');
    const body = parse(UserBody, req.body);
    const password_hash = body.password ? await hashPassword(body.password) : null;
    const r = await submitAs(ctx, p, user_created, { email: body.email, role: body.role, password_hash });
    return reply.code(201).send({ id: r.user_id, email: r.email, role: r.role });
  });

  /**
   * Disabling a user (staff who leave, a lost laptop) stops every token and session of theirs at once; it is a
   * fact in the log like any other. A user cannot disable themselves. `DELETE` enables the user again.
   */
  const disable = (disabled: boolean) => async (req: FastifyRequest) => {
    const p = authorize(ctx, req, 'users:manage');
    const { id } = parse(IdParam, req.params);
    const r = await submitAs(ctx, p, user_disabled, { user_id: id, disabled });
    return { id: r.user_id, disabled: r.disabled };
  };
  app.put('/v1/users/:id/disabled', disable(true));
  app.delete('/v1/users/:id/disabled', disable(false));

  app.get('/v1/numbers', async (req) => {
    const p = authorize(ctx, req, 'numbers:read');
    const rows = ctx.store.read(p.tenant).numbers.find({}, { orderBy: 'created_at' });
    return { numbers: rows.map((n) => ({ id: n.id, number: n.number, agent: n.agent, provider: n.provider, consent_policy_id: n.consent_policy_id, created_at: iso(n.created_at) })) };
  });

  app.post('/v1/numbers', async (req, reply) => {
    const p = authorize(ctx, req, 'numbers:write');
    const body = parse(NumberBody, req.body);
    const problem = numberRouteProblem(body.number, body.provider);
    if (problem) throw new HttpError(400, 'invalid_number', problem);
    let policyId: string | null = null;
    if (body.consent_policy) {
      const policies = ctx.store.read(p.tenant).consent_policies;
      const policy = policies.get(body.consent_policy) ?? policies.find({ name: body.consent_policy }, { orderBy: 'version', desc: true, limit: 1 })[0];
      if (!policy) throw new HttpError(404, 'consent_policy_not_found', `no consent policy ${body.consent_policy}`);
      policyId = policy.id;
    }
    const r = await submitAs(ctx, p, number_added, { number: body.number, agent: body.agent, provider: body.provider ?? null, consent_policy_id: policyId });
    const warning = agentRouteWarning(body.agent, ctx.agents.builtinNames, ctx.store.read(p.tenant).agent_versions.find({ name: body.agent }));
    return reply.code(201).send({ id: r.number_id, number: body.number, agent: body.agent, consent_policy_id: policyId, ...(warning ? { warnings: [warning] } : {}) });
  });

  app.delete('/v1/numbers/:id', async (req) => {
    const p = authorize(ctx, req, 'numbers:write');
    const { id } = parse(IdParam, req.params);
    await submitAs(ctx, p, number_removed, { number_id: id });
    return { id, removed: true };
  });

  app.get('/v1/consent-policies', async (req) => {
    const p = authorize(ctx, req, 'policies:read');
    const rows = ctx.store.read(p.tenant).consent_policies.find({}, { orderBy: 'created_at' });
    return { policies: rows.map(({ tenant: _t, created_at, ...rest }) => ({ ...rest, created_at: iso(created_at) })) };
  });

  app.post('/v1/consent-policies', async (req, reply) => {
    const p = authorize(ctx, req, 'policies:write');
    const body = parse(PolicyArgs.strict(), req.body);
    const r = await submitAs(ctx, p, consent_policy_created, body);
    return reply.code(201).send({ id: r.policy_id, name: r.name, version: r.version });
  });

  const hold = (on: boolean) => async (req: FastifyRequest) => {
    const p = authorize(ctx, req, 'holds:write');
    const { id } = parse(IdParam, req.params);
    const r = await submitAs(ctx, p, recording_hold_set, { recording_id: id, hold: on });
    return { id, legal_hold: r.legal_hold };
  };
  app.put('/v1/recordings/:id/hold', hold(true));
  app.delete('/v1/recordings/:id/hold', hold(false));

  app.get('/v1/access-log', async (req) => {
    const p = authorize(ctx, req, 'access_log:read');
    const q = parse(AccessQuery, req.query);
    const where = { ...(q.call_id ? { call_id: q.call_id } : {}), ...(q.user_id ? { user_id: q.user_id } : {}) };
    const db = ctx.store.read(p.tenant);
    const rows = db.access_log
      .find(where, { orderBy: 'at', desc: true, limit: q.since === undefined ? q.limit : undefined })
      .filter((r) => q.since === undefined || r.at >= q.since)
      .slice(0, q.limit);
    // Who, by e-mail: the user joined by id in this tenant (null for a non-user reader, e.g. `webrtc:SESSION`).
    const emails = new Map<string, string | null>();
    const emailOf = (userId: string): string | null => {
      if (!emails.has(userId)) emails.set(userId, db.users.get(userId)?.email ?? null);
      return emails.get(userId) ?? null;
    };
    return { entries: rows.map(({ tenant: _t, at, ...rest }) => ({ ...rest, user_email: emailOf(rest.user_id), at: iso(at) })) };
  });

  app.get('/v1/audit/verify', async (req, reply) => {
    authorize(ctx, req, 'audit:verify');
    const r = ctx.store.verify();
    return reply.code(r.ok ? 200 : 409).send({
      ok: r.ok,
      events: r.events,
      head: { seq: r.headSeq, hash: r.headHash },
      checkpoints: r.checkpoints,
      first_bad_seq: r.firstBadSeq,
      problems: r.problems.slice(0, 20),
      node: ctx.store.node,
      public_key: ctx.store.publicKeyPem,
    });
  });
}
