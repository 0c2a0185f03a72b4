/**
 * `switchboard config`: the effective configuration — every variable of schema.ts with its value and where the
 * value came from (the environment, the profile, or the default) — after the same check `switchboard start` makes
 * (a bad variable: the same ConfigError, exit 2). Secrets (tokens, secrets, passwords, keys, TURN credentials) are
 * never printed: `****` and, for a long one, its last 4 characters, so an operator can tell which one is set.
 *
 *   # gateway
 *   SWITCHBOARD_HTTP_PORT      8080           default
 *   SWITCHBOARD_FSYNC_POLICY   always         profile production
 *   SWITCHBOARD_ADMIN_TOKEN    ****cdef       env
 */
import { loadConfig } from './index.ts';
import { pickEnv, VARIABLE_NAMES, VARIABLES, type ProfileName, type Section } from './schema.ts';

export interface ConfigRow {
  name: string;
  section: Section;
  /** The effective value as written in the environment (masked for a secret); null = unset. */
  value: string | null;
  source: 'env' | 'profile' | 'default';
  secret: boolean;
  /** What an unset value means (e.g. "generated, printed once"). */
  unset?: string;
}

/** `****` and the last 4 characters of a long secret; a short one shows nothing of itself. */
export function mask(value: string): string {
  return value.length >= 16 ? `****${value.slice(-4)}` : '****';
}

/** Every variable's effective value and source; throws ConfigError as `switchboard start` would. */
export function effectiveConfig(env: NodeJS.ProcessEnv = process.env): ConfigRow[] {
  const config = loadConfig(env);
  const set = pickEnv(env);
  const profile: ProfileName = config.profile;
  return VARIABLE_NAMES.map((name) => {
    const spec = VARIABLES[name] as { section: Section; default: string | null; byProfile?: Record<ProfileName, string>; secret?: boolean; redact?: (v: string) => string; unset?: string };
    const secret = spec.secret === true;
    const given = set[name];
    const row: ConfigRow =
      given !== undefined
        ? { name, section: spec.section, value: secret ? mask(given) : spec.redact ? spec.redact(given) : given, source: 'env', secret }
        : spec.byProfile
          ? { name, section: spec.section, value: spec.byProfile[profile], source: 'profile', secret }
          : { name, section: spec.section, value: spec.default, source: 'default', secret };
    if (row.value === null && spec.unset) row.unset = spec.unset;
    return row;
  });
}

/** The text `switchboard config` prints: one block per section, one line per variable. */
export function formatConfig(rows: ConfigRow[], profile: string): string {
  const width = Math.max(...rows.map((r) => r.name.length));
  const valueOf = (r: ConfigRow): string => r.value ?? `(unset${r.unset ? `: ${r.unset}` : ''})`;
  const valueWidth = Math.min(48, Math.max(...rows.map((r) => valueOf(r).length)));
  const out: string[] = [];
  let section: Section | null = null;
  for (const r of rows) {
    if (r.section !== section) {
      if (section !== null) out.push('');
      out.push(`# ${r.section}`);
      section = r.section;
    }
    const source = r.source === 'profile' ? `profile ${profile}` : r.source;
    out.push(`${r.name.padEnd(width)}  ${valueOf(r).padEnd(valueWidth)}  ${source}`);
  }
  return out.join('\n');
}
