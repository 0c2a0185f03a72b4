/**
 * The README's "Layout" section is a newcomer's map of the repository: it names every top-level folder the
 * repository tracks and every ingress adapter folder, so a folder added without a word there fails here.
 */
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { test } from 'node:test';

const ROOT = path.join(import.meta.dirname, '..', '..', '..');

test("the README's Layout names every tracked top-level folder and every ingress adapter", () => {
  const readme = readFileSync(path.join(ROOT, 'README.md'), 'utf8');
  const layout = /^## Layout\n([\s\S]*?)(?=^## |(?![\s\S]))/m.exec(readme)?.[1] ?? '';
  assert.ok(layout.length > 200, 'README.md has a "## Layout" section');
  const tracked = execFileSync('git', ['ls-files'], { cwd: ROOT, encoding: 'utf8' }).split('\n');
  const folders = new Set<string>();
  for (const file of tracked) {
    const parts = file.split('/');
    if (parts.length > 1 && !parts[0]!.startsWith('.')) folders.add(`${parts[0]}/`);
    if (parts[0] === 'ingress' && parts.length > 2) folders.add(`ingress/${parts[1]}/`);
  }
  assert.ok(folders.has('store/') && folders.has('ingress/sip/'), [...folders].join(' '));
  const missing = [...folders].filter((f) => !layout.includes(`\`${f}\``)).sort();
  assert.deepEqual(missing, [], 'each folder named in the Layout as `folder/`');
});
