/**
 * Cross-site request guard for the control API (`/v1/…`): one `onRequest`
 * hook, run before any body is read, so a refused request costs no parsing
 * and writes nothing.
 *
 * A browser attaches the console's session cookie to requests that another
 * site makes it send; a bearer token it never attaches by itself. So:
 *
 * 1. **JSON only.** A state-changing request (POST, PUT, PATCH, DELETE) that
 *    carries a body must say `Content-Type: application/json` (or a type the
 *    route declares in `config.bodyTypes`, e.g. an agent bundle as
 *    `application/javascript`); anything else — a form, `text/plain` — is
 *    415. A cross-site page can only send JSON after a CORS preflight, which
 *    the gateway never grants. Form bodies stay where a provider needs them
 *    (the Twilio and Vonage webhooks), outside `/v1` and never
 *    cookie-authenticated.
 * 2. **Same origin for the cookie.** A state-changing request that would be
 *    authenticated by the session cookie (it has the cookie and no
 *    `Authorization` header) must prove it comes from the gateway's own pages:
 *    `Sec-Fetch-Site: same-origin`, or an `Origin` equal to the public URL's
 *    origin (`SWITCHBOARD_PUBLIC_URL`) or to the request's own `Host`. Without
 *    that proof it is 403 `cross_site_request`. A request with neither cookie
 *    nor bearer (sign-in) is refused only when the browser marks it as coming
 *    from elsewhere. Bearer-token requests are not subject to the check.
 *
 * Reads (GET, HEAD, OPTIONS) pass: they change nothing, and the cookie is
 * `SameSite=Strict`. The WebSocket upgrade of `/v1/subscribe` is not a route;
 * it applies the same origin rule with {@link isSameOrigin}.
 */
import type { FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import type { IncomingHttpHeaders } from 'node:http';
import { SESSION_COOKIE } from './auth/principal.ts';
import { HttpError } from '../http/server.ts';

declare module 'fastify' {
  interface FastifyContextConfig {
    /** Body media types this route takes besides `application/json` (lowercase, no parameters). */
    bodyTypes?: readonly string[];
  }
}

const STATE_CHANGING = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

/** Options of {@link requestGuard}. */
export interface RequestGuardOptions {
  /** The gateway's public base URL (SWITCHBOARD_PUBLIC_URL); its origin is the console's. */
  publicUrl: string;
}

/** The media type of a Content-Type header, lowercased, without parameters; '' when absent. */
export function mediaType(header: string | undefined): string {
  return (header ?? '').split(';', 1)[0]?.trim().toLowerCase() ?? '';
}

/** Whether the request carries a body (a Content-Type, a non-zero Content-Length, or a chunked body). */
function hasBody(headers: IncomingHttpHeaders): boolean {
  if (headers['content-type'] !== undefined || headers['transfer-encoding'] !== undefined) return true;
  const length = headers['content-length'];
  return length !== undefined && length !== '0';
}

/** Whether a session cookie is on the request and no bearer header overrides it. */
export function cookieAuthenticated(headers: IncomingHttpHeaders): boolean {
  if (headers.authorization !== undefined) return false;
  const cookie = headers.cookie ?? '';
  return cookie.split(';').some((part) => part.trim().startsWith(`${SESSION_COOKIE}=`));
}

/**
 * Whether the browser vouches that the request comes from the gateway's own
 * origin: `Sec-Fetch-Site: same-origin`, or an `Origin` whose origin is the
 * public URL's or whose host is the request's `Host`.
 */
export function isSameOrigin(headers: IncomingHttpHeaders, publicOrigin: string): boolean {
  if (headers['sec-fetch-site'] === 'same-origin') return true;
  const origin = headers.origin;
  if (typeof origin !== 'string' || origin === 'null') return false;
  let parsed: URL;
  try {
    parsed = new URL(origin);
  } catch {
    return false;
  }
  if (parsed.origin === publicOrigin) return true;
  const host = headers.host;
  return typeof host === 'string' && host.length > 0 && parsed.host === host.toLowerCase();
}

/** Whether the browser says the request comes from another origin (`Sec-Fetch-Site` other than same-origin/none, or a foreign `Origin`). */
function markedCrossSite(headers: IncomingHttpHeaders, publicOrigin: string): boolean {
  const site = headers['sec-fetch-site'];
  if (site !== undefined && site !== 'same-origin' && site !== 'none') return true;
  return headers.origin !== undefined && !isSameOrigin({ ...headers, 'sec-fetch-site': undefined }, publicOrigin);
}

/**
 * The API's cross-site guard as a fastify `onRequest` hook (see the module
 * header for the rules).
 *
 * @param opts - the gateway's public URL, whose origin is trusted for cookie requests
 * @returns a hook that throws {@link HttpError} 415 `unsupported_media_type`
 *   or 403 `cross_site_request`, rendered by the server's error handler
 * @example
 *   await app.register(async (api) => {
 *     api.addHook('onRequest', requestGuard({ publicUrl }));
 *     api.post('/v1/users', handler);
 *   });
 */
export function requestGuard(opts: RequestGuardOptions): onRequestAsyncHookHandler {
  const publicOrigin = new URL(opts.publicUrl).origin;
  return async function guardApiRequest(req: FastifyRequest): Promise<void> {
    if (!STATE_CHANGING.has(req.method)) return;
    const { headers } = req;
    if (hasBody(headers)) {
      const type = mediaType(headers['content-type']);
      const extra = req.routeOptions.config.bodyTypes ?? [];
      if (type !== 'application/json' && !extra.includes(type)) {
        const accepted = ['application/json', ...extra].join(', ');
        throw new HttpError(415, 'unsupported_media_type', `${req.method} bodies must be ${accepted}; got ${type || 'no Content-Type'}`, { Accept: accepted });
      }
    }
    if (cookieAuthenticated(headers)) {
      if (!isSameOrigin(headers, publicOrigin)) {
        throw new HttpError(
          403,
          'cross_site_request',
          'a request signed in with the console session cookie must come from the console itself (Origin or Sec-Fetch-Site); other clients send Authorization: Bearer <token>',
        );
      }
    } else if (headers.authorization === undefined && markedCrossSite(headers, publicOrigin)) {
      throw new HttpError(403, 'cross_site_request', 'this request comes from another site; send Authorization: Bearer <token>');
    }
  };
}
