/**
 * Determinism lint for reducers: parses every file under schema/ with the
 * TypeScript compiler and refuses what would make a replay differ — wall-clock
 * time, randomness, timers, I/O, process state, module-level mutable state, and
 * imports other than zod, the store's definitions and schema/ itself.
 *
 *   tsx scripts/check-determinism.ts [DIR]   (exit 1 and one line per violation)
 */
import fs from 'node:fs';
import path from 'node:path';
import { sourceFiles } from './sources.ts';
import ts from 'typescript';

export interface Violation {
  file: string;
  line: number;
  message: string;
}

const FORBIDDEN_GLOBALS = new Set([
  'Date', 'performance', 'process', 'setTimeout', 'setInterval', 'setImmediate', 'queueMicrotask',
  'fetch', 'require', 'globalThis', 'eval', 'Function', 'crypto', 'WebSocket', 'XMLHttpRequest', 'Intl',
]);

function allowedImport(spec: string, fromFile: string, root: string): boolean {
  if (spec === 'zod') return true;
  if (!spec.startsWith('.')) return false;
  const target = path.resolve(path.dirname(fromFile), spec);
  const storeIndex = path.resolve(root, '..', 'store', 'index.ts');
  return target === storeIndex || target.startsWith(root + path.sep);
}

export function checkFile(file: string, root: string): Violation[] {
  const text = fs.readFileSync(file, 'utf8');
  const sf = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true, ts.ScriptKind.TS);
  const out: Violation[] = [];
  const report = (node: ts.Node, message: string): void => {
    out.push({ file, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, message });
  };
  for (const stmt of sf.statements) {
    if (ts.isVariableStatement(stmt) && !(stmt.declarationList.flags & ts.NodeFlags.Const)) {
      report(stmt, 'module-level let/var: reducers must not keep state outside the store');
    }
  }
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      const spec = node.moduleSpecifier.text;
      if (!allowedImport(spec, file, root)) report(node, `import of "${spec}": schema/ may import only zod, ../store/index.ts and schema/`);
    }
    if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword) report(node, 'dynamic import()');
    if (ts.isIdentifier(node) && FORBIDDEN_GLOBALS.has(node.text)) {
      const parent = node.parent;
      const isPropertyName =
        (ts.isPropertyAccessExpression(parent) && parent.name === node) ||
        (ts.isPropertyAssignment(parent) && parent.name === node) ||
        (ts.isPropertySignature(parent) && parent.name === node) ||
        ts.isImportSpecifier(parent);
      if (!isPropertyName) report(node, `${node.text}: not deterministic — use ctx.now / ctx.newId / ctx.seq`);
    }
    if (ts.isPropertyAccessExpression(node) && ts.isIdentifier(node.expression) && node.expression.text === 'Math' && node.name.text === 'random') {
      report(node, 'Math.random: not deterministic — use ctx.newId');
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

export function checkDeterminism(root: string): Violation[] {
  const abs = path.resolve(root);
  const files = sourceFiles(['.'], { root: abs, match: /\.(ts|mts|js|mjs)$/ }).map((f) => f.abs);
  return files.flatMap((f) => checkFile(f, abs));
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const root = process.argv[2] ?? path.join(import.meta.dirname, '..', 'schema');
  const violations = checkDeterminism(root);
  for (const v of violations) console.log(`${path.relative(process.cwd(), v.file)}:${v.line}: ${v.message}`);
  console.log(violations.length === 0 ? 'determinism: OK' : `determinism: ${violations.length} violation(s)`);
  process.exitCode = violations.length === 0 ? 0 : 1;
}
