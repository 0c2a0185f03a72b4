/**
 * `switchboard campaigns create|list|show|pause|resume|cancel` and `switchboard dnc add|remove|list`: the campaign
 * routes of a running gateway (api/routes/campaigns.ts), through the API client (cli/remote.ts: `--url`/`--token`
 * or SWITCHBOARD_URL/SWITCHBOARD_TOKEN). `campaigns create --csv FILE` reads the CSV here (a `number` column,
 * optional `timezone` and `name`: campaigns/csv.ts) and sends its numbers; `--numbers a,b,c` lists them inline.
 */
import fs from 'node:fs';
import type { Command } from 'commander';
import { CsvError, parseCampaignCsv, type CsvNumber } from '../campaigns/csv.ts';
import { jsonLines } from './format.ts';
import { connect, UsageError, type RemoteFlags } from './remote.ts';

interface CampaignView {
  id: string;
  name: string;
  state: string;
  from: string;
  calls_per_second: number;
  max_concurrent: number;
  window: { start: string; end: string };
  timezone: string;
  progress: { total: number; finished: number; answered: number; dnc: number; attempts: number; live: number };
  numbers?: Array<{ number: string; state: string; attempts: number; last_outcome: string | null }>;
}

const flags = (cmd: Command): RemoteFlags => cmd.optsWithGlobals<RemoteFlags>();
const print = (text: string): void => void (text.length > 0 && process.stdout.write(`${text}\n`));

function line(c: CampaignView): string {
  const p = c.progress;
  return `${c.id}  ${c.state.padEnd(9)}  ${p.finished}/${p.total} finished (${p.answered} answered, ${p.dnc} dnc)  ${p.live} live  ${c.calls_per_second}/s ≤${c.max_concurrent}  ${c.window.start}-${c.window.end} ${c.timezone}  from ${c.from}${c.name ? `  ${c.name}` : ''}`;
}

function numbersOf(opts: { csv?: string; numbers?: string }): CsvNumber[] {
  if ((opts.csv === undefined) === (opts.numbers === undefined)) throw new UsageError('campaigns create: pass either --csv FILE or --numbers N1,N2,…');
  if (opts.numbers !== undefined) return opts.numbers.split(',').map((n) => n.trim()).filter(Boolean).map((number) => ({ number, name: null, timezone: null }));
  let text: string;
  try {
    text = fs.readFileSync(opts.csv!, 'utf8');
  } catch (err) {
    throw new UsageError(`--csv: cannot read ${opts.csv}: ${(err as Error).message}`);
  }
  try {
    return parseCampaignCsv(text);
  } catch (err) {
    if (err instanceof CsvError) throw new UsageError(`--csv ${opts.csv}: ${err.message}`);
    throw err;
  }
}

interface CreateOptions {
  from: string;
  csv?: string;
  numbers?: string;
  agent?: string;
  name?: string;
  window?: string;
  timezone?: string;
  maxConcurrent?: string;
  cps?: string;
  maxAttempts?: string;
  retryBackoffS?: string;
  json?: boolean;
}

export function registerCampaignCommands(program: Command): void {
  const campaigns = program.command('campaigns').description('paced outbound campaigns (needs a running gateway)');
  campaigns
    .command('create')
    .requiredOption('--from <number>', 'one of your numbers: the caller ID, its provider sets the default pace')
    .option('--csv <file>', 'a CSV with a `number` column (optional `timezone`, `name`)')
    .option('--numbers <list>', 'comma-separated numbers or sip: URIs')
    .option('--agent <name>', "the agent (default: the from-number's)")
    .option('--name <text>', 'a name for the campaign')
    .option('--window <HH:MM-HH:MM>', "calling window in the callee's time zone (default 00:00-24:00)")
    .option('--timezone <zone>', 'the callee zone when the CSV gives none (default UTC)')
    .option('--max-concurrent <n>', 'live calls at most (default 10)')
    .option('--cps <n>', "calls per second (default: the provider's documented limit)")
    .option('--max-attempts <n>', 'dials per number, retries of busy / no answer included (default 3)')
    .option('--retry-backoff-s <s>', 'first retry after this many seconds, doubling (default 300)')
    .option('--json', 'print the campaign as JSON')
    .description('creates a campaign and starts it')
    .action(async (opts: CreateOptions, cmd: Command) => {
      const num = (v: string | undefined, name: string): number | undefined => {
        if (v === undefined) return undefined;
        const n = Number(v);
        if (!Number.isFinite(n) || n < 0) throw new UsageError(`${name}: not a number: ${v}`);
        return n;
      };
      const body = {
        from: opts.from,
        numbers: numbersOf(opts),
        ...(opts.agent !== undefined ? { agent: opts.agent } : {}),
        ...(opts.name !== undefined ? { name: opts.name } : {}),
        ...(opts.window !== undefined ? { window: opts.window } : {}),
        ...(opts.timezone !== undefined ? { timezone: opts.timezone } : {}),
        max_concurrent: num(opts.maxConcurrent, '--max-concurrent'),
        calls_per_second: num(opts.cps, '--cps'),
        max_attempts: num(opts.maxAttempts, '--max-attempts'),
        retry_backoff_ms: opts.retryBackoffS === undefined ? undefined : Math.round(num(opts.retryBackoffS, '--retry-backoff-s')! * 1000),
      };
      const c = await connect('campaigns create', flags(cmd)).request<CampaignView>('POST', '/v1/campaigns', { body: JSON.parse(JSON.stringify(body)) });
      print(opts.json ? JSON.stringify(c, null, 2) : line(c));
    });
  campaigns
    .command('list')
    .option('--json', 'one JSON object per line')
    .description("your tenant's campaigns, newest first")
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const r = await connect('campaigns list', flags(cmd)).request<{ campaigns: CampaignView[] }>('GET', '/v1/campaigns');
      print(opts.json ? jsonLines(r.campaigns) : r.campaigns.map(line).join('\n'));
    });
  campaigns
    .command('show')
    .argument('<id>', 'the campaign id')
    .option('--json', 'the whole answer as JSON')
    .description('one campaign: its progress and every number with its state')
    .action(async (id: string, opts: { json?: boolean }, cmd: Command) => {
      const c = await connect('campaigns show', flags(cmd)).request<CampaignView>('GET', `/v1/campaigns/${encodeURIComponent(id)}`);
      if (opts.json) return print(JSON.stringify(c, null, 2));
      print([line(c), ...(c.numbers ?? []).map((n) => `  ${n.number}  ${n.state}  attempts ${n.attempts}${n.last_outcome ? `  ${n.last_outcome}` : ''}`)].join('\n'));
    });
  for (const action of ['pause', 'resume', 'cancel'] as const) {
    campaigns
      .command(action)
      .argument('<id>', 'the campaign id')
      .description(action === 'cancel' ? 'numbers not yet called are cancelled; live calls go on to their end' : `${action}s placing new calls`)
      .action(async (id: string, _opts: unknown, cmd: Command) => {
        const c = await connect(`campaigns ${action}`, flags(cmd)).request<CampaignView>('POST', `/v1/campaigns/${encodeURIComponent(id)}/${action}`);
        print(line(c));
      });
  }

  const dnc = program.command('dnc').description("your tenant's do-not-call list: campaigns never dial a number on it (needs a running gateway)");
  dnc
    .command('add')
    .argument('<number>', 'E.164, or a SIP URI (listed by its user part)')
    .option('--reason <text>', 'why (kept with the entry)')
    .action(async (number: string, opts: { reason?: string }, cmd: Command) => {
      const r = await connect('dnc add', flags(cmd)).request<{ number: string }>('POST', '/v1/dnc', { body: { number, ...(opts.reason !== undefined ? { reason: opts.reason } : {}) } });
      print(`${r.number} added to the do-not-call list`);
    });
  dnc
    .command('remove')
    .argument('<number>', 'the number to take off the list')
    .action(async (number: string, _opts: unknown, cmd: Command) => {
      const r = await connect('dnc remove', flags(cmd)).request<{ number: string }>('DELETE', `/v1/dnc/${encodeURIComponent(number)}`);
      print(`${r.number} removed from the do-not-call list`);
    });
  dnc
    .command('list')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const r = await connect('dnc list', flags(cmd)).request<{ dnc: Array<{ number: string; reason: string | null; added_at: string }> }>('GET', '/v1/dnc');
      print(opts.json ? jsonLines(r.dnc) : r.dnc.map((d) => `${d.number}  ${d.added_at}${d.reason ? `  ${d.reason}` : ''}`).join('\n'));
    });
}
