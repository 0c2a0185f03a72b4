/**
 * `npm run bench [-- FILTER]`
 *
 * Runs every `bench/*.bench.ts` in its own child process (`node --expose-gc
 * --import tsx FILE`) so one benchmark's heap and caches do not skew the next,
 * collects the `@@result` lines they print, prints a table and writes
 * `bench/results.json`.
 *
 * FILTER is a substring of a file name (runs that file) or, when no file name
 * matches, of figure names (every file runs with BENCH_FILTER set, so it can
 * skip sections without a matching figure; only matching figures are kept).
 *
 * Exit code 0 even when targets are not met: this is a report, not a test.
 * Non-zero only when a bench file crashed.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import readline from 'node:readline';
import { fileURLToPath } from 'node:url';
import { fmt, parseResultLine, toRow, type BenchResult, type ResultRow } from './lib.ts';

const benchDir = path.dirname(fileURLToPath(import.meta.url));
const root = path.dirname(benchDir);
const filter = process.argv[2] ?? '';

interface FileRun {
  file: string;
  results: BenchResult[];
  ok: boolean;
  error: string | null;
  seconds: number;
}

function runFile(file: string, figureFilter: string | null): Promise<FileRun> {
  const name = path.basename(file, '.bench.ts');
  const started = performance.now();
  return new Promise((resolve) => {
    const env = { ...process.env };
    if (figureFilter) env.BENCH_FILTER = figureFilter;
    else delete env.BENCH_FILTER;
    const child = spawn(process.execPath, ['--expose-gc', '--import', 'tsx', file], {
      cwd: root,
      env,
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    const results: BenchResult[] = [];
    let parseError: string | null = null;
    const lines = readline.createInterface({ input: child.stdout });
    lines.on('line', (line) => {
      try {
        const r = parseResultLine(line);
        if (r) {
          results.push(r);
          return;
        }
      } catch (err) {
        parseError ??= (err as Error).message;
      }
      process.stdout.write(`[${name}] ${line}\n`);
    });
    let spawnError: string | null = null;
    child.on('error', (err) => {
      spawnError = err.message;
    });
    child.on('close', (code, signal) => {
      const seconds = (performance.now() - started) / 1000;
      const error =
        spawnError ??
        (signal ? `killed by ${signal}` : code !== 0 ? `exited with code ${String(code)}` : parseError ? `bad output: ${parseError}` : null);
      resolve({ file, results, ok: error === null, error, seconds });
    });
  });
}

function pad(s: string, n: number, right = false): string {
  return right ? s.padStart(n) : s.padEnd(n);
}

function printTable(rows: ResultRow[]): void {
  const header = ['figure', 'value', 'unit', 'baseline', 'ratio', 'target', 'met'];
  const body = rows.map((r) => [
    r.figure,
    fmt(r.value),
    r.unit,
    r.baseline === null ? '-' : fmt(r.baseline),
    r.ratio === null ? '-' : `${r.ratio.toFixed(2)}x`,
    r.target ?? '-',
    r.met === null ? '-' : r.met ? 'yes' : 'NO',
  ]);
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((b) => (b[i] ?? '').length)));
  const numeric = new Set([1, 3, 4]);
  const line = (cells: string[]): string => cells.map((c, i) => pad(c, widths[i] ?? 0, numeric.has(i))).join('  ');
  process.stdout.write(`${line(header)}\n${widths.map((w) => '-'.repeat(w)).join('  ')}\n`);
  for (const b of body) process.stdout.write(`${line(b)}\n`);
}

async function main(): Promise<number> {
  const all = fs
    .readdirSync(benchDir)
    .filter((f) => f.endsWith('.bench.ts'))
    .sort()
    .map((f) => path.join(benchDir, f));
  if (all.length === 0) {
    process.stderr.write('no bench/*.bench.ts files found\n');
    return 1;
  }
  const byName = filter ? all.filter((f) => path.basename(f).includes(filter)) : all;
  const figureFilter = filter && byName.length === 0 ? filter : null;
  const files = figureFilter ? all : byName;

  const load = os.loadavg();
  const cpus = os.cpus().length;
  process.stdout.write(
    `bench: ${files.length} file(s)${filter ? `, filter ${JSON.stringify(filter)}${figureFilter ? ' (figures)' : ' (files)'}` : ''}; ` +
      `node ${process.version}, ${cpus} CPU(s), load ${load.map((l) => l.toFixed(2)).join(' ')}\n`,
  );
  if ((load[0] ?? 0) > cpus * 0.5) {
    process.stdout.write(`warning: the machine is busy (1-min load ${(load[0] ?? 0).toFixed(2)} on ${cpus} CPUs): figures will be noisy\n`);
  }

  const runs: FileRun[] = [];
  for (const file of files) {
    process.stdout.write(`\n== ${path.relative(root, file)}\n`);
    const run = await runFile(file, figureFilter);
    runs.push(run);
    process.stdout.write(
      `== ${path.basename(file)}: ${run.ok ? 'done' : `FAILED (${run.error ?? ''})`} in ${run.seconds.toFixed(1)} s, ${run.results.length} figure(s)\n`,
    );
  }

  const results = runs.flatMap((r) => r.results).filter((r) => !figureFilter || r.figure.includes(figureFilter));
  const rows = results.map(toRow);
  process.stdout.write('\n');
  if (rows.length > 0) printTable(rows);
  else process.stdout.write('no figures\n');

  const notes = results.filter((r) => r.note);
  if (notes.length > 0) {
    process.stdout.write('\n');
    for (const r of notes) process.stdout.write(`note: ${r.figure}: ${r.note ?? ''}\n`);
  }

  const out = path.join(benchDir, 'results.json');
  fs.writeFileSync(out, `${JSON.stringify(rows, null, 2)}\n`);
  const met = rows.filter((r) => r.met === true).length;
  const missed = rows.filter((r) => r.met === false).length;
  process.stdout.write(`\ntargets: ${met} met, ${missed} not met; wrote ${path.relative(root, out)}\n`);

  const failed = runs.filter((r) => !r.ok);
  for (const f of failed) process.stderr.write(`bench ${path.basename(f.file)} crashed: ${f.error ?? ''}\n`);
  return failed.length > 0 ? 1 : 0;
}

process.exitCode = await main();
