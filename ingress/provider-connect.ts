/**
 * What `switchboard numbers connect --provider P` shares across providers (ingress/<provider>/connect.ts): the
 * error it ends with (one line; exit code 2 for a missing or bad input, nothing sent; 1 for a provider API that
 * failed or could not be reached) and the base-URL rule (https, or http for localhost only: credentials go there).
 */
export class ProviderConnectError extends Error {
  override readonly name = 'ProviderConnectError';
  constructor(
    message: string,
    readonly exitCode: 1 | 2,
  ) {
    super(message);
  }
}

export const LOCAL_HOSTS: ReadonlySet<string> = new Set(['localhost', '127.0.0.1', '[::1]']);

/** A base URL: https, or http for localhost; no credentials, query or fragment; no trailing slash. */
export function baseUrl(name: string, raw: string): string {
  let u: URL;
  try {
    u = new URL(raw);
  } catch {
    throw new ProviderConnectError(`${name}: not a URL: ${JSON.stringify(raw)} (e.g. https://gateway.example.com)`, 2);
  }
  if (u.protocol !== 'https:' && !(u.protocol === 'http:' && LOCAL_HOSTS.has(u.hostname))) {
    throw new ProviderConnectError(`${name}: must be https:// (http:// only for localhost), got ${u.protocol}//${u.host}`, 2);
  }
  if (u.username !== '' || u.password !== '' || u.search !== '' || u.hash !== '') {
    throw new ProviderConnectError(`${name}: give a base URL without user info, query or fragment`, 2);
  }
  return u.href.replace(/\/+$/, '');
}
