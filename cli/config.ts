/**
 * Configuration from the environment (CONTRACT "Configuration"). Invalid values
 * stop the start with a message naming the variable.
 */
import path from 'node:path';
import { z } from 'zod';
import { resolveDurability, type Durability } from '../store/index.ts';

const port = z.coerce.number().int().min(0).max(65535);

const EnvSchema = z.object({
  SWITCHBOARD_HTTP_PORT: port.default(8080),
  SWITCHBOARD_SIP_PORT: port.default(5060),
  SWITCHBOARD_RTP_PORTS: z
    .string()
    .regex(/^\d{1,5}-\d{1,5}$/, 'expected LOW-HIGH, e.g. 20000-20999')
    .default('20000-20999'),
  SWITCHBOARD_HOST: z.string().min(1).default('0.0.0.0'),
  SWITCHBOARD_PUBLIC_URL: z.string().url().default('http://localhost:8080'),
  SWITCHBOARD_DATA_DIR: z.string().min(1).default('./data'),
  SWITCHBOARD_PROFILE: z.enum(['development', 'balanced', 'production', 'maximum_safety']).default('development'),
  SWITCHBOARD_FSYNC_POLICY: z.enum(['always', 'periodic', 'never']).optional(),
  SWITCHBOARD_NODE: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/).optional(),
  SWITCHBOARD_CLUSTER_NATS: z.string().optional(),
  SWITCHBOARD_ADMIN_TOKEN: z.string().min(16).optional(),
  SWITCHBOARD_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  /** How often the retention sweeper looks for recordings past `retention_until` (ms). */
  SWITCHBOARD_RETENTION_SWEEP_MS: z.coerce.number().int().min(100).max(86_400_000).default(60_000),
});

export interface Config {
  httpPort: number;
  sipPort: number;
  rtpPorts: { low: number; high: number };
  host: string;
  publicUrl: string;
  dataDir: string;
  durability: Durability;
  node: string | undefined;
  clusterNats: string | undefined;
  adminToken: string | undefined;
  logLevel: string;
  retentionSweepMs: number;
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const parsed = EnvSchema.safeParse(env);
  if (!parsed.success) {
    const msg = parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('\n  ');
    throw new ConfigError(`invalid configuration:\n  ${msg}`);
  }
  const e = parsed.data;
  const [low, high] = e.SWITCHBOARD_RTP_PORTS.split('-').map(Number) as [number, number];
  if (low > high || high > 65535 || low % 2 !== 0) {
    throw new ConfigError(`SWITCHBOARD_RTP_PORTS: ${e.SWITCHBOARD_RTP_PORTS} must be LOW-HIGH with an even LOW ≤ HIGH ≤ 65535`);
  }
  return {
    httpPort: e.SWITCHBOARD_HTTP_PORT,
    sipPort: e.SWITCHBOARD_SIP_PORT,
    rtpPorts: { low, high },
    host: e.SWITCHBOARD_HOST,
    publicUrl: e.SWITCHBOARD_PUBLIC_URL.replace(/\/+$/, ''),
    dataDir: path.resolve(e.SWITCHBOARD_DATA_DIR),
    durability: resolveDurability({ profile: e.SWITCHBOARD_PROFILE, fsync: e.SWITCHBOARD_FSYNC_POLICY }),
    node: e.SWITCHBOARD_NODE,
    clusterNats: e.SWITCHBOARD_CLUSTER_NATS,
    adminToken: e.SWITCHBOARD_ADMIN_TOKEN,
    logLevel: e.SWITCHBOARD_LOG_LEVEL,
    retentionSweepMs: e.SWITCHBOARD_RETENTION_SWEEP_MS,
  };
}
