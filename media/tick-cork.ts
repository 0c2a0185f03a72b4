/**
 * Corks a socket until the current turn of the event loop has finished, so all
 * the writes one media-clock tick makes to it (a frame, the marks behind it)
 * leave in one `writev` instead of one system call per message. Every socket
 * corked during a turn is uncorked once, together, on `process.nextTick` —
 * that is, right after the tick (or the message handler) that wrote.
 *
 *   tick ─► cork(A) write write  cork(B) write  …  ─► nextTick: uncork A, B, …
 *
 * One list and one nextTick callback for the whole process: nothing is
 * allocated per socket or per frame.
 */

export interface Corkable {
  cork(): void;
  uncork(): void;
  readonly destroyed?: boolean;
}

/** This turn's corked sockets; swapped with `spare` when they are uncorked (an uncork may cork again). */
let corked: Corkable[] = [];
let spare: Corkable[] = [];
const members = new WeakSet<Corkable>();
let scheduled = false;

function uncorkAll(): void {
  scheduled = false;
  const list = corked;
  corked = spare;
  for (let i = 0; i < list.length; i++) {
    const s = list[i] as Corkable;
    members.delete(s);
    if (!s.destroyed) s.uncork();
  }
  list.length = 0;
  spare = list;
}

/** Corks `socket` (once per turn) and uncorks it after the current turn. */
export function corkForTurn(socket: Corkable): void {
  if (members.has(socket)) return;
  members.add(socket);
  corked.push(socket);
  socket.cork();
  if (!scheduled) {
    scheduled = true;
    process.nextTick(uncorkAll);
  }
}
