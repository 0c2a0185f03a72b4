/**
 * The CLI's side of the configuration, for commands against a running gateway: SWITCHBOARD_URL and
 * SWITCHBOARD_TOKEN (schema.ts, section `client`). Its own file so that the remote commands load the schema only,
 * not the gateway's section builders.
 */
import { pickEnv } from './schema.ts';

/** The CLI's side, for commands against a running gateway: SWITCHBOARD_URL and SWITCHBOARD_TOKEN ('' = unset). */
export function clientSettings(env: NodeJS.ProcessEnv = process.env): { url: string | undefined; token: string | undefined } {
  const e = pickEnv(env, ['SWITCHBOARD_URL', 'SWITCHBOARD_TOKEN']);
  return { url: e.SWITCHBOARD_URL?.trim() || undefined, token: e.SWITCHBOARD_TOKEN?.trim() || undefined };
}
