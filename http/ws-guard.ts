/**
 * WebSocket message listeners that cannot take the process down.
 *
 * `ws` calls a 'message' listener from its socket's data handler: an exception
 * thrown there is an uncaught exception, and the process (every call on the
 * node) ends. `guardMessages()` wraps a listener so that an exception ends only
 * the socket that sent the message — closed with 1011 (internal error, RFC 6455
 * §7.4.1) — and is logged once for that socket; its later messages are ignored.
 * Every message listener on a socket the outside world can open (provider media
 * streams, API subscriptions) goes through it.
 */
import type { RawData, WebSocket } from 'ws';

export type MessageListener = (data: RawData, isBinary: boolean) => void;

/** RFC 6455 §7.4.1: the server met a condition that prevented it from fulfilling the request. */
export const WS_INTERNAL_ERROR = 1011;

/**
 * Returns `listener` wrapped: a throw closes `ws` (1011) and is reported once to
 * `failed` (which logs it). Pass the returned function to `ws.off()` to remove it.
 */
export function guardMessages(ws: WebSocket, failed: (err: unknown) => void, listener: MessageListener): MessageListener {
  let broken = false;
  return (data, isBinary) => {
    if (broken) return;
    try {
      listener(data, isBinary);
    } catch (err) {
      broken = true;
      try {
        failed(err);
      } catch {
        // A failing report must not undo the guard.
      }
      try {
        if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(WS_INTERNAL_ERROR, 'internal error');
      } catch {
        ws.terminate();
      }
    }
  };
}

/** A message's bytes as UTF-8 text, whichever form `ws` delivered them in. */
export function rawText(data: RawData): string {
  if (Buffer.isBuffer(data)) return data.toString('utf8');
  return (Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data)).toString('utf8');
}
