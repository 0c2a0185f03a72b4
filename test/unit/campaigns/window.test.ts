/** The calling window in the callee's zone (campaigns/window.ts), at given instants. */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { callableNow, insideWindow, localClock, validTimeZone } from '../../../campaigns/window.ts';

const at = (iso: string): number => Date.parse(iso);

test('local time follows the zone, daylight saving included', () => {
  assert.equal(localClock('UTC', at('2026-07-01T12:30:00Z')).text, '2026-07-01 12:30 UTC');
  assert.equal(localClock('America/New_York', at('2026-07-01T12:30:00Z')).text, '2026-07-01 08:30 America/New_York'); // EDT, UTC-4
  assert.equal(localClock('America/New_York', at('2026-01-15T12:30:00Z')).text, '2026-01-15 07:30 America/New_York'); // EST, UTC-5
  assert.equal(localClock('Asia/Tokyo', at('2026-01-15T20:00:00Z')).text, '2026-01-16 05:00 Asia/Tokyo');
  assert.equal(localClock('UTC', at('2026-01-15T00:05:00Z')).minutes, 5, 'midnight is 00, not 24');
});

test('09:00–20:00: start inclusive, end exclusive, in the callee\'s zone', () => {
  const w = { start: '09:00', end: '20:00' };
  assert.equal(callableNow(w, 'America/New_York', at('2026-07-01T12:59:00Z')).open, false, '08:59 local');
  assert.equal(callableNow(w, 'America/New_York', at('2026-07-01T13:00:00Z')).open, true, '09:00 local');
  assert.equal(callableNow(w, 'America/New_York', at('2026-07-01T23:59:00Z')).open, true, '19:59 local');
  assert.equal(callableNow(w, 'America/New_York', at('2026-07-02T00:00:00Z')).open, false, '20:00 local');
  // The same instant: open in Paris (14:00), closed in Los Angeles (05:00).
  const noonUtc = at('2026-07-01T12:00:00Z');
  assert.equal(callableNow(w, 'Europe/Paris', noonUtc).open, true);
  assert.equal(callableNow(w, 'America/Los_Angeles', noonUtc).open, false);
});

test('a window across midnight, and an all-day one', () => {
  const night = { start: '22:00', end: '06:00' };
  assert.equal(insideWindow(night, 23 * 60), true);
  assert.equal(insideWindow(night, 3 * 60), true);
  assert.equal(insideWindow(night, 6 * 60), false);
  assert.equal(insideWindow(night, 12 * 60), false);
  for (const m of [0, 600, 1439]) {
    assert.equal(insideWindow({ start: '00:00', end: '24:00' }, m), true);
    assert.equal(insideWindow({ start: '00:00', end: '00:00' }, m), true);
  }
});

test('zones are checked against the runtime', () => {
  assert.equal(validTimeZone('Europe/Paris'), true);
  assert.equal(validTimeZone('Mars/Olympus_Mons'), false);
});
