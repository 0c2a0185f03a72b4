/**
 * The `switchboard` command. `start` runs the gateway; `verify` and `replay`
 * check the log of a stopped gateway's data dir. `calls`, `call` and `numbers
 * add` use a running gateway's HTTP API when --url or SWITCHBOARD_URL is set,
 * and otherwise read/write a stopped gateway's data dir; `users add|list`,
 * `numbers list`, `agents`, `logs` and `login` need the API
 * (cli/commands-api.ts), while `users token` mints a token offline on a
 * stopped data dir (cli/users-token.ts); `start` ends with a banner (cli/banner.ts);
 * `numbers connect` points a provider at the gateway (cli/numbers-connect.ts);
 * `config` prints the effective configuration, secrets masked (cli/config/show.ts);
 * `cluster up` runs a local cluster: NATS, nodes, HAProxy, Kamailio (cli/cluster/);
 * `drain` asks a running node to drain (cli/drain-command.ts); `verify` prints
 * a cluster node's attestations by the other nodes (cli/verify-output.ts).
 *
 * Signals to `start`: SIGTERM drains the node (bridge/drain.ts: new calls
 * refused busy, live calls go on until they end or SWITCHBOARD_DRAIN_TIMEOUT_MS,
 * then exit 0); SIGINT, or a second SIGTERM during a drain, stops at once (live
 * calls are left to resume on a node, as before).
 *
 * Exit codes: 0 ok; 1 a failure (an API error, an unreachable gateway, a
 * refused command, a failed check); 2 a usage or configuration problem.
 */
import { Command } from 'commander';
import { defaultAgent } from '../agents/default-agent.ts';
import { agentRouteWarning, numberRouteProblem } from '../schema/tenancy.ts';
import { StoreError, type ArgsOf } from '../store/index.ts';
import { ConfigError, loadConfig } from './config/index.ts';
import { registerCampaignCommands } from './campaigns-command.ts';
import { addNumberViaApi, callsViaApi, callViaApi, dialViaApi, registerApiCommands, viaApi, type CallsOptions, type DialOptions } from './commands-api.ts';
import { registerClusterCommand } from './cluster/command.ts';
import { registerConnectCommand } from './numbers-connect.ts';
import { registerDrainCommand } from './drain-command.ts';
import { openOffline } from './offline.ts';
import { attestationLines } from './verify-output.ts';
import { ApiError, UnreachableError, UsageError } from './remote.ts';
import { number_added } from '../schema/reducers.ts';

/**
 * The embedded default tenant, as cli/gateway.ts DEFAULT_TENANT. Not imported:
 * loading the gateway module (media, providers, HTTP server) triples the
 * start-up time of every other command, so `start` imports it on demand.
 */
const DEFAULT_TENANT = 'default';

// `switchboard calls --json | head`: the reader went away; stop quietly as Unix filters do, no EPIPE stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (err: NodeJS.ErrnoException) => {
    if (err.code === 'EPIPE') process.exit(0);
    throw err;
  });
}

const program = new Command();
program
  .name('switchboard')
  .description('Voice and telephony agent gateway')
  .option('--url <url>', 'a running gateway, e.g. http://localhost:8080 (default SWITCHBOARD_URL)')
  .option('--token <token>', 'API bearer token (default SWITCHBOARD_TOKEN, which keeps it out of the process list)')
  .configureHelp({ showGlobalOptions: true })
  .showHelpAfterError();

program
  .command('start')
  .description('run the gateway (configuration from SWITCHBOARD_* environment variables)')
  .action(async () => {
    const config = loadConfig();
    const [{ startGateway }, { createLogger }, { announce }] = await Promise.all([import('./gateway.ts'), import('./logger.ts'), import('./banner.ts')]);
    const logger = createLogger(config.logLevel);
    const gateway = await startGateway(config, logger);
    // After the start-up log lines are out, so the banner is the last thing on the terminal.
    await new Promise<void>((resolve) => logger.flush(() => resolve()));
    announce({ baseUrl: gateway.urls.http, dataDir: config.dataDir, admin: gateway.admin }, logger);
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down now');
      gateway.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.on('SIGTERM', () => {
      if (gateway.drain.active) return stop('SIGTERM (a second one: during the drain)');
      logger.info({ signal: 'SIGTERM' }, 'draining (a second SIGTERM or SIGINT stops at once)');
      gateway.drain.start().catch((err: unknown) => logger.error({ err }, 'drain failed to start'));
    });
    // The cluster's log level rose above this build's (schema/log-level.ts): stop (its calls are handed over), exit 2.
    void gateway.logLevelAbove.then((line) => {
      console.error(`switchboard: ${line}`);
      gateway.stop().finally(() => process.exit(2));
    });
    // A drain (SIGTERM or POST /v1/cluster/drain) ends with the gateway stopped: exit 0.
    gateway.drain.done.then(
      () => process.exit(0),
      (err: unknown) => {
        logger.error({ err }, 'drain failed');
        process.exit(1);
      },
    );
  });

program
  .command('config')
  .description('print the effective configuration: every variable, its value and whether it came from the environment, the profile or the default (secrets masked); a bad value: the error `start` gives, exit 2')
  .option('--json', 'one JSON array of { name, section, value, source, secret }')
  .action(async (opts: { json?: boolean }) => {
    const { effectiveConfig, formatConfig } = await import('./config/show.ts');
    const rows = effectiveConfig();
    if (opts.json) console.log(JSON.stringify(rows, null, 2));
    else console.log(formatConfig(rows, rows.find((r) => r.name === 'SWITCHBOARD_PROFILE')?.value ?? 'development'));
  });

program
  .command('verify')
  .description('check the hash chain, applied_seq, checkpoint signatures and (cluster mode) the other nodes\' attestations; exit 1 naming the first bad seq')
  .option('--data-dir <dir>', 'data directory (default SWITCHBOARD_DATA_DIR or ./data)')
  .option('--json', 'print the report as JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => {
    const store = openOffline(opts.dataDir, { existing: true });
    try {
      const r = store.verify();
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`events: ${r.events}  head: ${r.headSeq} ${r.headHash}  checkpoints: ${r.checkpoints}`);
        for (const line of attestationLines(r.attestations)) console.log(line);
        if (r.ok) console.log('verify: OK — chain intact, checkpoints signed and matching');
        else {
          console.log(`verify: FAILED — first bad seq: ${r.firstBadSeq}`);
          for (const p of r.problems) console.log(`  ${p}`);
        }
      }
      process.exitCode = r.ok ? 0 : 1;
    } finally {
      store.close();
    }
  });

program
  .command('migrate')
  .description('upgrade a stopped gateway\'s data dir written before content sealing: its log again as a new epoch with every call\'s content sealed under its own key (the old data dir is kept beside it, renamed, and holds plain content)')
  .option('--data-dir <dir>', 'data directory')
  .action(async (opts: { dataDir?: string }) => {
    const { migrateDataDir } = await import('./migrate.ts');
    const dir = openOffline(opts.dataDir, { existing: true });
    const dataDir = dir.dataDir;
    dir.close();
    const r = await migrateDataDir(dataDir);
    if (!r.archive) console.log(`migrate: nothing to do — ${r.events} events, no plain content`);
    else {
      console.log(`migrate: OK — ${r.events} events logged again as a new epoch, ${r.plain} of them had plain content, now sealed`);
      console.log(`the old data dir is ${r.archive}: it still holds plain content that erasure cannot reach; keep it only as long as you must, then delete it`);
    }
  });

program
  .command('replay')
  .description('rebuild every table from the log into a fresh database and compare outcomes and digest')
  .option('--data-dir <dir>', 'data directory')
  .option('--json', 'print the report as JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => {
    const store = openOffline(opts.dataDir, { existing: true });
    try {
      const r = store.replay();
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`events replayed: ${r.events}`);
        console.log(`live digest:     ${r.liveDigest}\nreplayed digest: ${r.replayDigest}`);
        for (const [name, t] of Object.entries(r.tables)) if (!t.same) console.log(`  table ${name} differs (live ${t.live} rows, replayed ${t.replayed})`);
        for (const m of r.outcomeMismatches) console.log(`  seq ${m.seq}: recorded ${m.recorded} replayed ${m.replayed}`);
        console.log(r.ok ? 'replay: OK — same outcomes, same tables' : 'replay: MISMATCH');
      }
      process.exitCode = r.ok ? 0 : 1;
    } finally {
      store.close();
    }
  });

const numbers = program.command('numbers').description('route numbers to agents');
numbers
  .command('add <number>')
  .description('route an E.164 number or SIP URI to an agent (API with --url, else offline)')
  .requiredOption('--agent <name>', 'agent name')
  .option('--consent <policy>', 'consent policy id (through the API also a policy name)')
  .option('--provider <provider>', 'twilio | vonage | sip | webrtc')
  .option('--tenant <tenant>', 'tenant (offline)', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory (offline)')
  .option('--json', 'print the result as JSON (offline always does)')
  .action(async (number: string, opts: { agent: string; consent?: string; provider?: string; tenant: string; dataDir?: string; json?: boolean }, cmd: Command) => {
    if (viaApi(cmd)) return addNumberViaApi(cmd, number, opts);
    const problem = numberRouteProblem(number, opts.provider);
    if (problem) throw new UsageError(problem);
    const store = openOffline(opts.dataDir);
    try {
      const r = await store.submit(
        number_added,
        { number, agent: opts.agent, consent_policy_id: opts.consent ?? null, provider: (opts.provider ?? null) as ArgsOf<typeof number_added>['provider'] }, // checked by numberRouteProblem
        { tenant: opts.tenant, caller: 'cli' },
      );
      if (!r.outcome.ok) {
        console.error(`refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
        process.exitCode = 1;
      } else {
        console.log(JSON.stringify({ seq: r.seq, ...r.outcome.result }));
        const versions = store.read(opts.tenant).agent_versions.find({ name: opts.agent });
        const warning = agentRouteWarning(opts.agent, [defaultAgent.name], versions);
        if (warning) console.error(`switchboard: warning: ${warning}`);
      }
    } finally {
      store.close();
    }
  });

program
  .command('calls')
  .description("list calls, newest first through the API (--url), oldest first offline (a stopped gateway's data dir)")
  .option('--since <time>', 'ISO time or epoch ms')
  .option('--state <state>', 'only calls in this state')
  .option('--agent <name>', 'only calls handled by this agent')
  .option('--q <text>', 'only calls whose transcript contains these words (API only)')
  .option('--limit <n>', 'at most N calls (API only; default 50)')
  .option('--tenant <tenant>', 'tenant (offline)', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory (offline)')
  .option('--json', 'one JSON object per line')
  .action(async (opts: CallsOptions & { tenant: string; dataDir?: string }, cmd: Command) => {
    if (viaApi(cmd)) return callsViaApi(cmd, opts);
    if (opts.q !== undefined || opts.limit !== undefined) throw new UsageError('--q and --limit query a running gateway: pass --url or set SWITCHBOARD_URL');
    const since = opts.since === undefined ? 0 : /^\d+$/.test(opts.since) ? Number(opts.since) : Date.parse(opts.since);
    if (Number.isNaN(since)) throw new ConfigError(`--since: not a time: ${opts.since}`);
    const store = openOffline(opts.dataDir, { existing: true });
    try {
      const rows = store
        .read(opts.tenant)
        .calls.find({ ...(opts.state ? { state: opts.state as never } : {}), ...(opts.agent ? { agent: opts.agent } : {}) }, { orderBy: 'received_at' })
        .filter((c) => c.received_at >= since);
      for (const c of rows) {
        if (opts.json) console.log(JSON.stringify(c));
        else console.log([c.id, c.state.padEnd(12), c.provider, c.from_uri, '→', c.to_uri, new Date(c.received_at).toISOString(), c.end_reason ?? ''].join('  '));
      }
      if (!opts.json) console.log(`${rows.length} call(s)`);
    } finally {
      store.close();
    }
  });

program
  .command('call [id]')
  .description('one call with its legs, consent, recordings, transcript, agent actions and (through the API) timeline; with --from and --to, place an outbound call (API)')
  .option('--from <number>', 'place a call from this number of yours (needs --to and a running gateway)')
  .option('--to <uri>', 'what to call: a sip: URI, or E.164 / tel: from a Twilio or Vonage number')
  .option('--agent <name>', "the agent that runs the call (default: the from-number's agent)")
  .option('--wait', 'follow the placed call until it is answered (exit 0) or ends unanswered (exit 1)')
  .option('--amd [default]', 'detect an answering machine first; an undecided answer is treated as DEFAULT: human (default), machine or hangup')
  .option('--wait-timeout <seconds>', 'with --wait: give up after this long (default 120)')
  .option('--purpose <text>', 'why you look (recorded in the access log; API only)')
  .option('--tenant <tenant>', 'tenant (offline)', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory (offline)')
  .option('--json', 'print JSON (offline always does)')
  .action(async (id: string | undefined, opts: DialOptions & { tenant: string; dataDir?: string; json?: boolean; purpose?: string }, cmd: Command) => {
    const placing = opts.from !== undefined || opts.to !== undefined || opts.agent !== undefined || opts.amd !== undefined;
    if (placing || opts.wait || opts.waitTimeout !== undefined) {
      if (id !== undefined) throw new UsageError('give either a call ID (show a call) or --from and --to (place one), not both');
      if (opts.from === undefined || opts.to === undefined) throw new UsageError('placing a call needs both --from NUMBER and --to sip:URI|+E164');
      if (!viaApi(cmd)) throw new UsageError('placing a call needs a running gateway: pass --url or set SWITCHBOARD_URL');
      return dialViaApi(cmd, opts);
    }
    if (id === undefined) throw new UsageError('call: give a call ID to show it, or --from NUMBER --to sip:URI|+E164 to place a call');
    if (viaApi(cmd)) return callViaApi(cmd, id, opts);
    const store = openOffline(opts.dataDir, { existing: true });
    try {
      const read = store.read(opts.tenant);
      const call = read.calls.get(id);
      if (!call) {
        console.error(`switchboard: no call ${id} in tenant ${opts.tenant}`);
        process.exitCode = 1;
        return;
      }
      const detail = {
        call,
        legs: read.legs.find({ call_id: id }, { orderBy: 'connected_at' }),
        consents: read.consents.find({ call_id: id }, { orderBy: 'started_at' }),
        recordings: read.recordings.find({ call_id: id }),
        transcript: read.transcript_segments.find({ call_id: id }, { orderBy: 'start_ms' }),
        agent_actions: read.agent_actions.find({ call_id: id }, { orderBy: 'created_at' }),
      };
      console.log(JSON.stringify(detail, null, 2));
    } finally {
      store.close();
    }
  });

registerApiCommands(program, numbers);
registerConnectCommand(numbers);
registerClusterCommand(program);
registerDrainCommand(program);
registerCampaignCommands(program);

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ApiError || err instanceof UnreachableError) {
    console.error(`switchboard: ${err.message}`);
    process.exit(1);
  }
  if (err instanceof ConfigError || err instanceof StoreError || err instanceof UsageError) {
    console.error(`switchboard: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
