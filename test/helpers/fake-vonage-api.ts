/**
 * A FAKE of the few Vonage REST endpoints `switchboard numbers connect
 * --provider vonage` uses, for tests offline. It is NOT Vonage: its answers
 * are modelled on Vonage's public API reference (Application API v2, Numbers
 * API), not recorded from the live service, so a test against it proves what
 * @vonage/server-sdk sends on the wire and how the command handles the
 * answers; it does NOT prove the command works against live Vonage.
 *
 *   GET  /v2/applications/:id   the stored application (snake_case JSON, with _links), 404 problem otherwise
 *   PUT  /v2/applications/:id   stores the body as the application, answers it
 *   GET  /account/numbers       { count, numbers } filtered by ?pattern (starts with)
 *   POST /number/update         form body; sets the number's app_id; `{"error-code":"200",…}`
 *
 * Every request needs `Authorization: Basic base64(key:secret)` matching the
 * configured credentials, else 401 with an RFC 7807 body as Vonage documents
 * (`title: "Unauthorized"`). Every request is recorded (method, path with
 * query, authorization, content type, raw body). A node http server on
 * 127.0.0.1, port 0.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface RecordedRequest {
  method: string;
  /** Path with its query string, as received. */
  path: string;
  authorization: string | undefined;
  contentType: string | undefined;
  body: string;
}

export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };
export type JsonRecord = { [key: string]: JsonValue };

export interface FakeNumber {
  country: string;
  msisdn: string;
  app_id?: string;
}

export interface FakeVonageApi {
  url: string;
  requests: RecordedRequest[];
  applications: Map<string, JsonRecord>;
  numbers: FakeNumber[];
  close: () => Promise<void>;
}

const problem = (status: number, title: string, detail: string): JsonRecord => ({
  type: `https://developer.nexmo.com/api-errors#${title.toLowerCase().replace(/\s+/g, '-')}`,
  title,
  detail,
  instance: `fake-${status}`,
});

export async function startFakeVonageApi(o: { apiKey: string; apiSecret: string; applications?: JsonRecord[]; numbers?: FakeNumber[] }): Promise<FakeVonageApi> {
  const expectedAuth = `Basic ${Buffer.from(`${o.apiKey}:${o.apiSecret}`).toString('base64')}`;
  const requests: RecordedRequest[] = [];
  const applications = new Map<string, JsonRecord>();
  for (const a of o.applications ?? []) if (typeof a.id === 'string') applications.set(a.id, structuredClone(a));
  const numbers: FakeNumber[] = (o.numbers ?? []).map((n) => ({ ...n }));

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      const path = req.url ?? '/';
      requests.push({ method: req.method ?? '', path, authorization: req.headers.authorization, contentType: req.headers['content-type'], body });
      const send = (status: number, json: JsonValue, type = 'application/json'): void => {
        const text = JSON.stringify(json);
        res.writeHead(status, { 'content-type': type, 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (req.headers.authorization !== expectedAuth) {
        return send(401, problem(401, 'Unauthorized', 'You did not provide correct credentials.'), 'application/problem+json');
      }
      const u = new URL(path, 'http://fake');
      const appMatch = /^\/v2\/applications\/([^/]+)$/.exec(u.pathname);
      if (appMatch?.[1] !== undefined) {
        const id = decodeURIComponent(appMatch[1]);
        const app = applications.get(id);
        if (app === undefined) return send(404, problem(404, 'Not Found', `Application ${id} not found`), 'application/problem+json');
        if (req.method === 'GET') return send(200, { ...app, _links: { self: { href: `/v2/applications/${id}` } } });
        if (req.method === 'PUT') {
          let parsed: unknown;
          try {
            parsed = JSON.parse(body);
          } catch {
            return send(400, problem(400, 'Bad Request', 'body is not JSON'), 'application/problem+json');
          }
          const next = { ...(parsed as JsonRecord), id };
          applications.set(id, next);
          return send(200, { ...next, _links: { self: { href: `/v2/applications/${id}` } } });
        }
      }
      if (u.pathname === '/account/numbers' && req.method === 'GET') {
        const pattern = u.searchParams.get('pattern') ?? '';
        const list = numbers.filter((n) => n.msisdn.startsWith(pattern));
        return send(200, { count: list.length, numbers: list.map((n) => ({ ...n, type: 'mobile-lvn', features: ['VOICE', 'SMS'] })) });
      }
      if (u.pathname === '/number/update' && req.method === 'POST') {
        const form = new URLSearchParams(body);
        const n = numbers.find((x) => x.msisdn === form.get('msisdn') && x.country === form.get('country'));
        if (n === undefined) return send(420, { 'error-code': '420', 'error-code-label': 'Number not found' });
        const appId = form.get('app_id');
        if (appId !== null) n.app_id = appId;
        return send(200, { 'error-code': '200', 'error-code-label': 'success' });
      }
      return send(404, problem(404, 'Not Found', `no fake route for ${req.method ?? ''} ${u.pathname}`), 'application/problem+json');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    requests,
    applications,
    numbers,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}
