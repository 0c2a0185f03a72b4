/**
 * Reducers are called by their typed handles, never by a string: `store.submit(call_ended, { call_id, reason }, who)`
 * types the args and the result from the reducer's definition, so a reader (or a tool) follows a call into
 * `schema/`. Strings are only the wire form (the log, replay, `Store.submitNamed`, which lives in `store/`).
 *
 * Checked here, over the application's sources:
 *  - no module outside `store/` submits by name (`.submit('…'`, `submitNamed(`);
 *  - every handle `schema/reducers.ts` exports is submitted by some application module (a reducer nothing submits is
 *    removed, or retired when older logs hold it);
 *  - the schema's reducers are exactly the handles plus the retired ones, and the store refuses a handle that is not
 *    its schema's own.
 */
import assert from 'node:assert/strict';
import path from 'node:path';
import { test } from 'node:test';
import { sourceFiles, type SourceFile } from '../../../scripts/sources.ts';
import { z } from 'zod';
import { retired, schema } from '../../../schema/index.ts';
import * as handles from '../../../schema/reducers.ts';
import { reducerFactory } from '../../../store/index.ts';
import type { SwitchboardTables } from '../../../schema/index.ts';
import { openTestStore, T } from '../../helpers/store.ts';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');
const APP_DIRS = ['agents', 'api', 'bridge', 'campaigns', 'cli', 'consent', 'ingress', 'media', 'recording', 'schema', 'speech'];

function sources(dirs: string[]): SourceFile[] {
  return sourceFiles(dirs, { root: ROOT, match: /\.ts$/ });
}

/** The text of a call's first argument (up to its first top-level comma). */
function firstArgument(text: string, open: number): string {
  let depth = 0;
  for (let i = open; i < text.length; i++) {
    const c = text[i];
    if (c === '(' || c === '[' || c === '{') depth++;
    else if (c === ')' || c === ']' || c === '}') {
      if (depth === 0) return text.slice(open, i);
      depth--;
    } else if (c === ',' && depth === 0) return text.slice(open, i);
  }
  return text.slice(open);
}

/** Identifiers passed as the reducer of `.submit(R, …)` or `submitAs(ctx, who, R, …)`. */
function submittedHandles(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(/\.submit\(/g)) out.push(firstArgument(text, m.index + m[0].length));
  for (const m of text.matchAll(/\bsubmitAs\(/g)) {
    let rest = m.index + m[0].length;
    for (let skip = 0; skip < 2; skip++) rest += firstArgument(text, rest).length + 1;
    out.push(firstArgument(text, rest));
  }
  return out.flatMap((arg) => [...arg.matchAll(/\b[a-z][a-z0-9_]*\b/g)].map((x) => x[0]));
}

const app = sources(APP_DIRS);

test('no application module submits a reducer by its name', () => {
  const byName = app.flatMap(({ file, text }) =>
    [...text.matchAll(/\.submit\(\s*['"`]|\bsubmitNamed\(/g)].map((m) => `${file}:${text.slice(0, m.index).split('\n').length}`),
  );
  assert.deepEqual(byName, [], 'submit by typed handle (schema/reducers.ts), not by string');
});

test('every reducer handle is submitted by the application; the rest of the schema is retired', () => {
  const used = new Set(app.flatMap(({ text }) => submittedHandles(text)));
  const names = Object.keys(handles);
  assert.ok(names.length > 30, 'the handles are read');
  const unsubmitted = names.filter((n) => !used.has(n));
  assert.deepEqual(unsubmitted, [], 'a reducer nothing submits is removed, or retired when older logs hold it');
  const inSchema = schema.reducers.map((r) => r.name).sort();
  const declared = [...names, ...retired.map((r) => r.name)].sort();
  assert.deepEqual(inSchema, declared, "the schema's reducers are the handles plus the retired ones");
  for (const r of retired) assert.ok(!names.includes(r.name), `${r.name} is retired: no handle is exported for it`);
});

test("the store refuses a handle that is not its schema's own, and checks a handle's args", async (t) => {
  const store = openTestStore();
  t.after(() => store.close());
  const impostor = reducerFactory<SwitchboardTables>()('tenant_created', z.object({ id: z.string() }), () => undefined);
  await assert.rejects(store.submit(impostor, { id: 'acme' }, T), (err: Error & { code?: string }) => err.code === 'unknown_reducer');
  // A call that compiles only with a cast: the store still validates at run time.
  await assert.rejects(store.submit(handles.tenant_created, { id: 'acme' } as { id: string; name: string }, T), (err: Error & { code?: string }) => err.code === 'invalid_args');
  const ok = await store.submit(handles.tenant_created, { id: 'acme', name: 'Acme' }, T);
  assert.ok(ok.outcome.ok);
  assert.equal(store.read('acme').tenants.get('acme')?.name, 'Acme');
});
