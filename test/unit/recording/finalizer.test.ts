/**
 * recording/finalizer.ts: exactly one node finalizes an ended call — its owner while alive or draining, else the first
 * alive node by id, else (no node rows) the node with the recording's working dir. Tables given as plain rows.
 */
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { finalizesHere } from '../../../recording/finalizer.ts';
import type { SwitchboardTables } from '../../../schema/index.ts';
import type { Store } from '../../../store/index.ts';

type NodeRow = { id: string; state: string };

function view(self: string, owner: string | null, nodes: NodeRow[]): Store<SwitchboardTables> {
  const read = () => ({
    calls: { get: () => ({ owner_node: owner }) },
    nodes: { get: (id: string) => nodes.find((n) => n.id === id), find: (f: { state: string }) => nodes.filter((n) => n.state === f.state) },
    recordings: { find: () => [{ id: 'rec_1' }] },
  });
  return { node: self, read } as unknown as Store<SwitchboardTables>;
}

const who = (owner: string | null, nodes: NodeRow[], work: string | null = null): string[] =>
  ['a', 'b', 'c'].filter((self) => finalizesHere(view(self, owner, nodes), 'acme', 'call_1', () => self === work));

test('the owner while alive or draining; else the first alive node by id; else the node with the working dir', () => {
  const up = [{ id: 'a', state: 'alive' }, { id: 'b', state: 'alive' }, { id: 'c', state: 'alive' }];
  assert.deepEqual(who('b', up), ['b']);
  assert.deepEqual(who('c', [{ id: 'a', state: 'alive' }, { id: 'b', state: 'alive' }, { id: 'c', state: 'draining' }]), ['c']);
  assert.deepEqual(who('a', [{ id: 'a', state: 'lost' }, { id: 'b', state: 'alive' }, { id: 'c', state: 'alive' }]), ['b']);
  assert.deepEqual(who('b', [{ id: 'a', state: 'stopped' }, { id: 'b', state: 'stopped' }, { id: 'c', state: 'alive' }]), ['c']);
  assert.deepEqual(who(null, up), ['a']);
  assert.deepEqual(who(null, [], 'c'), ['c']);
  assert.deepEqual(who(null, [], null), []);
});
