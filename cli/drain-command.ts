/**
 * `switchboard drain`: asks a running node (--url / SWITCHBOARD_URL, an operator admin's token) to drain
 * (`POST /v1/cluster/drain`, bridge/drain.ts): it refuses new calls busy from now on, keeps its live calls until
 * they end (at most SWITCHBOARD_DRAIN_TIMEOUT_MS), then exits 0. The same as sending the node SIGTERM, for a node
 * one reaches only over HTTP. Prints the node, its live calls and the time limit; exits at once (it does not wait).
 */
import type { Command } from 'commander';
import { connect, type RemoteFlags } from './remote.ts';

interface DrainAnswer {
  node: string;
  started: boolean;
  live_calls: number;
  timeout_ms: number;
  drain_until: string | null;
}

export function registerDrainCommand(program: Command): void {
  program
    .command('drain')
    .description('drain the running node at --url: new calls refused busy, live calls go on until they end (or SWITCHBOARD_DRAIN_TIMEOUT_MS), then it exits 0 (as SIGTERM does)')
    .option('--json', 'print the answer as JSON')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const d = await connect('drain', cmd.optsWithGlobals<RemoteFlags>()).request<DrainAnswer>('POST', '/v1/cluster/drain');
      if (opts.json) console.log(JSON.stringify(d, null, 2));
      else {
        const until = d.drain_until === null ? `${d.timeout_ms} ms` : d.drain_until;
        console.log(`node ${d.node}: ${d.started ? 'draining' : 'already draining'}; ${d.live_calls} live call(s) continue until they end (limit ${until}); new calls are refused busy; it exits once they have ended`);
      }
    });
}
