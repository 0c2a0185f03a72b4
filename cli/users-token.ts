/**
 * `switchboard users token EMAIL`: the way back in when an admin token is lost.
 * Works offline, on a stopped gateway's data dir (like `verify`): finds the
 * user by e-mail, mints a new API token for them through the `token_created`
 * reducer (submitted as `cli`, so it is in the log like any other), and prints
 * it once — only its hash is stored. Other tokens stay as they are; revoke a
 * lost one afterwards with `DELETE /v1/tokens/:id`.
 */
import path from 'node:path';
import { newToken, tokenHash } from '../api/auth/secrets.ts';
import { StoreError } from '../store/index.ts';
import { loadStoreConfig } from './config/index.ts';
import { openOffline } from './offline.ts';
import { UsageError } from './remote.ts';
import { token_created } from '../schema/reducers.ts';

export interface UsersTokenOptions {
  tenant?: string;
  dataDir?: string;
  name: string;
  json?: boolean;
}

/** Mints and prints a token for `email` (see the module header). Exit 2 for a usage problem, 1 when the store refuses. */
export async function mintTokenOffline(email: string, opts: UsersTokenOptions): Promise<void> {
  let store;
  try {
    store = openOffline(opts.dataDir, { existing: true });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'database_locked') {
      throw new StoreError('database_locked', `the data dir is in use by a running gateway: stop it first (users token works on a stopped gateway's data dir), or ask an admin for a token (POST /v1/tokens)`);
    }
    throw err;
  }
  try {
    const wanted = email.trim().toLowerCase();
    const users = store.read(null).users.find({ email: wanted, ...(opts.tenant ? { tenant: opts.tenant } : {}) });
    const where = opts.dataDir ? path.resolve(opts.dataDir) : loadStoreConfig().dataDir;
    if (users.length === 0) throw new UsageError(`no user ${wanted}${opts.tenant ? ` in tenant ${opts.tenant}` : ''} in ${where}`);
    if (users.length > 1) throw new UsageError(`${wanted} is a user in several tenants (${users.map((u) => u.tenant).sort().join(', ')}): pass --tenant`);
    const user = users[0]!;
    if (user.disabled) throw new UsageError(`${wanted} is disabled in tenant ${user.tenant}: enable the user first`);
    const token = newToken();
    const r = await store.submit(token_created, { user_id: user.id, name: opts.name, token_hash: tokenHash(token), expires_at: null }, { tenant: user.tenant, caller: 'cli' });
    if (!r.outcome.ok) {
      console.error(`switchboard: refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
      process.exitCode = 1;
      return;
    }
    const { token_id } = r.outcome.result;
    if (opts.json) {
      console.log(JSON.stringify({ token, token_id, user: { id: user.id, email: user.email, role: user.role, tenant: user.tenant } }, null, 2));
      return;
    }
    console.log(token);
    process.stderr.write(
      `new token "${opts.name}" (id ${token_id}) for ${user.email} (${user.role}, tenant ${user.tenant}); shown once, only its hash is kept.\n` +
        'Start the gateway, then sign in to the console with "Sign in with an API token", or export SWITCHBOARD_TOKEN=<the token above>.\n',
    );
  } finally {
    store.close();
  }
}
