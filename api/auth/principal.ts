/**
 * Who is asking. A request carries a bearer token (`Authorization: Bearer …`)
 * or the console's session cookie (the same kind of token, issued at login);
 * the token's hash finds its row, whose user gives the tenant and the role.
 * Every route then runs as that principal: its reads are confined to the
 * tenant and its commands are submitted as `user:<id>`.
 */
import type { FastifyRequest } from 'fastify';
import { can, type Permission, type Role } from '../../schema/index.ts';
import { HttpError, type ApiContext } from '../context.ts';
import { tokenHash } from './secrets.ts';

export const SESSION_COOKIE = 'sb_session';

export interface Principal {
  tenant: string;
  userId: string;
  email: string;
  role: Role;
  tokenId: string;
  /** The store caller for this principal's commands. */
  caller: string;
}

declare module 'fastify' {
  interface FastifyRequest {
    principal?: Principal;
  }
}

/** The token a request presents, from the Authorization header or the session cookie. */
export function presentedToken(req: Pick<FastifyRequest, 'headers'> & { cookies?: Record<string, string | undefined> }): string | null {
  const auth = req.headers.authorization;
  if (typeof auth === 'string') {
    const m = /^Bearer\s+(\S+)$/i.exec(auth.trim());
    return m?.[1] ?? null;
  }
  return req.cookies?.[SESSION_COOKIE] ?? null;
}

/** Resolves a token to its principal, or null when unknown, revoked, expired or its user is disabled. */
export function resolveToken(ctx: ApiContext, token: string): Principal | null {
  if (token.length < 16 || token.length > 200) return null;
  const all = ctx.store.read(null);
  const row = all.api_tokens.findOne({ token_hash: tokenHash(token) });
  if (!row || row.revoked_at !== null) return null;
  if (row.expires_at !== null && row.expires_at <= ctx.now()) return null;
  const user = all.users.get(row.user_id);
  if (!user || user.disabled || user.tenant !== row.tenant) return null;
  return { tenant: user.tenant, userId: user.id, email: user.email, role: user.role, tokenId: row.id, caller: `user:${user.id}` };
}

/** The request's principal; 401 when it has none. */
export function authenticate(ctx: ApiContext, req: FastifyRequest): Principal {
  if (req.principal) return req.principal;
  const token = presentedToken(req);
  const principal = token ? resolveToken(ctx, token) : null;
  if (!principal) {
    throw new HttpError(401, 'unauthenticated', token ? 'the token is unknown, revoked or expired' : 'sign in: send Authorization: Bearer <token>', {
      'WWW-Authenticate': 'Bearer realm="switchboard"',
    });
  }
  req.principal = principal;
  return principal;
}

/** The request's principal if it may do `permission`; 401 / 403 otherwise. */
export function authorize(ctx: ApiContext, req: FastifyRequest, permission: Permission): Principal {
  const principal = authenticate(ctx, req);
  if (!can(principal.role, permission)) throw new HttpError(403, 'forbidden', `role ${principal.role} may not ${permission}`);
  return principal;
}
