/**
 * The `switchboard` command. `start` runs the gateway; `verify` and `replay`
 * check the log of a stopped gateway's data dir; more commands join with their
 * issues (against a running gateway they use the HTTP API).
 */
import { Command } from 'commander';
import { StoreError } from '../store/index.ts';
import { ConfigError, loadConfig } from './config.ts';
import { DEFAULT_TENANT, startGateway } from './gateway.ts';
import { createLogger } from './logger.ts';
import { openOffline } from './offline.ts';

const program = new Command();
program.name('switchboard').description('Voice and telephony agent gateway').showHelpAfterError();

program
  .command('start')
  .description('run the gateway (configuration from SWITCHBOARD_* environment variables)')
  .action(async () => {
    const config = loadConfig();
    const logger = createLogger(config.logLevel);
    const gateway = await startGateway(config, logger);
    const stop = (signal: string): void => {
      logger.info({ signal }, 'shutting down');
      gateway.stop().then(
        () => process.exit(0),
        (err: unknown) => {
          logger.error({ err }, 'shutdown failed');
          process.exit(1);
        },
      );
    };
    process.once('SIGINT', () => stop('SIGINT'));
    process.once('SIGTERM', () => stop('SIGTERM'));
  });

program
  .command('verify')
  .description('check the hash chain, applied_seq and checkpoint signatures; exit 1 naming the first bad seq')
  .option('--data-dir <dir>', 'data directory (default SWITCHBOARD_DATA_DIR or ./data)')
  .option('--json', 'print the report as JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => {
    const store = openOffline(opts.dataDir);
    try {
      const r = store.verify();
      if (opts.json) console.log(JSON.stringify(r, null, 2));
      else {
        console.log(`events: ${r.events}  head: ${r.headSeq} ${r.headHash}  checkpoints: ${r.checkpoints}`);
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
  .command('replay')
  .description('rebuild every table from the log into a fresh database and compare outcomes and digest')
  .option('--data-dir <dir>', 'data directory')
  .option('--json', 'print the report as JSON')
  .action((opts: { dataDir?: string; json?: boolean }) => {
    const store = openOffline(opts.dataDir);
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
  .description('route an E.164 number or SIP URI to an agent')
  .requiredOption('--agent <name>', 'agent name')
  .option('--consent <policy>', 'consent policy id')
  .option('--provider <provider>', 'twilio | vonage | sip | webrtc')
  .option('--tenant <tenant>', 'tenant', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory')
  .action(async (number: string, opts: { agent: string; consent?: string; provider?: string; tenant: string; dataDir?: string }) => {
    const store = openOffline(opts.dataDir);
    try {
      const r = await store.submit(
        'number_added',
        { number, agent: opts.agent, consent_policy_id: opts.consent ?? null, provider: opts.provider ?? null },
        { tenant: opts.tenant, caller: 'cli' },
      );
      if (!r.outcome.ok) {
        console.error(`refused: ${r.outcome.error.code}: ${r.outcome.error.message}`);
        process.exitCode = 1;
      } else console.log(JSON.stringify({ seq: r.seq, ...(r.outcome.result as object) }));
    } finally {
      store.close();
    }
  });

program
  .command('calls')
  .description('list calls (offline: reads a stopped gateway\'s data dir)')
  .option('--since <time>', 'ISO time or epoch ms')
  .option('--state <state>', 'only calls in this state')
  .option('--tenant <tenant>', 'tenant', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory')
  .option('--json', 'one JSON object per line')
  .action((opts: { since?: string; state?: string; tenant: string; dataDir?: string; json?: boolean }) => {
    const since = opts.since === undefined ? 0 : /^\d+$/.test(opts.since) ? Number(opts.since) : Date.parse(opts.since);
    if (Number.isNaN(since)) throw new ConfigError(`--since: not a time: ${opts.since}`);
    const store = openOffline(opts.dataDir);
    try {
      const rows = store
        .read(opts.tenant)
        .calls.find(opts.state ? { state: opts.state as never } : {}, { orderBy: 'received_at' })
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
  .command('call <id>')
  .description('one call with its legs, consent, recordings, transcript and agent actions (offline)')
  .option('--tenant <tenant>', 'tenant', DEFAULT_TENANT)
  .option('--data-dir <dir>', 'data directory')
  .action((id: string, opts: { tenant: string; dataDir?: string }) => {
    const store = openOffline(opts.dataDir);
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

program.parseAsync(process.argv).catch((err: unknown) => {
  if (err instanceof ConfigError || err instanceof StoreError) {
    console.error(`switchboard: ${err.message}`);
    process.exit(2);
  }
  console.error(err);
  process.exit(1);
});
