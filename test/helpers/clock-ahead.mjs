/**
 * Preload (`NODE_OPTIONS=--import …/clock-ahead.mjs`) that runs a test's child process at a later date, as the
 * node would run days from now: `Date.now()` and `new Date()` read the wall clock plus TEST_CLOCK_AHEAD_MS.
 * Monotonic clocks (performance.now, timers) are untouched, so the process paces and times out as usual.
 * Used to see what a gateway does once stored deadlines (a recording's retention_until) have passed, without
 * waiting for them and without anything in the gateway for tests.
 */
const ahead = Number(process.env.TEST_CLOCK_AHEAD_MS ?? '0');
if (!Number.isFinite(ahead)) throw new Error(`TEST_CLOCK_AHEAD_MS must be a number of ms; got ${process.env.TEST_CLOCK_AHEAD_MS}`);
const RealDate = Date;
class AheadDate extends RealDate {
  constructor(...args) {
    if (args.length === 0) super(RealDate.now() + ahead);
    else super(...args);
  }
  static now() {
    return RealDate.now() + ahead;
  }
}
globalThis.Date = AheadDate;
