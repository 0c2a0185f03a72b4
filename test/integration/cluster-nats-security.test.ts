/**
 * Cluster mode against a secured NATS (store/nats-connect.ts, cli/config/cluster.ts): a real nats-server requiring
 * TLS (a self-signed CA made with openssl here) and a user with a password, and one verifying client certificates.
 * The right settings connect and commit; each wrong one is one clear error naming the variable to fix, never showing
 * the password; `switchboard start` stops with exit 2 and `switchboard config` masks the password.
 */
import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { loadConfig } from '../../cli/config/index.ts';
import { resolveDurability, Store, StoreError, type ClusterOptions } from '../../store/index.ts';
import { freePort } from '../helpers/gateway.ts';
import { startSecureNats, type SecureNats } from '../helpers/nats-secure.ts';
import { tallySchema } from '../helpers/tally-schema.ts';
import { tmpDir } from '../helpers/tmp.ts';

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');
let nats: SecureNats;
let mtls: SecureNats;

before(async () => {
  [nats, mtls] = await Promise.all([startSecureNats(), startSecureNats({ verifyClients: true })]);
});
after(async () => {
  await Promise.all([nats?.stop(), mtls?.stop()]);
});

/** What cli/config/ builds from these variables (the real door, not a hand-made option object). */
function clusterFrom(env: Record<string, string>): ClusterOptions {
  const c = loadConfig({ SWITCHBOARD_CLUSTER_REPLICAS: '1', ...env }).store.cluster;
  assert.ok(c);
  return { ...c, connectTimeoutMs: 3000 };
}

async function openWith(cluster: ClusterOptions): Promise<Store<typeof tallySchema.tables>> {
  return Store.openCluster({ dataDir: tmpDir(), schema: tallySchema, durability: resolveDurability({ profile: 'development', fsync: 'never' }), checkpointMs: 0, cluster });
}

const withPassword = (s: SecureNats, password = s.password) => s.url.replace('nats://', `nats://${s.user}:${password}@`);

test('TLS with the CA and user/password in the URL: connects, commits, and the password is in no server URL', async () => {
  const cluster = clusterFrom({ SWITCHBOARD_CLUSTER_NATS: withPassword(nats), SWITCHBOARD_CLUSTER_NATS_TLS_CA: nats.pki.ca });
  assert.deepEqual(cluster.servers, [nats.url]);
  assert.equal(cluster.auth?.pass, nats.password);
  const store = await openWith(cluster);
  try {
    const r = await store.submitNamed('put', { id: 'k', n: 1 }, { tenant: 'acme', caller: 't' });
    assert.equal(r.outcome.ok, true);
    assert.equal(store.read('acme').tally.get('k')?.n, 1);
  } finally {
    store.close();
    await store.whenClosed();
  }
});

test('mutual TLS: the client certificate from SWITCHBOARD_CLUSTER_NATS_TLS_CERT/_KEY is accepted', async () => {
  const store = await openWith(
    clusterFrom({
      SWITCHBOARD_CLUSTER_NATS: withPassword(mtls),
      SWITCHBOARD_CLUSTER_NATS_TLS_CA: mtls.pki.ca,
      SWITCHBOARD_CLUSTER_NATS_TLS_CERT: mtls.pki.clientCert,
      SWITCHBOARD_CLUSTER_NATS_TLS_KEY: mtls.pki.clientKey,
    }),
  );
  try {
    assert.equal((await store.submitNamed('put', { id: 'm', n: 2 }, { tenant: 'acme', caller: 't' })).outcome.ok, true);
  } finally {
    store.close();
    await store.whenClosed();
  }
});

test('a wrong password names SWITCHBOARD_CLUSTER_NATS and does not show it; a server certificate not trusted names SWITCHBOARD_CLUSTER_NATS_TLS_CA', async () => {
  await assert.rejects(openWith(clusterFrom({ SWITCHBOARD_CLUSTER_NATS: withPassword(nats, 'wrong-password-42'), SWITCHBOARD_CLUSTER_NATS_TLS_CA: nats.pki.ca })), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.match(err.message, /^SWITCHBOARD_CLUSTER_NATS: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials/);
    assert.doesNotMatch(err.message, /wrong-password-42/);
    return true;
  });
  // no CA given: the self-signed chain does not verify against the system's CAs
  await assert.rejects(openWith(clusterFrom({ SWITCHBOARD_CLUSTER_NATS: withPassword(nats) })), (err: unknown) => {
    assert.ok(err instanceof StoreError);
    assert.match(err.message, /^SWITCHBOARD_CLUSTER_NATS_TLS_CA: the TLS certificate of NATS at .* is not trusted/);
    assert.doesNotMatch(err.message, new RegExp(nats.password));
    return true;
  });
});

test('files that are missing or not creds are ConfigErrors naming their variable', () => {
  const url = { SWITCHBOARD_CLUSTER_NATS: nats.url };
  assert.throws(() => loadConfig({ ...url, SWITCHBOARD_CLUSTER_NATS_TLS_CA: '/nonexistent/ca.pem' }), /^ConfigError: SWITCHBOARD_CLUSTER_NATS_TLS_CA: cannot read \/nonexistent\/ca\.pem \(ENOENT\)/);
  assert.throws(() => loadConfig({ ...url, SWITCHBOARD_CLUSTER_NATS_CREDS: nats.pki.ca }), /SWITCHBOARD_CLUSTER_NATS_CREDS: .* is not a NATS creds file/);
  assert.throws(() => loadConfig({ ...url, SWITCHBOARD_CLUSTER_NATS_TLS_CERT: nats.pki.clientCert }), /SWITCHBOARD_CLUSTER_NATS_TLS_KEY: a client certificate needs both/);
  assert.throws(() => loadConfig({ SWITCHBOARD_CLUSTER_NATS: `nats://a:b@h1:4222,nats://a:c@h2:4222` }), /SWITCHBOARD_CLUSTER_NATS: the URLs carry different credentials/);
  const token = loadConfig({ SWITCHBOARD_CLUSTER_NATS: 'nats://s3cr3t-token@h1:4222,h2:4222' }).store.cluster;
  assert.deepEqual(token?.auth, { token: 's3cr3t-token', variable: 'SWITCHBOARD_CLUSTER_NATS' });
  assert.deepEqual(token?.servers, ['nats://h1:4222', 'h2:4222']);
});

function run(args: string[], env: Record<string, string>): { code: number | null; out: string } {
  const r = spawnSync(process.execPath, [BIN, ...args], {
    env: { ...process.env, SWITCHBOARD_HOST: '127.0.0.1', SWITCHBOARD_LOG_LEVEL: 'error', SWITCHBOARD_STT: 'none', SWITCHBOARD_TTS: 'none', ...env },
    encoding: 'utf8',
    timeout: 60_000,
  });
  return { code: r.status, out: `${r.stdout}${r.stderr}` };
}

test('switchboard start with a refused password: exit 2, one line naming the variable; switchboard config masks the password', async () => {
  const env = {
    SWITCHBOARD_DATA_DIR: tmpDir('sb-cl-sec-'),
    SWITCHBOARD_HTTP_PORT: String(await freePort()),
    SWITCHBOARD_SIP_PORT: '0',
    SWITCHBOARD_CLUSTER_REPLICAS: '1',
    SWITCHBOARD_CLUSTER_NATS: withPassword(nats, 'not-the-password-77'),
    SWITCHBOARD_CLUSTER_NATS_TLS_CA: nats.pki.ca,
  };
  const r = run(['start'], env);
  assert.equal(r.code, 2, r.out);
  assert.match(r.out, /switchboard: SWITCHBOARD_CLUSTER_NATS: NATS at nats:\/\/127\.0\.0\.1:\d+ refused the credentials/);
  assert.doesNotMatch(r.out, /not-the-password-77/);
  assert.doesNotMatch(r.out, /\n\s+at /, 'no stack trace');
  const shown = run(['config'], env);
  assert.equal(shown.code, 0, shown.out);
  assert.match(shown.out, /SWITCHBOARD_CLUSTER_NATS\s+nats:\/\/switchboard:\*\*\*\*@127\.0\.0\.1:\d+/);
  assert.doesNotMatch(shown.out, /not-the-password-77/);
});
