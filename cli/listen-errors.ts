/**
 * Start-up listen failures as one line naming the setting to change.
 *
 * A port that is taken (`EADDRINUSE`) or needs privileges (`EACCES`), or a
 * host address this machine does not have (`EADDRNOTAVAIL`), is a
 * configuration problem, not a crash: `listenError` turns the socket error
 * into a {@link ConfigError} (the CLI prints `switchboard: …` and exits 2, no
 * stack trace) that names SWITCHBOARD_HTTP_PORT or SWITCHBOARD_HOST. An ingress
 * adapter's own sockets (SIP's port, the RTP range) fail as an
 * `IngressListenError` (ingress/port.ts) naming its variable, shown the same
 * way by {@link mountError}. Other errors pass through as they are.
 */
import dgram from 'node:dgram';
import { IngressConfigError, IngressListenError } from '../ingress/port.ts';
import { ConfigError } from './config/index.ts';

/** One listen failure of `what` at `where` (`HTTP port 8080 on 0.0.0.0`), fixed through `variable`. */
function socketError(err: unknown, what: string, where: string, variable: string, host: string): unknown {
  const code = (err as NodeJS.ErrnoException | null)?.code;
  if (code === 'EADDRINUSE') return new ConfigError(`${where} is already in use (${variable}): stop what uses it, or set ${variable} to a free port`);
  if (code === 'EACCES') return new ConfigError(`${where} needs privileges this process does not have (${variable}): choose a port above 1023`);
  if (code === 'EADDRNOTAVAIL') return new ConfigError(`${host} is not an address of this machine (SWITCHBOARD_HOST), so ${what} cannot listen on it`);
  return err;
}

/** The one-line error for a failed HTTP listen on `host`:`port`, or `err` itself when no setting can fix it. */
export function listenError(err: unknown, host: string, port: number): unknown {
  return socketError(err, 'HTTP', `HTTP port ${port} on ${host}`, 'SWITCHBOARD_HTTP_PORT', host);
}

/**
 * An ingress adapter's mount failure as the start's error: a setting of the adapter (IngressConfigError) or one
 * of its sockets (IngressListenError) is a ConfigError naming the variable; anything else passes through.
 */
export function mountError(err: unknown): unknown {
  if (err instanceof IngressConfigError) return new ConfigError(err.message);
  if (err instanceof IngressListenError) {
    const mapped = socketError(err.err, err.what, err.where, err.variable, err.host);
    if (mapped instanceof ConfigError) return mapped;
    return err.what === 'RTP' ? new ConfigError(err.fallback) : new Error(err.fallback);
  }
  return err;
}
