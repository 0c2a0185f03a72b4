/**
 * The NATS connection of cluster mode, with what operators secure NATS with (whatever @nats-io/transport-node 3.x
 * takes): user/password or a token (cli/config/ takes them out of the URLs), a creds file (a user JWT and its nkey
 * seed, decentralized auth), TLS with a CA to trust and a client certificate for mutual TLS.
 *
 * A failure is one StoreError naming the variable to fix: an authorization refusal names the credentials' variable
 * (`auth.variable`), a certificate the server's chain does not verify against names the CA's (`tls.variable`),
 * anything else (unreachable, refused) names the servers' (`variable`). Errors never show a secret.
 */
import { connect } from '@nats-io/transport-node';
import { credsAuthenticator, type NatsConnection } from '@nats-io/nats-core';
import { StoreError } from './errors.ts';
import type { ClusterOptions } from './jetstream-log.ts';

/** The certificate errors of Node's TLS (OpenSSL) that mean "the server's chain is not trusted here". */
const CERT_ERROR = /certificate|self[- ]signed|unable to (get|verify)|CERT_|altname|hostname\/IP does not match/i;
const AUTH_ERROR = /authorization|authentication|auth(entication)? (violation|required)|user authentication/i;

export async function connectNats(opts: ClusterOptions): Promise<NatsConnection> {
  const variable = opts.variable ?? 'SWITCHBOARD_CLUSTER_NATS';
  const { auth, tls } = opts;
  try {
    return await connect({
      servers: opts.servers,
      timeout: opts.connectTimeoutMs ?? 5000,
      maxReconnectAttempts: -1,
      name: 'switchboard',
      ...(auth?.user !== undefined ? { user: auth.user, pass: auth.pass ?? '' } : {}),
      ...(auth?.token !== undefined ? { token: auth.token } : {}),
      ...(auth?.creds ? { authenticator: credsAuthenticator(auth.creds) } : {}),
      ...(tls ? { tls: { ...(tls.caFile ? { caFile: tls.caFile } : {}), ...(tls.certFile ? { certFile: tls.certFile } : {}), ...(tls.keyFile ? { keyFile: tls.keyFile } : {}) } } : {}),
    });
  } catch (err) {
    const why = describe(err);
    const at = opts.servers.join(', ');
    if (AUTH_ERROR.test(why)) {
      throw new StoreError('storage_unavailable', `${auth?.variable ?? variable}: NATS at ${at} refused the credentials (${why})`);
    }
    if (CERT_ERROR.test(why)) {
      throw new StoreError('storage_unavailable', `${tls?.variable ?? 'SWITCHBOARD_CLUSTER_NATS_TLS_CA'}: the TLS certificate of NATS at ${at} is not trusted (${why})`);
    }
    throw new StoreError('storage_unavailable', `${variable}: cannot connect to NATS at ${at} (${why})`);
  }
}

/** The error and its causes in one line (the client wraps the socket's error). */
function describe(err: unknown): string {
  const parts: string[] = [];
  for (let e: unknown = err; e instanceof Error && parts.length < 4; e = (e as Error & { cause?: unknown }).cause) parts.push(e.message);
  return parts.join(': ') || String(err);
}
