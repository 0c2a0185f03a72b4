import assert from 'node:assert/strict';
import { test } from 'node:test';
import { CommandIdSource } from '../../../store/command-id.ts';

const V7 = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;
const msOf = (id: string): number => parseInt(id.replace(/-/g, '').slice(0, 12), 16);

test('minted command ids are UUID v7 carrying the clock ms, unique, and sorted in minting order within one ms', () => {
  const at = 1_763_800_000_123;
  const ids = new CommandIdSource(() => at);
  const minted = Array.from({ length: 3000 }, () => ids.next()); // > 2,048: crosses a counter overflow into the next ms
  for (const id of minted) assert.match(id, V7);
  assert.equal(new Set(minted).size, minted.length);
  assert.deepEqual([...minted].sort(), minted, 'ids sort in the order they were minted');
  assert.equal(msOf(minted[0] as string), at);
  assert.ok(msOf(minted.at(-1) as string) <= at + 2, 'a counter overflow borrows the next ms, not more');
});

test('a wall clock stepping back never makes an id sort before an earlier one', () => {
  let now = 1_763_800_000_000;
  const ids = new CommandIdSource(() => now);
  const a = ids.next();
  now -= 5_000; // NTP step back
  const b = ids.next();
  now += 10_000;
  const c = ids.next();
  assert.ok(a < b && b < c, `${a} < ${b} < ${c}`);
  assert.equal(msOf(c), now);
});

test('the random tail differs between sources on the same ms (ids of two processes do not collide)', () => {
  const at = 1_763_800_000_000;
  const x = new CommandIdSource(() => at).next();
  const y = new CommandIdSource(() => at).next();
  assert.notEqual(x.slice(19), y.slice(19));
});
