import assert from 'node:assert/strict';
import { test } from 'node:test';
import { corkForTurn } from '../../../media/tick-cork.ts';

class FakeSocket {
  log: string[] = [];
  destroyed = false;
  constructor(readonly name: string) {}
  cork(): void {
    this.log.push('cork');
  }
  uncork(): void {
    this.log.push('uncork');
  }
}

test('a socket is corked once per turn however often it is written, and uncorked once after the turn', async () => {
  const a = new FakeSocket('a');
  const b = new FakeSocket('b');
  corkForTurn(a);
  corkForTurn(a);
  corkForTurn(b);
  corkForTurn(a);
  assert.deepEqual(a.log, ['cork']);
  assert.deepEqual(b.log, ['cork']);
  await new Promise<void>((r) => process.nextTick(r));
  assert.deepEqual(a.log, ['cork', 'uncork']);
  assert.deepEqual(b.log, ['cork', 'uncork']);
  // The next turn corks again.
  corkForTurn(a);
  await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(a.log, ['cork', 'uncork', 'cork', 'uncork']);
});

test('a socket destroyed during the turn is not uncorked; one corked by an uncork is uncorked in the next pass', async () => {
  const gone = new FakeSocket('gone');
  corkForTurn(gone);
  gone.destroyed = true;
  const late = new FakeSocket('late');
  const trigger = new FakeSocket('trigger');
  trigger.uncork = () => {
    trigger.log.push('uncork');
    corkForTurn(late);
  };
  corkForTurn(trigger);
  await new Promise<void>((r) => setImmediate(r));
  assert.deepEqual(gone.log, ['cork']);
  assert.deepEqual(trigger.log, ['cork', 'uncork']);
  assert.deepEqual(late.log, ['cork', 'uncork']);
});
