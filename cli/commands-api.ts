/**
 * The commands that talk to a running gateway through its HTTP API
 * (`users add|list`, `numbers list|fallback`, `agents [pause|resume]`, `logs`, `login`; `users token`
 * is the offline exception, cli/users-token.ts), and the API
 * halves of `calls`, `call` and `numbers add`, which otherwise read a stopped
 * gateway's data dir (cli/main.ts decides with `viaApi`).
 *
 * The gateway comes from the global `--url`/`--token` options or
 * SWITCHBOARD_URL/SWITCHBOARD_TOKEN (cli/remote.ts `connect`). Secrets
 * (passwords) are read from stdin, never from the command line.
 */
import type { Command } from 'commander';
import { formatAccessLog, formatAgents, formatCallDetail, formatCalls, formatNumbers, formatTimeline, formatUsers, jsonLines } from './format.ts';
import { connect, gatewayUrl, UsageError, type RemoteFlags } from './remote.ts';
import { mintTokenOffline, type UsersTokenOptions } from './users-token.ts';

const flags = (cmd: Command): RemoteFlags => cmd.optsWithGlobals<RemoteFlags>();
/** `--json` of a subcommand whose parent takes `--json` too (commander hands it to the parent). */
const wantsJson = (opts: { json?: boolean }, cmd: Command): boolean => opts.json === true || cmd.optsWithGlobals<{ json?: boolean }>().json === true;

/** The agent's own name, for a deploy without --name; a module that cannot be loaded or names nothing is a usage error. */
async function declaredName(file: string, code: string, read: (code: string) => Promise<string | null>): Promise<string> {
  let name: string | null;
  try {
    name = await read(code);
  } catch (err) {
    throw new UsageError(`cannot load ${file} to read its name (${(err as Error).message}): pass --name`);
  }
  if (name === null) throw new UsageError(`${file} does not export default defineAgent({ name, … }): pass --name`);
  return name;
}

function print(text: string): void {
  if (text.length > 0) process.stdout.write(`${text}\n`);
}

const pretty = (v: unknown): string => JSON.stringify(v, null, 2);

/**
 * Whether `calls`, `call` and `numbers add` use the API: yes when --url or
 * SWITCHBOARD_URL is set, unless `--data-dir` names a stopped gateway's data
 * explicitly (`--url` and `--data-dir` together are a usage error). Offline
 * options that mean nothing to the API (`--tenant`: the token decides) are
 * refused rather than ignored.
 */
export function viaApi(cmd: Command): boolean {
  const o = cmd.optsWithGlobals<RemoteFlags & { dataDir?: string }>();
  if (o.dataDir !== undefined) {
    if (o.url !== undefined) throw new UsageError("pass either --url (a running gateway) or --data-dir (a stopped gateway's data dir), not both");
    return false;
  }
  if (gatewayUrl(o) === undefined) return false;
  if (cmd.getOptionValueSource('tenant') === 'cli') throw new UsageError("--tenant applies to offline use (--data-dir); against a gateway the token's tenant is used");
  return true;
}

/**
 * A secret from stdin: piped, everything up to EOF minus one trailing
 * newline; on a terminal, one line typed without echo after `prompt`.
 */
export async function readSecret(prompt: string): Promise<string> {
  const stdin = process.stdin;
  let value: string;
  if (!stdin.isTTY) {
    const chunks: Buffer[] = [];
    for await (const chunk of stdin) chunks.push(typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer));
    value = Buffer.concat(chunks).toString('utf8').replace(/\r?\n$/, '');
  } else {
    value = await new Promise<string>((resolve, reject) => {
      let typed = '';
      const finish = (err?: Error): void => {
        stdin.off('data', onData);
        stdin.setRawMode(false);
        stdin.pause();
        process.stderr.write('\n');
        if (err) reject(err);
        else resolve(typed);
      };
      const onData = (chunk: string): void => {
        for (const ch of chunk) {
          if (ch === '\r' || ch === '\n' || ch === '\u0004') return finish();
          if (ch === '\u0003') return finish(new UsageError('cancelled'));
          if (ch === '\u007f' || ch === '\b') typed = typed.slice(0, -1);
          else typed += ch;
        }
      };
      process.stderr.write(prompt);
      stdin.setEncoding('utf8');
      stdin.setRawMode(true);
      stdin.resume();
      stdin.on('data', onData);
    });
  }
  if (value.length === 0) throw new UsageError('no password on stdin (pipe it in, e.g. `switchboard login --email E < password-file`)');
  return value;
}

// ── API halves of the offline-capable commands ──────────────────────────────

export interface CallsOptions {
  since?: string;
  state?: string;
  agent?: string;
  q?: string;
  limit?: string;
  json?: boolean;
}

export async function callsViaApi(cmd: Command, opts: CallsOptions): Promise<void> {
  const client = connect('calls', flags(cmd));
  const { calls, more } = await client.calls({ since: opts.since, state: opts.state, agent: opts.agent, q: opts.q, limit: opts.limit });
  print(opts.json ? jsonLines(calls) : formatCalls(calls, more));
}

export async function callViaApi(cmd: Command, id: string, opts: { json?: boolean; purpose?: string }): Promise<void> {
  const detail = await connect('call', flags(cmd)).call(id, opts.purpose);
  print(opts.json ? pretty(detail) : formatCallDetail(detail));
}

export async function addNumberViaApi(cmd: Command, number: string, opts: { agent: string; consent?: string; provider?: string; json?: boolean }): Promise<void> {
  const r = await connect('numbers add', flags(cmd)).addNumber({ number, agent: opts.agent, consent_policy: opts.consent, provider: opts.provider });
  print(opts.json ? pretty(r) : `routed ${r.number} → agent ${r.agent} (consent policy ${r.consent_policy_id ?? 'tenant default'}); number id ${r.id}`);
  for (const w of r.warnings ?? []) console.error(`switchboard: warning: ${w}`);
}

export interface DialOptions {
  from?: string;
  to?: string;
  agent?: string;
  /** `--amd [default]`: true (default human) or the default named. */
  amd?: string | true;
  wait?: boolean;
  waitTimeout?: string;
  json?: boolean;
}

/**
 * `switchboard call --from N --to sip:…|+E164 [--agent A] [--amd [DEFAULT]] [--wait]`: places an outbound call (through
 * the from-number's provider) and prints its id
 * (first line). With --wait it follows the call until it is answered (exit 0) or ends unanswered (exit 1,
 * printing the end reason, e.g. sip:busy).
 */
export async function dialViaApi(cmd: Command, opts: DialOptions): Promise<void> {
  if (opts.from === undefined || opts.to === undefined) throw new UsageError('placing a call needs both --from NUMBER and --to sip:URI|+E164');
  const client = connect('call', flags(cmd));
  const started = Date.now();
  const amd = opts.amd === undefined ? {} : { amd: { enabled: true, default: opts.amd === true ? 'human' : opts.amd } };
  const r = await client.dial({ from: opts.from, to: opts.to, ...(opts.agent === undefined ? {} : { agent: opts.agent }), ...amd });
  print(opts.json ? JSON.stringify(r) : r.call_id);
  if (!opts.wait) return;
  const limitS = opts.waitTimeout === undefined ? 120 : Number(opts.waitTimeout);
  if (!(limitS > 0)) throw new UsageError(`--wait-timeout: not a number of seconds: ${opts.waitTimeout}`);
  const since = started - 60_000;
  for (;;) {
    const c = await client.callSummary(r.call_id, since);
    if (c && c.answered_at !== null) {
      print(opts.json ? JSON.stringify(c) : `answered${c.state === 'ended' ? `; ended: ${c.end_reason ?? ''}` : ` (${c.state})`}`);
      return;
    }
    if (c && c.state === 'ended') {
      print(opts.json ? JSON.stringify(c) : `failed: ${c.end_reason ?? 'ended'}`);
      process.exitCode = 1;
      return;
    }
    if (Date.now() - started > limitS * 1000) {
      print(opts.json ? JSON.stringify(c ?? null) : `still ${c?.state ?? 'ringing'} after ${limitS}s`);
      process.exitCode = 1;
      return;
    }
    await new Promise((res) => setTimeout(res, 300));
  }
}

// ── API-only commands ────────────────────────────────────────────────────────

/** Adds `users add|list`, `numbers list|fallback` (under `numbers`), `agents`, `logs` and `login`. */
export function registerApiCommands(program: Command, numbers: Command): void {
  const users = program.command('users').description('users of your tenant (add and list need a running gateway; token works on a stopped one)');
  users
    .command('add <email>')
    .description('create a user; without --password-stdin the user can only use API tokens')
    .requiredOption('--role <role>', 'admin | compliance | auditor | developer')
    .option('--password-stdin', 'read the password (at least 12 characters) from stdin')
    .option('--json', 'print the result as JSON')
    .action(async (email: string, opts: { role: string; passwordStdin?: boolean; json?: boolean }, cmd: Command) => {
      const client = connect('users add', flags(cmd));
      const password = opts.passwordStdin ? await readSecret('password: ') : undefined;
      const u = await client.addUser({ email, role: opts.role, ...(password === undefined ? {} : { password }) });
      print(opts.json ? pretty(u) : `created user ${u.email} (${u.role}); id ${u.id}${password === undefined ? '; no password: sign-in only with API tokens' : ''}`);
    });
  users
    .command('token <email>')
    .description("mint a new API token for a user on a STOPPED gateway's data dir (offline; the way back in when the admin token is lost); prints it once")
    .option('--data-dir <dir>', 'data directory (default SWITCHBOARD_DATA_DIR or ./data)')
    .option('--tenant <tenant>', 'the tenant, when the e-mail is a user in several')
    .option('--name <name>', 'the token name', 'cli-recovery')
    .option('--json', 'print token, token id and user as JSON')
    .action(async (email: string, opts: UsersTokenOptions, cmd: Command) => {
      if (cmd.optsWithGlobals<RemoteFlags>().url !== undefined) {
        throw new UsageError('users token works offline on a stopped gateway\'s data dir (--data-dir); with a running gateway an admin issues tokens with POST /v1/tokens');
      }
      await mintTokenOffline(email, opts);
    });
  users
    .command('list')
    .description('list the users of your tenant')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await connect('users list', flags(cmd)).users();
      print(opts.json ? jsonLines(rows) : formatUsers(rows));
    });

  numbers
    .command('list')
    .description('list routed numbers (needs a running gateway)')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await connect('numbers list', flags(cmd)).numbers();
      print(opts.json ? jsonLines(rows) : formatNumbers(rows));
    });

  numbers
    .command('fallback')
    .argument('<number>', 'the routed number, or `default` for the tenant default')
    .option('--agent <name>', 'calls go to this other agent')
    .option('--transfer <target>', 'calls are transferred here (SIP URI or E.164)')
    .option('--message [text]', 'the caller hears this (or the default message), then a hang-up')
    .description("where calls go while the number's agent is paused (needs a running gateway)")
    .action(async (number: string, opts: { agent?: string; transfer?: string; message?: string | boolean }, cmd: Command) => {
      const chosen = [opts.agent, opts.transfer, opts.message].filter((o) => o !== undefined).length;
      if (chosen !== 1) throw new UsageError('give one of --agent NAME, --transfer TARGET or --message [TEXT]');
      const client = connect('numbers fallback', flags(cmd));
      let numberId: string | null = null;
      if (number !== 'default') {
        const row = (await client.numbers()).find((n) => n.number === number);
        if (!row) throw new UsageError(`${number} is not routed (switchboard numbers list)`);
        numberId = row.id;
      }
      const body =
        opts.agent !== undefined ? { kind: 'agent', target: opts.agent }
        : opts.transfer !== undefined ? { kind: 'transfer', target: opts.transfer }
        : { kind: 'message', ...(typeof opts.message === 'string' ? { message: opts.message } : {}) };
      const r = await client.setFallback(numberId, body);
      const what = r.kind === 'agent' ? `agent ${r.target}` : r.kind === 'transfer' ? `transfer to ${r.target}` : `message${r.message ? ` "${r.message}"` : ' (the default)'} and hang-up`;
      print(`${number === 'default' ? 'tenant default' : number}: while its agent is paused, calls get ${what}`);
    });

  program
    .command('deploy')
    .argument('<file>', 'the agent source (TypeScript or JavaScript; bundled here with esbuild)')
    .option('--name <name>', 'the agent name numbers route to (default: the name the agent declares)')
    .option('--rollout <percent>', 'share of new calls for the new version (0–100)', '100')
    .option('--migrate', 'move live calls to the new version at their next turn')
    .option('--json', 'print the deployed version as JSON')
    .description('bundle and deploy an agent version; the previous version serves until the new one is live (needs a running gateway)')
    .action(async (file: string, opts: { name?: string; rollout: string; migrate?: boolean; json?: boolean }, cmd: Command) => {
      const client = connect('deploy', flags(cmd));
      const { bundleAgent, declaredAgentName } = await import('../agents/bundle.ts');
      let code: string;
      try {
        code = (await bundleAgent(file)).code;
      } catch (err) {
        throw new UsageError(`cannot bundle ${file}: ${(err as Error).message}`);
      }
      const name = opts.name ?? (await declaredName(file, code, declaredAgentName));
      const v = await client.deploy(name, code, { rollout: opts.rollout, migrate: opts.migrate });
      print(opts.json ? pretty(v) : `${v.name} ${v.version} is ${v.status} at ${v.rollout}%${v.migrate ? ', live calls move at their next turn' : ''} (sha256 ${v.sha256.slice(0, 12)})`);
    });

  program
    .command('rollback')
    .argument('<name>', 'the agent name')
    .description('the previous version serves again; live calls move back at their next turn (needs a running gateway)')
    .action(async (name: string, _opts: unknown, cmd: Command) => {
      const r = await connect('rollback', flags(cmd)).rollback(name);
      print(`${r.name}: rolled back from ${r.from} to ${r.to}`);
    });

  const agents = program
    .command('agents')
    .description('agents with their versions, numbers and live calls; `agents pause|resume NAME` (needs a running gateway)')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { json?: boolean }, cmd: Command) => {
      const rows = await connect('agents', flags(cmd)).agents();
      print(opts.json ? jsonLines(rows) : formatAgents(rows));
    });

  agents
    .command('pause')
    .argument('<name>', 'the agent name')
    .option('--reason <text>', 'why (kept in the pause row)')
    .option('--keep-live', 'calls live now keep the agent until they end; only new calls get the fallback')
    .option('--json', 'print the pause row as JSON')
    .description("new calls to the agent get their number's fallback; live calls get it after their current turn (unless --keep-live); its worker stops")
    .action(async (name: string, opts: { reason?: string; keepLive?: boolean; json?: boolean }, cmd: Command) => {
      const r = await connect('agents pause', flags(cmd)).pause(name, { ...(opts.reason !== undefined ? { reason: opts.reason } : {}), keep_live: opts.keepLive === true });
      print(wantsJson(opts, cmd) ? pretty(r) : `${r.agent} paused${r.keep_live ? ' (live calls keep it)' : ''}${r.reason ? `: ${r.reason}` : ''}`);
    });

  agents
    .command('resume')
    .argument('<name>', 'the agent name')
    .option('--json', 'print the closed pause row as JSON')
    .description('the agent takes calls again, its worker restarted on its live version')
    .action(async (name: string, opts: { json?: boolean }, cmd: Command) => {
      const r = await connect('agents resume', flags(cmd)).resume(name);
      print(wantsJson(opts, cmd) ? pretty(r) : `${r.agent} resumed`);
    });

  program
    .command('logs')
    .description("the access log (who retrieved what, when and why), newest first; with --call ID, that call's timeline (needs a running gateway)")
    .option('--call <id>', "show this call's timeline (an audited retrieval for roles that read content)")
    .option('--since <time>', 'access log entries at or after this time (ISO-8601 or ms since epoch)')
    .option('--limit <n>', 'at most N access log entries (default 100, max 1000)')
    .option('--purpose <text>', 'with --call: the purpose recorded in the access log')
    .option('--json', 'one JSON object per line')
    .action(async (opts: { call?: string; since?: string; limit?: string; purpose?: string; json?: boolean }, cmd: Command) => {
      const client = connect('logs', flags(cmd));
      if (opts.call !== undefined) {
        if (opts.since !== undefined || opts.limit !== undefined) throw new UsageError('--since and --limit apply to the access log, not to --call');
        const { timeline } = await client.call(opts.call, opts.purpose);
        print(opts.json ? jsonLines(timeline) : formatTimeline(timeline));
        return;
      }
      if (opts.purpose !== undefined) throw new UsageError('--purpose applies to --call');
      const rows = await client.accessLog({ since: opts.since, limit: opts.limit });
      print(opts.json ? jsonLines(rows) : formatAccessLog(rows));
    });

  program
    .command('erase [id]')
    .description("erase a call's content (or, with --subject, every ended call of a caller number): its keys destroyed, its media deleted; refused under legal hold (needs a running gateway, a user with content:erase)")
    .requiredOption('--reason <text>', 'why (e.g. the request: "GDPR Art. 17")')
    .option('--reference <ref>', "the request's reference (ticket, case number)")
    .option('--subject <number>', "every ended call of this caller number instead of one call")
    .option('--json', 'print the answer as JSON')
    .action(async (id: string | undefined, opts: { reason: string; reference?: string; subject?: string; json?: boolean }, cmd: Command) => {
      if ((id === undefined) === (opts.subject === undefined)) throw new UsageError('name one call ID, or --subject NUMBER');
      const client = connect('erase', flags(cmd));
      const why = { reason: opts.reason, ...(opts.reference !== undefined ? { reference: opts.reference } : {}) };
      if (opts.subject !== undefined) {
        const r = await client.eraseSubject({ subject: opts.subject, ...why });
        print(wantsJson(opts, cmd) ? pretty(r) : [`erased ${r.erased.length} call(s) of ${r.subject}${r.erased.length ? `: ${r.erased.join(' ')}` : ''}`, ...r.refused.map((x) => `refused ${x.call_id}: ${x.code}: ${x.message}`)].join('\n'));
        if (r.refused.length > 0) process.exitCode = 1;
        return;
      }
      const r = await client.erase(id as string, why);
      print(wantsJson(opts, cmd) ? pretty(r) : `erased ${r.call_id}: keys destroyed ${r.keys.join(', ') || '(none)'}`);
    });

  program
    .command('login')
    .description('sign in with a password read from stdin; prints a session token (12 h) to export as SWITCHBOARD_TOKEN')
    .requiredOption('--email <email>', 'your email')
    .option('--tenant <id>', 'your tenant, when the email exists in several')
    .option('--json', 'print the whole answer (token, expiry, user) as JSON')
    .action(async (opts: { email: string; tenant?: string; json?: boolean }, cmd: Command) => {
      const client = connect('login', flags(cmd), { anonymous: true });
      const password = await readSecret('password: ');
      const r = await client.login({ email: opts.email, password, ...(opts.tenant === undefined ? {} : { tenant: opts.tenant }) });
      if (opts.json) return print(pretty(r));
      print(r.token);
      process.stderr.write(`signed in as ${r.user.email} (${r.user.role}, tenant ${r.user.tenant}) until ${r.expires_at}; export SWITCHBOARD_TOKEN=<the token above>\n`);
    });
}
