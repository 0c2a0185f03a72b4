/**
 * How `switchboard config` shows a variable whose value holds a secret among things worth seeing: NATS URLs with
 * credentials (SWITCHBOARD_CLUSTER_NATS, cli/config/cluster.ts) keep their hosts and user, not the password or token.
 */

/** `nats://alice:****@h:4222,…`: the URLs with their password (or token) masked, for `switchboard config`. */
export function redactNatsUrls(value: string): string {
  return value
    .split(',')
    .map((url) => url.replace(/^(\s*(?:[a-z]+:\/\/)?)([^@/]*)@/i, (_, scheme: string, info: string) => `${scheme}${info.includes(':') ? `${info.split(':')[0]}:****` : '****'}@`))
    .join(',');
}
