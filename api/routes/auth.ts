/**
 * Sign-in and tokens: `POST /v1/auth/login` (email + password → a session
 * token, also set as an HttpOnly cookie for the console), `POST
 * /v1/auth/logout`, and personal/API tokens (`GET|POST /v1/tokens`, `DELETE
 * /v1/tokens/:id`). A token's text is shown once; only its hash is stored.
 *
 * Brute force: 10 attempts a minute per client address (429), and 5 wrong
 * passwords in a row lock the account for 15 minutes (429 `locked_out`),
 * recorded through the store so every node and every restart agrees.
 */
import type { FastifyInstance } from 'fastify';
import { z } from 'zod';
import { LOCKOUT_MS } from '../../schema/access.ts';
import { authenticate, SESSION_COOKIE } from '../auth/principal.ts';
import { DUMMY_HASH, newToken, tokenHash, verifyPassword } from '../auth/secrets.ts';
import { Throttle } from '../auth/throttle.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';

const SESSION_MS = 12 * 3600_000;
const DAY = 86_400_000;

const LoginBody = z.strictObject({
  email: z.string().email().max(320),
  password: z.string().min(1).max(1024),
  tenant: z.string().min(1).max(63).optional(),
});

const TokenBody = z.strictObject({
  name: z.string().min(1).max(200),
  /** An admin may issue a token for another user of the tenant. */
  user_id: z.string().min(1).max(200).optional(),
  expires_in_days: z.number().int().min(1).max(3650).optional(),
});

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });

export function mountAuthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const perAddress = new Throttle(10, 60_000, ctx.now);
  const secure = ctx.publicUrl.startsWith('https:');
  const system = { caller: 'system:auth' };

  app.post('/v1/auth/login', async (req, reply) => {
    const wait = perAddress.hit(req.ip);
    if (wait > 0) throw new HttpError(429, 'rate_limited', 'too many sign-in attempts from this address; wait and retry', { 'Retry-After': String(Math.ceil(wait / 1000)) });
    const body = parse(LoginBody, req.body);
    const email = body.email.toLowerCase();
    const all = ctx.store.read(null);
    const matches = all.users.find({ email, ...(body.tenant ? { tenant: body.tenant } : {}) });
    const user = matches.length === 1 ? matches[0] : undefined;
    const ok = await verifyPassword(body.password, user?.password_hash ?? DUMMY_HASH);
    const invalid = new HttpError(401, 'invalid_credentials', matches.length > 1 ? 'this email exists in several tenants: give "tenant"' : 'wrong email or password');
    if (!user || user.disabled) throw invalid;
    const lock = ctx.store.read(user.tenant).login_lockouts.get(user.id);
    const lockedFor = lock?.locked_until != null ? lock.locked_until - ctx.now() : 0;
    if (lockedFor > 0) {
      throw new HttpError(429, 'locked_out', 'too many wrong passwords: the account is locked for a while', { 'Retry-After': String(Math.ceil(lockedFor / 1000)) });
    }
    if (!ok || user.password_hash === null) {
      const r = await submitAs<{ failures: number; locked_until: number | null }>(ctx, { tenant: user.tenant, ...system }, 'login_failed', { user_id: user.id });
      if (r.locked_until !== null && r.locked_until > ctx.now()) {
        throw new HttpError(429, 'locked_out', 'too many wrong passwords: the account is locked for a while', { 'Retry-After': String(Math.ceil(LOCKOUT_MS / 1000)) });
      }
      throw invalid;
    }
    await submitAs(ctx, { tenant: user.tenant, ...system }, 'login_succeeded', { user_id: user.id });
    const token = newToken();
    const expires = ctx.now() + SESSION_MS;
    const r = await submitAs<{ token_id: string }>(ctx, { tenant: user.tenant, caller: `user:${user.id}` }, 'token_created', {
      user_id: user.id,
      name: 'session',
      token_hash: tokenHash(token),
      expires_at: expires,
    });
    void reply.setCookie(SESSION_COOKIE, token, { httpOnly: true, sameSite: 'strict', secure, path: '/', maxAge: SESSION_MS / 1000 });
    return { token, token_id: r.token_id, expires_at: new Date(expires).toISOString(), user: { id: user.id, email: user.email, role: user.role, tenant: user.tenant } };
  });

  app.post('/v1/auth/logout', async (req, reply) => {
    const p = authenticate(ctx, req);
    await submitAs(ctx, p, 'token_revoked', { token_id: p.tokenId });
    void reply.clearCookie(SESSION_COOKIE, { path: '/' });
    return { ok: true };
  });

  app.get('/v1/auth/me', async (req) => {
    const p = authenticate(ctx, req);
    return { id: p.userId, email: p.email, role: p.role, tenant: p.tenant, token_id: p.tokenId };
  });

  app.get('/v1/tokens', async (req) => {
    const p = authenticate(ctx, req);
    const view = ctx.store.read(p.tenant).api_tokens;
    const rows = p.role === 'admin' ? view.find({}, { orderBy: 'created_at' }) : view.find({ user_id: p.userId }, { orderBy: 'created_at' });
    return {
      tokens: rows.map((t) => ({
        id: t.id,
        user_id: t.user_id,
        name: t.name,
        created_at: new Date(t.created_at).toISOString(),
        expires_at: t.expires_at === null ? null : new Date(t.expires_at).toISOString(),
        revoked_at: t.revoked_at === null ? null : new Date(t.revoked_at).toISOString(),
      })),
    };
  });

  app.post('/v1/tokens', async (req, reply) => {
    const p = authenticate(ctx, req);
    const body = parse(TokenBody, req.body);
    const token = newToken();
    const expires = body.expires_in_days ? ctx.now() + body.expires_in_days * DAY : null;
    const r = await submitAs<{ token_id: string; user_id: string }>(ctx, p, 'token_created', {
      user_id: body.user_id ?? p.userId,
      name: body.name,
      token_hash: tokenHash(token),
      expires_at: expires,
    });
    return reply.code(201).send({ id: r.token_id, user_id: r.user_id, token, expires_at: expires === null ? null : new Date(expires).toISOString() });
  });

  app.delete('/v1/tokens/:id', async (req) => {
    const p = authenticate(ctx, req);
    const { id } = parse(IdParam, req.params);
    const r = await submitAs<{ token_id: string; revoked_at: number }>(ctx, p, 'token_revoked', { token_id: id });
    return { id: r.token_id, revoked_at: new Date(r.revoked_at).toISOString() };
  });
}
