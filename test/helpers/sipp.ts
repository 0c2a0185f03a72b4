/**
 * Runs sipp (package sip-tester) as a real SIP peer against a gateway, in a
 * scratch directory where `pcap` links to sipp's bundled captures, and reads
 * its message trace back (timestamps of what it sent and received).
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { tmpDir } from './tmp.ts';

export const SCENARIOS = path.join(import.meta.dirname, '..', 'fixtures', 'sip', 'scenarios');

export interface SippRun {
  code: number | null;
  output: string;
  /** Every message in the trace: when, direction and its first line (plus the whole text). */
  messages: Array<{ at: number; dir: 'sent' | 'received'; first: string; text: string }>;
}

/** `scenario` is a built-in name (`uac_pcap`) or a file in test/fixtures/sip/scenarios; `local`: sipp's address (127.0.0.1). */
export async function runSipp(opts: { scenario: string; port: number; service: string; transport?: 'u1' | 't1'; timeoutS?: number; extra?: string[]; local?: string }): Promise<SippRun> {
  const cwd = tmpDir('sb-sipp-');
  fs.symlinkSync('/usr/share/sip-tester', path.join(cwd, 'pcap'));
  const file = path.join(SCENARIOS, opts.scenario);
  const scenarioArgs = fs.existsSync(file) ? ['-sf', file] : ['-sn', opts.scenario];
  const args = [
    ...scenarioArgs,
    `127.0.0.1:${opts.port}`,
    '-s', opts.service,
    '-i', opts.local ?? '127.0.0.1',
    '-p', '0',
    '-t', opts.transport ?? 'u1',
    '-m', '1',
    '-nostdin',
    '-trace_msg',
    '-message_file', path.join(cwd, 'messages.log'),
    '-timeout', `${opts.timeoutS ?? 60}s`,
    '-timeout_error',
    ...(opts.extra ?? []),
  ];
  const child = spawn('sipp', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const code = await new Promise<number | null>((resolve) => child.on('close', (c) => resolve(c)));
  const trace = fs.existsSync(path.join(cwd, 'messages.log')) ? fs.readFileSync(path.join(cwd, 'messages.log'), 'utf8') : '';
  return { code, output: output.slice(-4000), messages: parseTrace(trace) };
}

/** The messages of a `-trace_msg` file. */
export function parseTrace(trace: string): SippRun['messages'] {
  const out: SippRun['messages'] = [];
  const re = /-{10,} (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d+)\n(?:UDP|TCP) message (sent|received)[^\n]*\n\n([^]*?)(?=\n-{10,} \d{4}-|$)/g;
  for (const m of trace.matchAll(re)) {
    const [date, frac] = (m[1] as string).split('.') as [string, string];
    const at = new Date(`${date.replace(' ', 'T')}`).getTime() + Number(`0.${frac}`) * 1000;
    const text = (m[3] as string).trim();
    out.push({ at, dir: m[2] as 'sent' | 'received', first: text.split(/\r?\n/)[0] ?? '', text });
  }
  return out;
}
