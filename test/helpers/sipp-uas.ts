/**
 * sipp as the called party (UAS) of an outbound call: listens on a given
 * address and port (tests run it inside a private network namespace, where
 * fixed ports are safe), runs one call of a scenario from
 * test/fixtures/sip/scenarios, and reports its exit code and message trace.
 */
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { parseTrace, SCENARIOS, type SippRun } from './sipp.ts';
import { tmpDir } from './tmp.ts';

export interface SippUas {
  /** Resolves when sipp exits (after its one call, or its timeout). */
  done: Promise<SippRun>;
  kill(): void;
}

export async function startSippUas(opts: { scenario: string; ip: string; port: number; timeoutS?: number; transport?: 'u1' | 't1'; calls?: number }): Promise<SippUas> {
  const cwd = tmpDir('sb-sipp-uas-');
  fs.symlinkSync('/usr/share/sip-tester', path.join(cwd, 'pcap'));
  const args = [
    '-sf', path.join(SCENARIOS, opts.scenario),
    '-i', opts.ip,
    '-p', String(opts.port),
    '-mi', opts.ip,
    '-t', opts.transport ?? 'u1',
    '-m', String(opts.calls ?? 1),
    '-nostdin',
    '-trace_msg',
    '-message_file', path.join(cwd, 'messages.log'),
    '-timeout', `${opts.timeoutS ?? 60}s`,
    '-timeout_error',
  ];
  const child = spawn('sipp', args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  let output = '';
  child.stdout.on('data', (d: Buffer) => (output += d.toString()));
  child.stderr.on('data', (d: Buffer) => (output += d.toString()));
  const done = new Promise<SippRun>((resolve) =>
    child.on('close', (code) => {
      const file = path.join(cwd, 'messages.log');
      resolve({ code, output: output.slice(-4000), messages: parseTrace(fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '') });
    }),
  );
  // sipp binds within a few ms; an INVITE sent before that is retransmitted (Timer A) anyway.
  await new Promise((r) => setTimeout(r, 300));
  return { done, kill: () => child.kill('SIGTERM') };
}
