/**
 * Import boundaries between the layers (ARCHITECTURE §2), checked on the source text of every module outside
 * test/ and bench/ (which may reach into anything):
 *
 *  1. Only ingress/<provider>/, the adapter list (ingress/adapters.ts) and the adapters' settings for the
 *     configuration (ingress/settings.ts) import from ingress/<provider>/: the
 *     rest of the gateway knows an adapter through the port (ingress/port.ts).
 *  2. ingress/ imports neither api/ nor cli/ (both sit above it; what they share with it lives in http/).
 *  3. The core — bridge/, campaigns/, media/, recording/, consent/, agents/, speech/, store/, http/ — holds no provider name
 *     as a string literal ('twilio', 'vonage', 'sip', 'webrtc'): it never branches on one. (schema/ may list
 *     them as data; api/ and cli/ speak to users about providers and sip: URIs, so they are not checked.)
 *  4. Call facts (`call_*` reducers) are submitted only from bridge/ (call control, bridge/call-control.ts).
 *
 *   tsx scripts/check-boundaries.ts [ROOT]   (exit 1 and one line per violation)
 */
import fs from 'node:fs';
import path from 'node:path';
import { sourceFiles } from './sources.ts';

export interface Violation {
  file: string;
  line: number;
  message: string;
}

const SKIP = new Set(['node_modules', 'test', 'bench', 'data', 'scratch', 'tmp-scratch', '.git', 'phone', 'dist']);
const CORE = ['bridge', 'campaigns', 'media', 'recording', 'consent', 'agents', 'speech', 'store', 'http'];
const PROVIDER_NAMES = /(['"`])(twilio|vonage|sip|webrtc)\1/;
const IMPORT = /(?:^|\s)(?:import|export)\s[^'"`;]*?from\s*['"]([^'"]+)['"]|import\(\s*['"]([^'"]+)['"]\s*\)/g;
const CALL_FACT = /\bsubmit\(\s*['"]?(call_[a-z_]+)/;

function files(root: string): string[] {
  return sourceFiles(['.'], { root, skip: SKIP, match: /(?<!\.d)\.(ts|mts|mjs)$/ }).map((f) => f.abs);
}

/** `ingress/<p>` for a path inside a provider folder, else null. */
function providerDir(rel: string): string | null {
  const m = /^ingress\/([^/]+)\//.exec(rel);
  return m ? `ingress/${m[1]}` : null;
}

/** Strips comments, keeping line breaks (so line numbers stay right). */
function code(text: string): string {
  return text.replace(/\/\*[\s\S]*?\*\//g, (c) => c.replace(/[^\n]/g, ' ')).replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

export function checkBoundaries(root: string): Violation[] {
  const out: Violation[] = [];
  for (const file of files(root)) {
    const rel = path.relative(root, file).split(path.sep).join('/');
    const src = code(fs.readFileSync(file, 'utf8'));
    const lineOf = (index: number): number => src.slice(0, index).split('\n').length;
    const top = rel.split('/')[0]!;
    for (const m of src.matchAll(IMPORT)) {
      const spec = m[1] ?? m[2]!;
      if (!spec.startsWith('.')) continue;
      const target = path.relative(root, path.resolve(path.dirname(file), spec)).split(path.sep).join('/');
      const targetProvider = providerDir(target);
      if (targetProvider && providerDir(rel) !== targetProvider && rel !== 'ingress/adapters.ts' && rel !== 'ingress/settings.ts') {
        out.push({ file: rel, line: lineOf(m.index), message: `imports ${target}: only ${targetProvider}/ and ingress/adapters.ts may import an adapter (use ingress/port.ts)` });
      }
      if (top === 'ingress' && /^(api|cli)\//.test(target)) {
        out.push({ file: rel, line: lineOf(m.index), message: `imports ${target}: ingress/ must not import api/ or cli/ (shared pieces live in http/)` });
      }
    }
    if (CORE.includes(top)) {
      src.split('\n').forEach((line, i) => {
        const m = PROVIDER_NAMES.exec(line);
        if (m) out.push({ file: rel, line: i + 1, message: `provider name ${m[0]} in the core: only ingress/<provider>/ knows provider names` });
      });
    }
    if (top !== 'bridge' && top !== 'schema') {
      src.split('\n').forEach((line, i) => {
        const m = CALL_FACT.exec(line);
        if (m) out.push({ file: rel, line: i + 1, message: `submits ${m[1]}: call facts are written only in bridge/ (call control)` });
      });
    }
  }
  return out;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = path.resolve(process.argv[2] ?? path.join(import.meta.dirname, '..'));
  const found = checkBoundaries(root);
  for (const v of found) console.log(`${v.file}:${v.line}: ${v.message}`);
  if (found.length > 0) process.exit(1);
  console.log('import boundaries: ok');
}
