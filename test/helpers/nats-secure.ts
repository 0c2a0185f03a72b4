/**
 * A real nats-server (JetStream, one server) secured as operators secure it, for tests of cluster mode's NATS
 * credentials and TLS: a self-signed CA, a server certificate for 127.0.0.1 and a client certificate, all made with
 * openssl in a temp dir; TLS required (optionally verifying client certificates) and a user with a password.
 */
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { freePort } from './gateway.ts';
import { NATS_SERVER } from './nats-cluster.ts';
import { tmpDir } from './tmp.ts';

export interface Pki {
  ca: string;
  serverCert: string;
  serverKey: string;
  clientCert: string;
  clientKey: string;
}

function openssl(dir: string, args: string[]): void {
  execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
}

/** A CA and two certificates it issued: the server's (SAN IP 127.0.0.1) and a client's. */
export function makePki(dir = tmpDir('sb-pki-')): Pki {
  const p = (f: string) => path.join(dir, f);
  openssl(dir, ['req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-keyout', 'ca.key', '-out', 'ca.pem', '-days', '2', '-subj', '/CN=switchboard test CA']);
  for (const [name, ext] of [
    ['server', 'subjectAltName=IP:127.0.0.1,DNS:localhost\nextendedKeyUsage=serverAuth'],
    ['client', 'extendedKeyUsage=clientAuth'],
  ] as const) {
    fs.writeFileSync(p(`${name}.ext`), `${ext}\n`);
    openssl(dir, ['req', '-newkey', 'rsa:2048', '-nodes', '-keyout', `${name}.key`, '-out', `${name}.csr`, '-subj', `/CN=${name}`]);
    openssl(dir, ['x509', '-req', '-in', `${name}.csr`, '-CA', 'ca.pem', '-CAkey', 'ca.key', '-CAcreateserial', '-out', `${name}.pem`, '-days', '2', '-extfile', `${name}.ext`]);
  }
  return { ca: p('ca.pem'), serverCert: p('server.pem'), serverKey: p('server.key'), clientCert: p('client.pem'), clientKey: p('client.key') };
}

export interface SecureNats {
  url: string;
  pki: Pki;
  user: string;
  password: string;
  stop(): Promise<void>;
}

/** One JetStream server requiring TLS and user/password (`verifyClients`: client certificates too). */
export async function startSecureNats(opts: { verifyClients?: boolean } = {}): Promise<SecureNats> {
  const dir = tmpDir('sb-nats-tls-');
  const pki = makePki(path.join(dir));
  const port = await freePort();
  const user = 'switchboard';
  const password = 'pw-0123456789-secret';
  const conf = [
    `listen: 127.0.0.1:${port}`,
    `jetstream { store_dir: "${path.join(dir, 'js')}" }`,
    `tls { cert_file: "${pki.serverCert}", key_file: "${pki.serverKey}", ca_file: "${pki.ca}"${opts.verifyClients ? ', verify: true' : ''}, timeout: 2 }`,
    `authorization { user: "${user}", password: "${password}" }`,
  ].join('\n');
  fs.writeFileSync(path.join(dir, 'nats.conf'), conf);
  const proc: ChildProcess = spawn(NATS_SERVER, ['-c', path.join(dir, 'nats.conf')], { detached: true, stdio: ['ignore', 'ignore', 'ignore'] });
  const kill = (): void => {
    try {
      if (proc.pid !== undefined && proc.exitCode === null) process.kill(-proc.pid, 'SIGKILL');
    } catch {
      // gone
    }
  };
  process.once('exit', kill);
  const deadline = Date.now() + 10_000;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const s = net.connect(port, '127.0.0.1');
      s.once('connect', () => (s.destroy(), resolve(true)));
      s.once('error', () => (s.destroy(), resolve(false)));
    });
    if (up) break;
    if (Date.now() > deadline) throw new Error('secure nats-server did not listen');
    await new Promise((r) => setTimeout(r, 50));
  }
  return {
    url: `nats://127.0.0.1:${port}`,
    pki,
    user,
    password,
    stop: () =>
      new Promise<void>((resolve) => {
        if (proc.exitCode !== null || proc.signalCode !== null) return resolve();
        proc.once('exit', () => resolve());
        kill();
      }),
  };
}
