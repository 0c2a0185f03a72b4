/**
 * Identities and audited access: users, API tokens, login lockout, and the
 * access rows that must be committed before a recording, transcript or
 * evidence pack is served.
 *
 * The API submits every command as `user:<id>` (a person or their token);
 * components of the gateway submit as themselves (`system:…`, `twilio:…`).
 * Reducers that change identities, holds, routing or record content access
 * check a `user:` caller against the permission matrix, so the store refuses
 * what the API should have refused.
 * Password hashing (scrypt) and token generation happen before the command:
 * only hashes ever reach the log.
 */
import { z } from 'zod';
import { loadCall } from './calls/lifecycle.ts';
import { can, type Permission } from './permissions.ts';
import { defineReducer, type Ctx } from './reducer.ts';
import { ROLES } from './tables.ts';

const id = z.string().min(1).max(200);
const purpose = z.string().max(1000).nullable().default(null);
const remote = z.string().max(200).nullable().default(null);

/** After this many failed logins in a row a user is locked out … */
export const LOCKOUT_FAILURES = 5;
/** … for this long (ms). */
export const LOCKOUT_MS = 15 * 60_000;

/** The user behind a `user:<id>` caller, if it may do `permission`; gateway components (non-user callers) may. */
export function requireCaller(ctx: Ctx, permission: Permission): { userId: string | null } {
  if (!ctx.caller.startsWith('user:')) return { userId: null };
  const userId = ctx.caller.slice('user:'.length);
  const user = ctx.db.users.get(userId);
  if (!user || user.disabled) return ctx.fail('forbidden', `user ${userId} does not exist in tenant ${ctx.tenant} or is disabled`);
  if (!can(user.role, permission)) return ctx.fail('forbidden', `role ${user.role} may not ${permission}`);
  return { userId };
}

export const user_created = defineReducer(
  'user_created',
  z.object({
    email: z.string().email().max(320).transform((e) => e.toLowerCase()),
    role: z.enum(ROLES),
    /** scrypt hash in PHC-like form; null = token-only user. */
    password_hash: z.string().max(400).nullable().default(null),
  }),
  (ctx, a) => {
    requireCaller(ctx, 'users:manage');
    if (!ctx.db.tenants.get(ctx.tenant)) return ctx.fail('tenant_not_found', `tenant ${ctx.tenant} does not exist`);
    if (ctx.db.users.findOne({ email: a.email })) return ctx.fail('user_exists', `a user ${a.email} exists`);
    const userId = ctx.newId('usr');
    ctx.db.users.insert({ id: userId, tenant: ctx.tenant, email: a.email, role: a.role, password_hash: a.password_hash, disabled: false, created_at: ctx.now });
    return { user_id: userId, email: a.email, role: a.role };
  },
);

export const user_disabled = defineReducer('user_disabled', z.object({ user_id: id, disabled: z.boolean() }), (ctx, a) => {
  const { userId } = requireCaller(ctx, 'users:manage');
  if (userId === a.user_id && a.disabled) return ctx.fail('forbidden', 'a user cannot disable themselves');
  const user = ctx.db.users.get(a.user_id);
  if (!user) return ctx.fail('user_not_found', `no user ${a.user_id}`);
  ctx.db.users.update(user.id, { disabled: a.disabled });
  return { user_id: user.id, disabled: a.disabled };
});

export const token_created = defineReducer(
  'token_created',
  z.object({
    /** The token's owner; a user creates tokens for themselves, an admin for anyone in the tenant. */
    user_id: id,
    name: z.string().min(1).max(200),
    token_hash: z.string().regex(/^[0-9a-f]{64}$/),
    expires_at: z.number().int().nonnegative().nullable().default(null),
  }),
  (ctx, a) => {
    const caller = ctx.caller.startsWith('user:') ? ctx.caller.slice(5) : null;
    if (caller !== a.user_id) requireCaller(ctx, 'users:manage');
    const user = ctx.db.users.get(a.user_id);
    if (!user || user.disabled) return ctx.fail('user_not_found', `no active user ${a.user_id}`);
    if (a.expires_at !== null && a.expires_at <= ctx.now) return ctx.fail('invalid_expiry', 'expires_at is in the past');
    const tokenId = ctx.newId('tok');
    ctx.db.api_tokens.insert({ id: tokenId, tenant: ctx.tenant, user_id: a.user_id, name: a.name, token_hash: a.token_hash, created_at: ctx.now, expires_at: a.expires_at, revoked_at: null });
    return { token_id: tokenId, user_id: a.user_id, expires_at: a.expires_at };
  },
);

export const token_revoked = defineReducer('token_revoked', z.object({ token_id: id }), (ctx, a) => {
  const token = ctx.db.api_tokens.get(a.token_id);
  if (!token) return ctx.fail('token_not_found', `no token ${a.token_id}`);
  const caller = ctx.caller.startsWith('user:') ? ctx.caller.slice(5) : null;
  if (caller !== token.user_id) requireCaller(ctx, 'users:manage');
  if (token.revoked_at !== null) return { token_id: token.id, revoked_at: token.revoked_at };
  ctx.db.api_tokens.update(token.id, { revoked_at: ctx.now });
  return { token_id: token.id, revoked_at: ctx.now };
});

/**
 * A wrong password: counts towards the lockout. No longer submitted: sign-in now
 * throttles with an in-memory backoff (api/auth/login-throttle.ts) that no one can
 * turn into a lockout. Kept, with `login_succeeded`, so older logs replay.
 */
export const login_failed = defineReducer('login_failed', z.object({ user_id: id }), (ctx, a) => {
  const user = ctx.db.users.get(a.user_id);
  if (!user) return ctx.fail('user_not_found', `no user ${a.user_id}`);
  const row = ctx.db.login_lockouts.get(user.id);
  const failures = (row?.failures ?? 0) + 1;
  const locked_until = failures >= LOCKOUT_FAILURES ? ctx.now + LOCKOUT_MS : (row?.locked_until ?? null);
  if (row) ctx.db.login_lockouts.update(user.id, { failures, last_failure_at: ctx.now, locked_until });
  else ctx.db.login_lockouts.insert({ user_id: user.id, tenant: ctx.tenant, failures, last_failure_at: ctx.now, locked_until });
  return { failures, locked_until };
});

export const login_succeeded = defineReducer('login_succeeded', z.object({ user_id: id }), (ctx, a) => {
  const row = ctx.db.login_lockouts.get(a.user_id);
  if (row && row.locked_until !== null && row.locked_until > ctx.now) return ctx.fail('locked_out', `user ${a.user_id} is locked out until ${row.locked_until}`);
  if (row) ctx.db.login_lockouts.delete(a.user_id);
});

function recordAccess(
  ctx: Ctx,
  action: 'recording_accessed' | 'transcript_accessed' | 'evidence_exported',
  a: { call_id: string; target_id: string; detail: string | null; purpose: string | null; remote: string | null },
) {
  const { userId } = requireCaller(ctx, action === 'evidence_exported' ? 'evidence:export' : 'content:read');
  loadCall(ctx, a.call_id);
  const accessId = ctx.newId('acc');
  ctx.db.access_log.insert({
    id: accessId,
    tenant: ctx.tenant,
    user_id: userId ?? ctx.caller,
    action,
    call_id: a.call_id,
    target_id: a.target_id,
    detail: a.detail,
    reason: a.purpose,
    remote: a.remote,
    at: ctx.now,
  });
  return { access_id: accessId };
}

export const recording_accessed = defineReducer(
  'recording_accessed',
  z.object({ call_id: id, recording_id: id, detail: z.string().max(200).nullable().default(null), purpose, remote }),
  (ctx, a) => {
    const rec = ctx.db.recordings.get(a.recording_id);
    if (!rec || rec.call_id !== a.call_id) return ctx.fail('recording_not_found', `no recording ${a.recording_id} for call ${a.call_id}`);
    if (rec.status !== 'finalized') return ctx.fail('recording_unavailable', `recording ${rec.id} is ${rec.status}`);
    return recordAccess(ctx, 'recording_accessed', { ...a, target_id: rec.id });
  },
);

export const transcript_accessed = defineReducer(
  'transcript_accessed',
  z.object({ call_id: id, detail: z.string().max(200).nullable().default(null), purpose, remote }),
  (ctx, a) => recordAccess(ctx, 'transcript_accessed', { ...a, target_id: a.call_id }),
);

export const evidence_exported = defineReducer(
  'evidence_exported',
  z.object({ call_id: id, detail: z.string().max(200).nullable().default(null), purpose, remote }),
  (ctx, a) => recordAccess(ctx, 'evidence_exported', { ...a, target_id: a.call_id }),
);

/** Reducers only older logs hold (see `login_failed`): applied on replay, never submitted. */
export const retiredAccessReducers = [login_failed, login_succeeded];

export const accessReducers = [
  user_created,
  user_disabled,
  token_created,
  token_revoked,
  recording_accessed,
  transcript_accessed,
  evidence_exported,
];
