/**
 * Cluster mode's section of the configuration (SWITCHBOARD_CLUSTER_*): the NATS servers and how to reach them
 * securely, as store/nats-connect.ts takes them.
 *
 *   SWITCHBOARD_CLUSTER_NATS        nats://[user:pass@ | token@]host:port,…  ─► servers (no secrets) + auth
 *   SWITCHBOARD_CLUSTER_NATS_CREDS  a creds file (user JWT + nkey seed)      ─► auth.creds (read and checked here)
 *   SWITCHBOARD_CLUSTER_NATS_TLS_CA / _CERT / _KEY  PEM files                ─► tls (each must be readable)
 *   SWITCHBOARD_CLUSTER_MAX_AGE_MS / _MAX_BYTES / _SNAPSHOT_EVERY            ─► stream limits, snapshots
 *
 * Credentials in the URLs are taken out of them (every URL must carry the same ones, or only one does), so the
 * servers can be logged; `switchboard config` shows the URLs with the password or token masked (redact.ts).
 * A file that cannot be read, or a creds file without a JWT and a seed, is a ConfigError naming its variable.
 */
import fs from 'node:fs';
import type { ClusterOptions } from '../../store/index.ts';
import { ConfigError } from './sections.ts';
import type { Env } from './schema.ts';

type ClusterEnv = Pick<
  Env,
  | 'SWITCHBOARD_CLUSTER_NATS'
  | 'SWITCHBOARD_CLUSTER_REPLICAS'
  | 'SWITCHBOARD_CLUSTER_MAX_AGE_MS'
  | 'SWITCHBOARD_CLUSTER_MAX_BYTES'
  | 'SWITCHBOARD_CLUSTER_SNAPSHOT_EVERY'
  | 'SWITCHBOARD_CLUSTER_NATS_CREDS' | 'SWITCHBOARD_CLUSTER_NATS_TLS_CA' | 'SWITCHBOARD_CLUSTER_NATS_TLS_CERT' | 'SWITCHBOARD_CLUSTER_NATS_TLS_KEY'
>;

export type ClusterSettings = ClusterOptions & { servers: string[]; replicas: number };

function split(url: string): { server: string; user?: string; pass?: string } {
  const scheme = /^[a-z]+:\/\//i.test(url) ? '' : 'nats://';
  const u = new URL(scheme + url);
  if (!u.username && !u.password) return { server: url };
  const user = decodeURIComponent(u.username);
  const pass = u.password ? decodeURIComponent(u.password) : undefined;
  u.username = '';
  u.password = '';
  return { server: u.toString().replace(/\/$/, ''), user, ...(pass !== undefined ? { pass } : {}) };
}

function readable(name: string, file: string): string {
  try {
    fs.accessSync(file, fs.constants.R_OK);
    if (!fs.statSync(file).isFile()) throw new Error('not a file');
  } catch (err) {
    throw new ConfigError(`${name}: cannot read ${file} (${(err as NodeJS.ErrnoException).code ?? (err as Error).message})`);
  }
  return file;
}

function credsFile(file: string): Uint8Array {
  const name = 'SWITCHBOARD_CLUSTER_NATS_CREDS';
  const data = fs.readFileSync(readable(name, file));
  const text = data.toString('utf8');
  if (!/-----BEGIN NATS USER JWT-----/.test(text) || !/-----BEGIN USER NKEY SEED-----/.test(text)) {
    throw new ConfigError(`${name}: ${file} is not a NATS creds file (expected a user JWT and its nkey seed, as nsc writes them)`);
  }
  return data;
}

/** Undefined when SWITCHBOARD_CLUSTER_NATS is unset (embedded). */
export function clusterSettings(e: ClusterEnv): ClusterSettings | undefined {
  if (!e.SWITCHBOARD_CLUSTER_NATS) return undefined;
  const parts = e.SWITCHBOARD_CLUSTER_NATS.map(split);
  const given = parts.filter((p) => p.user !== undefined);
  const first = given[0];
  if (given.some((p) => p.user !== first?.user || p.pass !== first?.pass)) {
    throw new ConfigError('SWITCHBOARD_CLUSTER_NATS: the URLs carry different credentials; give the same user and password (or token) to every URL, or to one');
  }
  if (first && e.SWITCHBOARD_CLUSTER_NATS_CREDS) {
    throw new ConfigError('SWITCHBOARD_CLUSTER_NATS_CREDS: set together with credentials in SWITCHBOARD_CLUSTER_NATS; give one or the other');
  }
  const { SWITCHBOARD_CLUSTER_NATS_TLS_CA: ca, SWITCHBOARD_CLUSTER_NATS_TLS_CERT: cert, SWITCHBOARD_CLUSTER_NATS_TLS_KEY: key } = e;
  if (Boolean(cert) !== Boolean(key)) {
    throw new ConfigError(`${cert ? 'SWITCHBOARD_CLUSTER_NATS_TLS_KEY' : 'SWITCHBOARD_CLUSTER_NATS_TLS_CERT'}: a client certificate needs both SWITCHBOARD_CLUSTER_NATS_TLS_CERT and SWITCHBOARD_CLUSTER_NATS_TLS_KEY`);
  }
  const auth: ClusterOptions['auth'] = first
    ? first.pass === undefined
      ? { token: first.user as string, variable: 'SWITCHBOARD_CLUSTER_NATS' }
      : { user: first.user as string, pass: first.pass, variable: 'SWITCHBOARD_CLUSTER_NATS' }
    : e.SWITCHBOARD_CLUSTER_NATS_CREDS
      ? { creds: credsFile(e.SWITCHBOARD_CLUSTER_NATS_CREDS), variable: 'SWITCHBOARD_CLUSTER_NATS_CREDS' }
      : undefined;
  const tls: ClusterOptions['tls'] =
    ca || cert
      ? {
          ...(ca ? { caFile: readable('SWITCHBOARD_CLUSTER_NATS_TLS_CA', ca) } : {}),
          ...(cert && key ? { certFile: readable('SWITCHBOARD_CLUSTER_NATS_TLS_CERT', cert), keyFile: readable('SWITCHBOARD_CLUSTER_NATS_TLS_KEY', key) } : {}),
          variable: ca ? 'SWITCHBOARD_CLUSTER_NATS_TLS_CA' : 'SWITCHBOARD_CLUSTER_NATS_TLS_CERT',
        }
      : undefined;
  return {
    servers: parts.map((p) => p.server),
    replicas: e.SWITCHBOARD_CLUSTER_REPLICAS,
    variable: 'SWITCHBOARD_CLUSTER_NATS',
    ...(e.SWITCHBOARD_CLUSTER_MAX_AGE_MS ? { maxAgeMs: e.SWITCHBOARD_CLUSTER_MAX_AGE_MS } : {}),
    ...(e.SWITCHBOARD_CLUSTER_MAX_BYTES ? { maxBytes: e.SWITCHBOARD_CLUSTER_MAX_BYTES } : {}),
    ...(e.SWITCHBOARD_CLUSTER_SNAPSHOT_EVERY ? { snapshotEvery: e.SWITCHBOARD_CLUSTER_SNAPSHOT_EVERY } : {}),
    ...(auth ? { auth } : {}),
    ...(tls ? { tls } : {}),
  };
}
