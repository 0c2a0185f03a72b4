/**
 * What `switchboard start` tells a person once the gateway listens.
 *
 * - **stdout is a terminal**: a short human banner after the JSON log lines —
 *   the softphone and console URLs, the admin token when this start generated
 *   it (shown once: only its hash is stored), and how to sign in with it.
 * - **stdout is not a terminal** (a service manager, a pipe, a container log):
 *   stdout stays JSON lines only. A generated token is written once to
 *   *stderr* as one plain line, never into the JSON log.
 *
 * When the admin already existed (a later start), the token cannot be shown
 * again; both forms say how to get a new one: stop the gateway and run
 * `switchboard users token <email>` on its data dir.
 */
import type { Logger } from './logger.ts';

export interface BannerInput {
  /** Where the gateway answers (the public URL when set, else the listening address). */
  baseUrl: string;
  dataDir: string;
  admin: { email: string; token: string | null; fromEnv: boolean };
}

/** The offline command that mints a new token for `email` on `dataDir`. */
export const recoverCommand = (email: string, dataDir: string): string => `switchboard users token ${email} --data-dir ${dataDir}`;

/** The banner for a terminal (multi-line text, ending in a blank line). */
export function terminalBanner(b: BannerInput): string {
  const lines = [
    '',
    '  Switchboard is running.',
    `    Softphone:  ${b.baseUrl}/phone`,
    `    Console:    ${b.baseUrl}/console`,
    '',
  ];
  if (b.admin.token) {
    lines.push(
      `  Admin token for ${b.admin.email} (shown once; only its hash is kept — save it now):`,
      '',
      `    ${b.admin.token}`,
      '',
      '  Sign in to the console: "Sign in with an API token", paste it.',
      '  CLI and API: export SWITCHBOARD_TOKEN=<the token>, or send Authorization: Bearer <the token>.',
    );
  } else if (b.admin.fromEnv) {
    lines.push(`  Admin ${b.admin.email}: the token is SWITCHBOARD_ADMIN_TOKEN. Console: "Sign in with an API token".`);
  } else {
    lines.push(
      `  Admin ${b.admin.email}: its token was shown at this data directory's first start.`,
      `  Lost it? Stop the gateway, run \`${recoverCommand(b.admin.email, b.dataDir)}\`, start again.`,
    );
  }
  lines.push('', '');
  return lines.join('\n');
}

/**
 * Shows the start-up banner: on a terminal to `out`; otherwise a generated
 * token goes once to `err` (one plain line) and the rest is a JSON log line.
 */
export function announce(b: BannerInput, logger: Logger, out: NodeJS.WriteStream = process.stdout, err: NodeJS.WritableStream = process.stderr): void {
  if (out.isTTY) {
    out.write(terminalBanner(b));
    return;
  }
  const urls = { phone: `${b.baseUrl}/phone`, console: `${b.baseUrl}/console` };
  if (b.admin.token) {
    err.write(`switchboard: admin token for ${b.admin.email} (shown once; only its hash is kept): ${b.admin.token}\n`);
    logger.info({ ...urls, admin: b.admin.email }, 'admin token printed once on stderr: sign in to the console with "Sign in with an API token"');
  } else if (!b.admin.fromEnv) {
    logger.info({ ...urls, admin: b.admin.email, recover: recoverCommand(b.admin.email, b.dataDir) }, 'admin token was shown at the first start only; lost it? stop the gateway and run the recover command');
  }
}
