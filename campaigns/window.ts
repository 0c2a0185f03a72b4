/**
 * The calling window, in the callee's time zone: a campaign calls a number only while the callee's local clock is
 * inside `start`–`end` (`09:00`–`20:00`). The zone is the number's own (a CSV `timezone` column) or the campaign's
 * default; local time comes from `Intl` (the runtime's time zone data, no extra dependency). Pure: the time is given.
 *
 *   start < end    open from start (inclusive) to end (exclusive) the same day
 *   start > end    across midnight: open from start to 24:00 and from 00:00 to end (22:00–06:00)
 *   start = end    always open (00:00–00:00, 00:00–24:00)
 */

export interface CallingWindow {
  start: string;
  end: string;
}

const formatters = new Map<string, Intl.DateTimeFormat>();

function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone, year: 'numeric', month: '2-digit', day: '2-digit', hour: '2-digit', minute: '2-digit', hourCycle: 'h23' });
    formatters.set(timeZone, f);
  }
  return f;
}

/** Whether the runtime knows `timeZone` (an IANA name such as `America/New_York`). */
export function validTimeZone(timeZone: string): boolean {
  try {
    formatter(timeZone);
    return true;
  } catch {
    return false;
  }
}

/** `HH:MM` as minutes since midnight (`24:00` is 1440). */
export function minutesOf(hhmm: string): number {
  const [h, m] = hhmm.split(':').map(Number);
  return h! * 60 + m!;
}

/** The local wall clock in `timeZone` at `nowMs`: minutes since midnight and `YYYY-MM-DD HH:MM zone`. */
export function localClock(timeZone: string, nowMs: number): { minutes: number; text: string } {
  const parts: Record<string, string> = {};
  for (const p of formatter(timeZone).formatToParts(new Date(nowMs))) parts[p.type] = p.value;
  const hour = Number(parts.hour) % 24;
  const minute = Number(parts.minute);
  return { minutes: hour * 60 + minute, text: `${parts.year}-${parts.month}-${parts.day} ${String(hour).padStart(2, '0')}:${parts.minute} ${timeZone}` };
}

/** Whether `minutes` (since local midnight) is inside the window. */
export function insideWindow(w: CallingWindow, minutes: number): boolean {
  const s = minutesOf(w.start) % 1440;
  const e = minutesOf(w.end) % 1440;
  if (s === e) return true;
  return s < e ? minutes >= s && minutes < e : minutes >= s || minutes < e;
}

/** Whether a callee in `timeZone` may be called at `nowMs`, with the local time seen (the decision's evidence). */
export function callableNow(w: CallingWindow, timeZone: string, nowMs: number): { open: boolean; local: string } {
  const clock = localClock(timeZone, nowMs);
  return { open: insideWindow(w, clock.minutes), local: clock.text };
}
