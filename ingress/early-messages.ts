/**
 * Media messages that arrive while a stream's token is being checked (the check claims the token's nonce through
 * the store: ingress/stream-tokens.ts), kept so the leg created afterwards gets them in order: the caller's first
 * words are not lost to the check. Bounded: beyond `MAX_EARLY` messages (5 s of 20 ms frames) the rest are dropped,
 * as a stalled check is not worth the memory.
 *
 *   start ─► holdEarly(ws) ─► (token checked) ─► release() ─► new Leg(ws) ─► ws.emit('message', …) for each held
 */
import type { RawData, WebSocket } from 'ws';

export const MAX_EARLY = 250;

export interface EarlyMessages {
  /** Stops holding; the messages held so far, oldest first. */
  release(): Array<[RawData, boolean]>;
}

export function holdEarly(ws: WebSocket): EarlyMessages {
  const held: Array<[RawData, boolean]> = [];
  const hold = (data: RawData, isBinary: boolean): void => {
    if (held.length < MAX_EARLY) held.push([data, isBinary]);
  };
  ws.on('message', hold);
  return {
    release: () => {
      ws.off('message', hold);
      return held;
    },
  };
}
