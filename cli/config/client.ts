/**
 * The CLI's side of the configuration (schema.ts, section `client`): SWITCHBOARD_URL and SWITCHBOARD_TOKEN for
 * commands against a running gateway, and what `numbers connect` reads (the VONAGE_API_* credentials, the gateway's
 * public URL and SIP port for its instructions). Its own file so that the remote commands load the schema only,
 * not the gateway's section builders.
 */
import { pickEnv, type VariableName } from './schema.ts';

/** The CLI's side, for commands against a running gateway: SWITCHBOARD_URL and SWITCHBOARD_TOKEN ('' = unset). */
export function clientSettings(env: NodeJS.ProcessEnv = process.env): { url: string | undefined; token: string | undefined } {
  const e = pickEnv(env, ['SWITCHBOARD_URL', 'SWITCHBOARD_TOKEN']);
  return { url: e.SWITCHBOARD_URL?.trim() || undefined, token: e.SWITCHBOARD_TOKEN?.trim() || undefined };
}

const CONNECT: readonly VariableName[] = ['SWITCHBOARD_PUBLIC_URL', 'SWITCHBOARD_SIP_PORT', 'VONAGE_API_KEY', 'VONAGE_API_SECRET', 'VONAGE_APPLICATION_ID', 'VONAGE_API_HOST', 'VONAGE_REST_HOST', 'TWILIO_ACCOUNT_SID', 'TWILIO_AUTH_TOKEN', 'TWILIO_API_BASE'];

/**
 * The variables `switchboard numbers connect` uses, as given ('' = unset): it checks them itself, naming a missing
 * or bad one, since it runs beside (not inside) a gateway. DEBUG rides along: the Vonage SDK's own logging, which the
 * command refuses to run under (it would print the credentials).
 */
export function connectSettings(env: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  return { ...pickEnv(env, CONNECT), ...(env.DEBUG !== undefined ? { DEBUG: env.DEBUG } : {}) };
}
