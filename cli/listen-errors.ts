/**
 * Start-up listen failures as one line naming the setting to change.
 *
 * A port that is taken (`EADDRINUSE`) or needs privileges (`EACCES`), or a
 * host address this machine does not have (`EADDRNOTAVAIL`), is a
 * configuration problem, not a crash: `listenError` turns the socket error
 * into a {@link ConfigError} (the CLI prints `switchboard: …` and exits 2, no
 * stack trace) that names SWITCHBOARD_HTTP_PORT, SWITCHBOARD_SIP_PORT,
 * SWITCHBOARD_RTP_PORTS or SWITCHBOARD_HOST. Other errors pass through as they are.
 *
 * RTP ports are bound per call, so nothing would notice an unusable range
 * until the first SIP call; {@link checkRtpRange} binds one pair of the range
 * at start (and releases it) so the start fails instead.
 */
import dgram from 'node:dgram';
import { ConfigError } from './config/index.ts';

/** What listens, for the message: `HTTP`, `SIP`, `RTP`. */
export type Listener = 'HTTP' | 'SIP' | 'RTP';

const VARIABLE: Record<Listener, string> = { HTTP: 'SWITCHBOARD_HTTP_PORT', SIP: 'SWITCHBOARD_SIP_PORT', RTP: 'SWITCHBOARD_RTP_PORTS' };

/**
 * The one-line error for a failed listen of `what` on `host`:`port`, or `err`
 * itself when it is not a listen problem a setting can fix.
 */
export function listenError(err: unknown, what: Listener, host: string, port: number | string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  const variable = VARIABLE[what];
  const where = what === 'RTP' ? `every RTP port pair in ${port} on ${host}` : `${what} port ${port} on ${host}`;
  if (code === 'EADDRINUSE') return new ConfigError(`${where} is already in use (${variable}): stop what uses it, or set ${variable} to a free port`);
  if (code === 'EACCES') return new ConfigError(`${where} needs privileges this process does not have (${variable}): choose a port above 1023`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`${host} is not an address of this machine (SWITCHBOARD_HOST), so ${what} cannot listen on it`);
  return err;
}

function bindUdp(port: number, host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(port, host, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/**
 * Proves the RTP range usable: binds the first free even/odd pair of
 * `low`–`high` on `host`, then releases it. Throws the
 * {@link listenError} of the last failure when no pair can be bound.
 */
export async function checkRtpRange(range: { low: number; high: number }, host: string): Promise<void> {
  let last: unknown = null;
  for (let port = range.low; port + 1 <= range.high; port += 2) {
    try {
      const rtp = await bindUdp(port, host);
      try {
        const rtcp = await bindUdp(port + 1, host);
        rtcp.close();
        return;
      } finally {
        rtp.close();
      }
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (err as NodeJS.ErrnoException).code !== 'EACCES') break;
    }
  }
  const err = listenError(last, 'RTP', host, `${range.low}-${range.high}`);
  throw err instanceof Error ? err : new ConfigError(`SWITCHBOARD_RTP_PORTS ${range.low}-${range.high}: no RTP port pair can be bound on ${host}`);
}
