/**
 * Sign-in and tokens: `POST /v1/auth/login` (email + password, or an API token
 * as `{ "token" }` — the console's "Sign in with an API token" — → a new session
 * token, also set as the console's session cookie: HttpOnly, SameSite=Strict,
 * Secure when the public URL is https), `POST /v1/auth/logout`, and
 * personal/API tokens (`GET|POST /v1/tokens`, `DELETE /v1/tokens/:id`). A
 * token's text is shown once; only its hash is stored.
 *
 * Every failed sign-in answers the same — 401 `invalid_credentials`, one body,
 * one set of headers — whether the token is unknown, the e-mail unknown, the password wrong, the
 * user disabled or token-only, or the e-mail in several tenants; and each costs
 * at least one scrypt (a dummy hash stands in for a missing or disabled user).
 * Brute force is slowed, never locked: `../auth/login-throttle.ts` (per
 * address and per e-mail, exponential backoff, 429 `rate_limited` with
 * Retry-After for every e-mail alike, in memory per node).
 *
 * Tenants: an e-mail may exist in several tenants. Without `tenant`, the
 * password is checked against every account with that e-mail (in parallel, so
 * the work grows little with their number); the one it opens signs in. Only when
 * it opens more than one — the caller has proved the password — is the answer
 * 409 `tenant_required` naming them; with `tenant`, only that tenant's account
 * is tried. Nothing is written to the store for a failed attempt.
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { z } from 'zod';
import type { SwitchboardTables } from '../../schema/index.ts';
import type { RowOf } from '../../store/index.ts';
import { authenticate, resolveToken, SESSION_COOKIE } from '../auth/principal.ts';
import { LoginThrottle } from '../auth/login-throttle.ts';
import { DUMMY_HASH, newToken, tokenHash, verifyPassword } from '../auth/secrets.ts';
import { HttpError, parse, submitAs, type ApiContext } from '../context.ts';
import { token_created, token_revoked } from '../../schema/reducers.ts';

type User = RowOf<SwitchboardTables['users']>;

const SESSION_MS = 12 * 3600_000;
const DAY = 86_400_000;

const LoginBody = z.strictObject({
  email: z.string().email().max(320),
  password: z.string().min(1).max(1024),
  tenant: z.string().min(1).max(63).optional(),
});

/** Sign-in with an API token (the console's "Sign in with an API token"): the token is exchanged for a session. */
const TokenLoginBody = z.strictObject({ token: z.string().min(1).max(1024) });

const TokenBody = z.strictObject({
  name: z.string().min(1).max(200),
  /** An admin may issue a token for another user of the tenant. */
  user_id: z.string().min(1).max(200).optional(),
  expires_in_days: z.number().int().min(1).max(3650).optional(),
});

const IdParam = z.strictObject({ id: z.string().min(1).max(200) });

/** The one answer to every failed sign-in. */
const invalidCredentials = (): HttpError => new HttpError(401, 'invalid_credentials', 'wrong email or password');

/** The throttle's answer: wait `ms` before the next try. */
const rateLimited = (ms: number): HttpError =>
  new HttpError(429, 'rate_limited', 'too many failed sign-ins: wait and retry', { 'Retry-After': String(Math.ceil(ms / 1000)) });

/** The accounts among `users` that `password` opens; one scrypt per user (a dummy one for a disabled or password-less user), at least one. */
async function accountsOpened(users: readonly User[], password: string): Promise<User[]> {
  const usable = (u: User): u is User & { password_hash: string } => !u.disabled && u.password_hash !== null;
  const hashes = users.length === 0 ? [DUMMY_HASH] : users.map((u) => (usable(u) ? u.password_hash : DUMMY_HASH));
  const ok = await Promise.all(hashes.map((h) => verifyPassword(password, h)));
  return users.filter((u, i) => usable(u) && ok[i] === true);
}

export function mountAuthRoutes(app: FastifyInstance, ctx: ApiContext): void {
  const throttle = new LoginThrottle(ctx.now);
  const cookieOptions = { httpOnly: true, sameSite: 'strict', secure: ctx.publicUrl.startsWith('https:'), path: '/' } as const;

  /** A new 12 h session token for `user` (never outliving `notAfter`), set as the session cookie; the sign-in answer. */
  async function startSession(user: Pick<User, 'id' | 'email' | 'role' | 'tenant'>, reply: FastifyReply, notAfter: number | null) {
    const token = newToken();
    const expires = Math.min(ctx.now() + SESSION_MS, notAfter ?? Infinity);
    const r = await submitAs(ctx, { tenant: user.tenant, caller: `user:${user.id}` }, token_created, {
      user_id: user.id,
      name: 'session',
      token_hash: tokenHash(token),
      expires_at: expires,
    });
    void reply.setCookie(SESSION_COOKIE, token, { ...cookieOptions, maxAge: Math.max(1, Math.floor((expires - ctx.now()) / 1000)) });
    return { token, token_id: r.token_id, expires_at: new Date(expires).toISOString(), user: { id: user.id, email: user.email, role: user.role, tenant: user.tenant } };
  }

  /**
   * `{ "token": "…" }`: a valid API token (the printed admin token, a personal token) signs its user in with a
   * session of its own — the token itself never becomes the cookie, and the session ends no later than the token.
   * A wrong token is the same 401 as a wrong password and is charged to the same throttle (per address; the
   * per-account key is the presented token's hash, so one guess never slows anyone else).
   */
  async function tokenSignIn(req: FastifyRequest, reply: FastifyReply) {
    const { token } = parse(TokenLoginBody, req.body);
    const key = `token:${tokenHash(token)}`;
    const wait = throttle.admit(req.ip, key);
    if (wait > 0) throw rateLimited(wait);
    const principal = resolveToken(ctx, token);
    if (!principal) throw invalidCredentials();
    throttle.succeeded(req.ip, key);
    const row = ctx.store.read(null).api_tokens.get(principal.tokenId);
    return startSession({ id: principal.userId, email: principal.email, role: principal.role, tenant: principal.tenant }, reply, row?.expires_at ?? null);
  }

  app.post('/v1/auth/login', async (req, reply) => {
    if (typeof req.body === 'object' && req.body !== null && 'token' in req.body) return tokenSignIn(req, reply);
    const body = parse(LoginBody, req.body);
    const email = body.email.toLowerCase();
    const wait = throttle.admit(req.ip, email);
    if (wait > 0) throw rateLimited(wait);
    const candidates = ctx.store.read(null).users.find({ email, ...(body.tenant ? { tenant: body.tenant } : {}) });
    const opened = await accountsOpened(candidates, body.password);
    const user = opened[0];
    if (!user) throw invalidCredentials();
    throttle.succeeded(req.ip, email);
    if (opened.length > 1) {
      const tenants = opened.map((u) => u.tenant).sort();
      throw new HttpError(409, 'tenant_required', `this e-mail and password open accounts in several tenants (${tenants.join(', ')}): give "tenant"`);
    }
    return startSession(user, reply, null);
  });

  app.post('/v1/auth/logout', async (req, reply) => {
    const p = authenticate(ctx, req);
    await submitAs(ctx, p, token_revoked, { token_id: p.tokenId });
    void reply.clearCookie(SESSION_COOKIE, cookieOptions);
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
    const r = await submitAs(ctx, p, token_created, {
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
    const r = await submitAs(ctx, p, token_revoked, { token_id: id });
    return { id: r.token_id, revoked_at: new Date(r.revoked_at).toISOString() };
  });
}
