/**
 * The first admin. `SWITCHBOARD_ADMIN_TOKEN`, when set, is the bearer token of
 * the operator tenant's bootstrap admin (changing it revokes the old one);
 * when unset and no bootstrap token exists yet, one is generated and printed
 * once — only its hash is kept, so it cannot be shown again.
 */
import type { Logger } from 'pino';
import { OPERATOR_TENANT, type SwitchboardTables } from '../../schema/index.ts';
import type { Receipt, Store } from '../../store/index.ts';
import { newToken, tokenHash } from './secrets.ts';
import { token_created, token_revoked, user_created } from '../../schema/reducers.ts';

export const BOOTSTRAP_EMAIL = 'admin@switchboard.local';
const CALLER = { tenant: OPERATOR_TENANT, caller: 'system:bootstrap' };

async function must<R>(p: Promise<Receipt<R>>): Promise<R> {
  const r = await p;
  if (!r.outcome.ok) throw new Error(`bootstrap admin: ${r.outcome.error.code}: ${r.outcome.error.message}`);
  return r.outcome.result;
}

/** Returns the generated token when one was made (the caller prints it), else null. */
export async function bootstrapAdmin(store: Store<SwitchboardTables>, envToken: string | undefined, logger: Logger): Promise<string | null> {
  if (envToken !== undefined && (envToken.length < 16 || envToken.length > 200 || /\s/.test(envToken))) {
    throw new Error('SWITCHBOARD_ADMIN_TOKEN must be 16–200 characters without spaces');
  }
  const view = store.read(OPERATOR_TENANT);
  let user = view.users.findOne({ email: BOOTSTRAP_EMAIL });
  if (!user) {
    const r = await must(store.submit(user_created, { email: BOOTSTRAP_EMAIL, role: 'admin', password_hash: null }, CALLER));
    user = store.read(OPERATOR_TENANT).users.get(r.user_id);
    if (!user) throw new Error('bootstrap admin: user row missing after create');
  }
  const active = store
    .read(OPERATOR_TENANT)
    .api_tokens.find({ user_id: user.id, name: 'bootstrap' })
    .filter((t) => t.revoked_at === null);
  if (envToken === undefined) {
    if (active.length > 0) return null;
    const token = newToken();
    await must(store.submit(token_created, { user_id: user.id, name: 'bootstrap', token_hash: tokenHash(token) }, CALLER));
    logger.warn({ user: BOOTSTRAP_EMAIL }, 'generated an admin token (shown once: in the start-up banner on a terminal, else on stderr); set SWITCHBOARD_ADMIN_TOKEN to choose your own');
    return token;
  }
  const hash = tokenHash(envToken);
  for (const t of active) if (t.token_hash !== hash) await must(store.submit(token_revoked, { token_id: t.id }, CALLER));
  if (!active.some((t) => t.token_hash === hash)) {
    const revokedSame = store.read(null).api_tokens.findOne({ token_hash: hash });
    if (revokedSame) throw new Error('SWITCHBOARD_ADMIN_TOKEN was used before and revoked (or belongs to another user): choose a new one');
    await must(store.submit(token_created, { user_id: user.id, name: 'bootstrap', token_hash: hash }, CALLER));
    logger.info({ user: BOOTSTRAP_EMAIL }, 'admin token from SWITCHBOARD_ADMIN_TOKEN installed');
  }
  return null;
}
