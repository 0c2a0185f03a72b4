/**
 * SIP over TLS (RFC 3261 §26.2, RFC 5630): a node:tls listener on SWITCHBOARD_SIP_TLS_PORT (default 5061) when
 * SWITCHBOARD_SIP_TLS_CERT and _KEY name PEM files; unset = no TLS listener. TLS 1.2 and later only.
 *
 *   cert/key/ca files ──load()──► secure context ──► tls.Server (minVersion TLSv1.2)
 *        ▲  fs.watchFile                              │ secureConnection
 *        └── changed: load() again ──ok──► server.setSecureContext (the next handshake uses it)
 *                                   └─bad─► logged, the old context kept
 *                                              ▼
 *                     transport.ts attachTls: Content-Length framing as TCP, transport `tls`
 *
 * Mutual TLS: with SWITCHBOARD_SIP_TLS_CA (a PEM bundle), every client must present a certificate that chains to
 * it (`requestCert` + `rejectUnauthorized`); a client without one fails the handshake and never reaches SIP.
 * Outbound connections (a `tls` destination: a dialog that came over TLS, an outbound route with
 * `"transport": "tls"`) verify the server against the system roots plus that CA, and present our certificate.
 *
 * A bad file at start throws one error naming its variable (the adapter turns it into a configuration error);
 * a bad file on reload (a half-written pair, a key that does not match) is logged and the old context stays.
 */
import crypto from 'node:crypto';
import fs from 'node:fs';
import tls from 'node:tls';
import type { Logger } from 'pino';
import type { SipTransport } from './transport.ts';

/** The TLS settings (SWITCHBOARD_SIP_TLS_*), built by cli/config/; absent = no TLS listener. */
export interface SipTlsSettings {
  /** SWITCHBOARD_SIP_TLS_PORT; 0 = any free port. */
  port: number;
  /** SWITCHBOARD_SIP_TLS_CERT: PEM certificate chain (ours, leaf first). */
  certFile: string;
  /** SWITCHBOARD_SIP_TLS_KEY: PEM private key of that certificate. */
  keyFile: string;
  /** SWITCHBOARD_SIP_TLS_CA: PEM bundle; set = mutual TLS (clients must present a certificate issued under it). */
  caFile?: string;
  /** How often the files are checked for a change (default 2000 ms). */
  watchIntervalMs?: number;
}

export class SipTlsError extends Error {
  override readonly name = 'SipTlsError';
}

interface Material {
  cert: Buffer;
  key: Buffer;
  ca: Buffer | undefined;
}

const MIN_VERSION = 'TLSv1.2' as const;

function read(file: string, variable: string): Buffer {
  try {
    return fs.readFileSync(file);
  } catch (err) {
    throw new SipTlsError(`${variable}: cannot read ${file}: ${(err as Error).message}`);
  }
}

/** Reads and checks the files; an error names the variable whose file is at fault. */
export function loadTlsMaterial(s: Pick<SipTlsSettings, 'certFile' | 'keyFile' | 'caFile'>): Material {
  const cert = read(s.certFile, 'SWITCHBOARD_SIP_TLS_CERT');
  const key = read(s.keyFile, 'SWITCHBOARD_SIP_TLS_KEY');
  const ca = s.caFile ? read(s.caFile, 'SWITCHBOARD_SIP_TLS_CA') : undefined;
  let x509: crypto.X509Certificate;
  try {
    x509 = new crypto.X509Certificate(cert);
  } catch (err) {
    throw new SipTlsError(`SWITCHBOARD_SIP_TLS_CERT: ${s.certFile} is not a PEM certificate: ${(err as Error).message}`);
  }
  let pkey: crypto.KeyObject;
  try {
    pkey = crypto.createPrivateKey(key);
  } catch (err) {
    throw new SipTlsError(`SWITCHBOARD_SIP_TLS_KEY: ${s.keyFile} is not a PEM private key: ${(err as Error).message}`);
  }
  if (!x509.checkPrivateKey(pkey)) throw new SipTlsError(`SWITCHBOARD_SIP_TLS_KEY: ${s.keyFile} is not the key of the certificate in ${s.certFile} (SWITCHBOARD_SIP_TLS_CERT)`);
  if (ca) {
    try {
      tls.createSecureContext({ ca });
      new crypto.X509Certificate(ca);
    } catch (err) {
      throw new SipTlsError(`SWITCHBOARD_SIP_TLS_CA: ${s.caFile} is not a PEM certificate bundle: ${(err as Error).message}`);
    }
  }
  return { cert, key, ca };
}

const contextOptions = (m: Material): tls.SecureContextOptions => ({ cert: m.cert, key: m.key, ca: m.ca, minVersion: MIN_VERSION });

export class SipTlsListener {
  private material: Material;
  private readonly watched: string[];
  private closed = false;
  private readonly onChange: (cur: fs.Stats, prev: fs.Stats) => void;

  private constructor(
    readonly server: tls.Server,
    readonly port: number,
    private readonly settings: SipTlsSettings,
    material: Material,
    private readonly log: Logger,
  ) {
    this.material = material;
    this.watched = [settings.certFile, settings.keyFile, ...(settings.caFile ? [settings.caFile] : [])];
    const interval = settings.watchIntervalMs ?? 2000;
    this.onChange = (cur, prev) => {
      if (cur.mtimeMs !== prev.mtimeMs || cur.ino !== prev.ino || cur.size !== prev.size) this.reload();
    };
    for (const f of this.watched) fs.watchFile(f, { interval, persistent: false }, this.onChange);
  }

  /** Loads the files (throwing SipTlsError naming the variable), listens, and hands connections to `transport`. */
  static async listen(settings: SipTlsSettings, host: string, transport: SipTransport, log: Logger): Promise<SipTlsListener> {
    const material = loadTlsMaterial(settings);
    const mutual = material.ca !== undefined;
    const server = tls.createServer({ ...contextOptions(material), requestCert: mutual, rejectUnauthorized: mutual });
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(settings.port, host, () => {
        server.removeListener('error', reject);
        resolve();
      });
    });
    server.on('error', (err) => log.warn({ err }, 'SIP TLS listener error'));
    const port = (server.address() as { port: number }).port;
    const listener = new SipTlsListener(server, port, settings, material, log);
    transport.attachTls(server, port, (p, address) => listener.connect(p, address));
    return listener;
  }

  /** Whether clients must present a certificate (SWITCHBOARD_SIP_TLS_CA set). */
  get mutual(): boolean {
    return this.material.ca !== undefined;
  }

  /** Re-reads the files; the next handshake uses them. A bad set is logged and the current context kept. */
  reload(): boolean {
    if (this.closed) return false;
    try {
      const next = loadTlsMaterial(this.settings);
      this.server.setSecureContext(contextOptions(next));
      this.material = next;
      this.log.info({ cert: this.settings.certFile }, 'SIP TLS certificate reloaded');
      return true;
    } catch (err) {
      this.log.error({ err: (err as Error).message }, 'SIP TLS certificate reload failed: the previous certificate stays in use');
      return false;
    }
  }

  /** An outbound TLS connection: the server verified (system roots + our CA), our certificate presented. */
  connect(port: number, address: string): tls.TLSSocket {
    const ca = this.material.ca ? [...tls.rootCertificates, this.material.ca.toString('utf8')] : undefined;
    return tls.connect({ host: address, port, minVersion: MIN_VERSION, cert: this.material.cert, key: this.material.key, ca, rejectUnauthorized: true });
  }

  close(): void {
    this.closed = true;
    for (const f of this.watched) fs.unwatchFile(f, this.onChange);
  }
}
