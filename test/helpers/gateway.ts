/**
 * Gateways for end-to-end tests: in-process (fast, inspectable) or as a child
 * process running the real `switchboard start` (for kill -9). Ports are free
 * ephemeral ports; nothing is hard-coded.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import net from 'node:net';
import path from 'node:path';
import { loadConfig } from '../../cli/config/index.ts';
import { startGateway, type Gateway } from '../../cli/gateway.ts';
import { openingReads } from './content.ts';
import { createLogger } from '../../cli/logger.ts';
import type { IngressAdapter } from '../../ingress/port.ts';
import { tmpDir } from './tmp.ts';

export const TWILIO_TOKEN = 'test-auth-token-0123456789abcdef';
/** VONAGE_SIGNATURE_SECRET in tests (the key Vonage signs webhooks with, HS256). */
export const VONAGE_SECRET = 'test-vonage-signature-secret-0123456789abcdef';
/** The bootstrap admin's bearer token in tests (SWITCHBOARD_ADMIN_TOKEN). */
export const ADMIN_TOKEN = 'sbk_test-admin-token-0123456789abcdef';

export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = net.createServer();
    srv.once('error', reject);
    srv.listen(0, '127.0.0.1', () => {
      const addr = srv.address();
      const port = typeof addr === 'object' && addr ? addr.port : 0;
      srv.close(() => resolve(port));
    });
  });
}

export interface TestGatewayOptions {
  dataDir?: string;
  profile?: string;
  twilioToken?: string | null;
  /** VONAGE_SIGNATURE_SECRET (default VONAGE_SECRET); null: unset. */
  vonageSecret?: string | null;
  port?: number;
  logLevel?: string;
  /** Extra environment (SWITCHBOARD_FFMPEG, SWITCHBOARD_STT, …). */
  env?: Record<string, string>;
  /** Ingress adapters mounted after the built-in ones (in-process gateways only; test/fixtures/fake-provider/). */
  adapters?: readonly IngressAdapter[];
}

/**
 * Inherited variables a test gateway never takes from the shell running the tests: a developer's
 * DEEPGRAM_API_KEY would otherwise turn `SWITCHBOARD_STT=auto` into Deepgram and send test audio to the cloud.
 * A test that wants them passes them in `opts.env`.
 */
const NOT_INHERITED = ['DEEPGRAM_API_KEY', 'DEEPGRAM_URL', 'SWITCHBOARD_STT', 'SWITCHBOARD_TTS'] as const;

/**
 * The environment of a gateway on 127.0.0.1:`port` over `dataDir` (tests and benches). Speech is explicit:
 * the local engines (`SWITCHBOARD_STT=pocketsphinx`, `SWITCHBOARD_TTS=espeak`) unless `opts.env` names others.
 */
export function gatewayEnv(opts: TestGatewayOptions, port: number, dataDir: string): NodeJS.ProcessEnv {
  const inherited: NodeJS.ProcessEnv = { ...process.env };
  for (const name of NOT_INHERITED) delete inherited[name];
  const env: NodeJS.ProcessEnv = {
    ...inherited,
    SWITCHBOARD_STT: 'pocketsphinx',
    SWITCHBOARD_TTS: 'espeak',
    SWITCHBOARD_HTTP_PORT: String(port),
    SWITCHBOARD_HOST: '127.0.0.1',
    SWITCHBOARD_PUBLIC_URL: `http://127.0.0.1:${port}`,
    SWITCHBOARD_DATA_DIR: dataDir,
    SWITCHBOARD_PROFILE: opts.profile ?? 'production',
    SWITCHBOARD_FSYNC_POLICY: 'always',
    SWITCHBOARD_LOG_LEVEL: opts.logLevel ?? 'silent',
    SWITCHBOARD_ADMIN_TOKEN: ADMIN_TOKEN,
    // SIP on any free port unless a test names one (SWITCHBOARD_SIP_PORT in opts.env): never 5060 in tests.
    SWITCHBOARD_SIP_PORT: '0',
  };
  Object.assign(env, opts.env ?? {});
  if (opts.twilioToken === null) delete env.TWILIO_AUTH_TOKEN;
  else env.TWILIO_AUTH_TOKEN = opts.twilioToken ?? TWILIO_TOKEN;
  if (opts.vonageSecret === null) delete env.VONAGE_SIGNATURE_SECRET;
  else env.VONAGE_SIGNATURE_SECRET = opts.vonageSecret ?? VONAGE_SECRET;
  return env;
}

export async function startTestGateway(opts: TestGatewayOptions = {}): Promise<Gateway & { publicUrl: string; dataDir: string }> {
  const port = opts.port ?? (await freePort());
  const dataDir = opts.dataDir ?? tmpDir('sb-gw-');
  const env = gatewayEnv(opts, port, dataDir);
  const gateway = await startGateway(loadConfig(env), createLogger(env.SWITCHBOARD_LOG_LEVEL), { adapters: opts.adapters ?? [] });
  // Reads through gw.store open sealed content columns with this gateway's keys (test/helpers/content.ts).
  return Object.assign(gateway, { publicUrl: `http://127.0.0.1:${port}`, dataDir, store: openingReads(gateway.store) });
}

export interface GatewayProcess {
  child: ChildProcess;
  publicUrl: string;
  port: number;
  dataDir: string;
  logs: string[];
  kill9(): Promise<void>;
  stop(): Promise<void>;
}

const BIN = path.join(import.meta.dirname, '..', '..', 'bin', 'switchboard.mjs');

/**
 * Runs `switchboard start` as a child process and waits until it listens. `bin`: another checkout's
 * bin/switchboard.mjs (an older version of the gateway, test/e2e/cluster-rolling-upgrade.test.ts).
 */
export async function spawnGateway(opts: TestGatewayOptions & { port: number; dataDir: string; bin?: string }): Promise<GatewayProcess> {
  const env = gatewayEnv({ logLevel: 'info', ...opts }, opts.port, opts.dataDir);
  const child = spawn(process.execPath, [opts.bin ?? BIN, 'start'], { env, stdio: ['ignore', 'pipe', 'pipe'] });
  const logs: string[] = [];
  let buf = '';
  await new Promise<void>((resolve, reject) => {
    // A generous bound, not a speed: a restart right after kill -9 on a busy box can take many seconds.
    const timer = setTimeout(() => reject(new Error(`gateway did not start:\n${logs.join('\n')}`)), 60_000);
    child.stdout?.on('data', (d: Buffer) => {
      buf += d.toString();
      let nl: number;
      while ((nl = buf.indexOf('\n')) >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        logs.push(line);
        if (line.includes('switchboard listening')) {
          clearTimeout(timer);
          resolve();
        }
      }
    });
    child.stderr?.on('data', (d: Buffer) => logs.push(d.toString()));
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`gateway exited ${code}:\n${logs.join('\n')}`));
    });
  });
  const exited = new Promise<void>((r) => child.once('exit', () => r()));
  return {
    child,
    port: opts.port,
    dataDir: opts.dataDir,
    publicUrl: `http://127.0.0.1:${opts.port}`,
    logs,
    kill9: async () => {
      child.kill('SIGKILL');
      await exited;
    },
    // SIGINT stops at once (SIGTERM drains: it would wait for live calls).
    stop: async () => {
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGINT');
      await exited;
    },
  };
}
