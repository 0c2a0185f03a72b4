/**
 * A minimal typed event emitter for the media hot path.
 *
 * Unlike node:events it never throws out of `emit`: a listener that throws is
 * caught and its error returned to the caller, so one misbehaving consumer
 * cannot break a shared loop (the media clock). Listener lists are
 * copy-on-write, so emitting allocates nothing unless a listener throws, and
 * listeners added or removed during an emit take effect from the next emit.
 */

/** Maps each event name to its listener's argument tuple. */
export type EventMap = { [event: string]: unknown[] };

export type Listener<Args extends unknown[]> = (...args: Args) => void;

export class SafeEmitter<Events extends EventMap> {
  private readonly listeners: { [K in keyof Events]?: ReadonlyArray<Listener<Events[K]>> } = {};

  /** Subscribes; returns a function that unsubscribes. */
  on<K extends keyof Events>(event: K, listener: Listener<Events[K]>): () => void {
    const current = this.listeners[event] ?? [];
    this.listeners[event] = [...current, listener];
    return () => this.off(event, listener);
  }

  /** Removes one registration of `listener` (no-op if absent). */
  off<K extends keyof Events>(event: K, listener: Listener<Events[K]>): void {
    const current = this.listeners[event];
    if (!current) return;
    const i = current.indexOf(listener);
    if (i < 0) return;
    const next = current.slice();
    next.splice(i, 1);
    this.listeners[event] = next;
  }

  /** Number of listeners registered for `event`. */
  listenerCount<K extends keyof Events>(event: K): number {
    return this.listeners[event]?.length ?? 0;
  }

  /**
   * Calls every listener of `event` in registration order. Returns the errors
   * thrown by listeners, or undefined when none threw. Never throws.
   */
  protected emit<K extends keyof Events>(event: K, ...args: Events[K]): unknown[] | undefined {
    const list = this.listeners[event];
    if (!list) return undefined;
    let errors: unknown[] | undefined;
    for (let i = 0; i < list.length; i++) {
      try {
        (list[i] as Listener<Events[K]>)(...args);
      } catch (err) {
        (errors ??= []).push(err);
      }
    }
    return errors;
  }
}
