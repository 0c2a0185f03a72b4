/**
 * The project's source walker, shared by the checks that read the code as text: the boundary and determinism
 * lints (`scripts/check-*.ts`) and the project tests under `test/unit/project/` (config door, reference doc,
 * store door, typed reducers). One definition of "a source file" for all of them: TypeScript and ES modules,
 * declaration files excluded, dot-folders, `node_modules` and build output never entered.
 */
import { readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';

/** The repository root (this file lives in `scripts/`). */
export const ROOT = path.join(import.meta.dirname, '..');

/** A source file: its path relative to the root it was found under, its absolute path, and (lazily) its text. */
export interface SourceFile {
  /** Path relative to `root` with `/` separators, e.g. `ingress/sip/app.ts`. */
  file: string;
  abs: string;
  text: string;
}

export interface SourceOptions {
  /** Where relative paths start; default the repository root. */
  root?: string;
  /** Folder names never entered (besides dot-folders and `node_modules`, which never are). */
  skip?: Iterable<string>;
  /** Which file names count; default `.ts`, `.mts`, `.js`, `.mjs` and not `.d.ts`. */
  match?: RegExp;
}

const DEFAULT_MATCH = /(?<!\.d)\.(?:ts|mts|js|mjs)$/;

/** Every source file under `dirs` (relative to `root`), in a stable order. A missing folder is simply empty. */
export function sourceFiles(dirs: readonly string[], options: SourceOptions = {}): SourceFile[] {
  const root = options.root ?? ROOT;
  const skip = new Set(['node_modules', ...(options.skip ?? [])]);
  const match = options.match ?? DEFAULT_MATCH;
  const out: SourceFile[] = [];
  const walk = (dir: string): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const e of entries.sort((a, b) => a.name.localeCompare(b.name))) {
      if (e.name.startsWith('.') || skip.has(e.name)) continue;
      const p = path.join(dir, e.name);
      if (e.isDirectory()) walk(p);
      else if (match.test(e.name)) {
        let text: string | undefined;
        out.push({
          file: path.relative(root, p).split(path.sep).join('/'),
          abs: p,
          get text() {
            text ??= readFileSync(p, 'utf8');
            return text;
          },
        });
      }
    }
  };
  for (const d of dirs) walk(path.join(root, d));
  return out;
}
