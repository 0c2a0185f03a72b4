/**
 * The roots where the event loop calls into a call's code — timers, socket
 * `message`/`data` handlers, send callbacks — enter through a guard: an
 * exception is caught there and handed to the owner (once: logged once, the
 * owner ends only its call) instead of escaping to the loop, where it would end
 * the process and every other call with it.
 *
 *   setInterval(guard.wrap('rtcp report', tick))      socket.on('message', guard.wrap('rtp in', onRtp))
 *                     └──── throws ────► guard ─► onFault(err, where) ─► the call ends with a reason
 */
import type dgram from 'node:dgram';
import net from 'node:net';

export type FaultHandler = (err: unknown, where: string) => void;

export class FaultGuard {
  private faulted = false;

  constructor(private readonly onFault: FaultHandler) {}

  /** Whether a fault has been reported (later ones are dropped). */
  get tripped(): boolean {
    return this.faulted;
  }

  /** `fn` as a callback that never throws: its first exception goes to the owner, later ones are dropped. */
  wrap<A extends unknown[]>(where: string, fn: (...args: A) => void): (...args: A) => void {
    return (...args: A): void => {
      try {
        fn(...args);
      } catch (err) {
        this.report(err, where);
      }
    };
  }

  report(err: unknown, where: string): void {
    if (this.faulted) return;
    this.faulted = true;
    try {
      this.onFault(err, where);
    } catch {
      // The owner's handler failed too: nothing sensible is left to do, and nothing may escape.
    }
  }
}

/** A one-off guarded callback (a timer with no owner to end): the error goes to `onError`, never to the loop. */
export function guarded<A extends unknown[]>(fn: (...args: A) => void, onError: (err: unknown) => void): (...args: A) => void {
  return (...args: A): void => {
    try {
      fn(...args);
    } catch (err) {
      try {
        onError(err);
      } catch {
        /* nothing may escape */
      }
    }
  };
}

/** A UDP destination a socket accepts: an IP literal (of the socket's family) and a port in 1–65535. */
export function usableUdpTarget(address: unknown, port: unknown, family: 4 | 6 = 4): boolean {
  if (typeof address !== 'string' || typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) return false;
  const f = net.isIP(address);
  return f === family || (family === 6 && f === 4);
}

/**
 * Sends a datagram, or returns the reason it cannot be sent: a target that is no IP literal or port
 * (`dgram.send` would throw ERR_SOCKET_BAD_PORT or start a DNS lookup), or a socket already closed.
 */
export function sendUdp(sock: dgram.Socket, bytes: Uint8Array, port: unknown, address: unknown, family: 4 | 6 = 4): string | null {
  if (!usableUdpTarget(address, port, family)) return `unusable UDP target ${String(address).slice(0, 64)}:${String(port).slice(0, 16)}`;
  try {
    sock.send(bytes, port as number, address as string, () => undefined);
    return null;
  } catch (err) {
    return (err as Error).message;
  }
}
