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
 *   POST /v1/calls              (with `voice`) the Voice API's create call: JSON to[0].number, from.number,
 *                               answer_url, event_url, advanced_machine_detection → 201 {uuid, status, direction,
 *                               conversation_uuid}; then the call is played out (below)
 *   PUT  /v1/calls/:uuid        {action: hangup} → 204
 *
 * Every request but the Voice API's needs `Authorization: Basic base64(key:secret)` matching the
 * configured credentials, else 401 with an RFC 7807 body as Vonage documents
 * (`title: "Unauthorized"`). The Voice API's need `Authorization: Bearer JWT` signed RS256 with the application's
 * private key (checked against `voice.publicKey`, claim application_id = `voice.applicationId`), else 401. A call's
 * `from` must be one of `voice.numbers` (else 403 as Vonage answers a number not on the account). After the 201, the
 * callee's behaviour (`callees[to]`, default `answer`) is played out with the Vonage peer (test/helpers/vonage-peer.ts,
 * webhooks signed with `voice.signatureSecret`): answer ─► events started, ringing, then the peer's answer webhook
 * and websocket, and with advanced machine detection an event `human` (or `machine` + sub_state beep_start);
 * busy | timeout | rejected | unanswered | failed ─► event started, then that final status. Every request is recorded (method, path with
 * query, authorization, content type, raw body). A node http server on
 * 127.0.0.1, port 0.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import jsonwebtoken from 'jsonwebtoken';
import { VonagePeer } from './vonage-peer.ts';

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

export type VonageCallee = { kind: 'answer'; answeredBy?: 'human' | 'machine' } | { kind: 'busy' | 'timeout' | 'rejected' | 'unanswered' | 'failed' };

export interface FakeVoice {
  applicationId: string;
  /** PEM public key of the application's key pair. */
  publicKey: string;
  /** The key the peer signs webhooks with (VONAGE_SIGNATURE_SECRET of the gateway). */
  signatureSecret: string;
  /** E.164 without + (Vonage's form): the numbers calls may be placed from. */
  numbers: string[];
}

export interface FakeVonageApi {
  url: string;
  requests: RecordedRequest[];
  applications: Map<string, JsonRecord>;
  numbers: FakeNumber[];
  /** What the callee at a number (E.164 without +) does (default: answers as a human). */
  callees: Map<string, VonageCallee>;
  peers: Map<string, VonagePeer>;
  close: () => Promise<void>;
}

const problem = (status: number, title: string, detail: string): JsonRecord => ({
  type: `https://developer.nexmo.com/api-errors#${title.toLowerCase().replace(/\s+/g, '-')}`,
  title,
  detail,
  instance: `fake-${status}`,
});

/** Plays out a created call (see the header). */
async function playOut(voice: FakeVoice, callee: VonageCallee, call: { uuid: string; to: string; from: string; answerUrl: string; eventUrl: string; amd: boolean }, peers: Map<string, VonagePeer>): Promise<void> {
  const publicUrl = new URL(call.answerUrl).origin;
  const peer = new VonagePeer({ publicUrl, secret: voice.signatureSecret, to: `+${call.to}`, from: `+${call.from}`, uuid: call.uuid, retryMs: 5000 });
  peers.set(call.uuid, peer);
  const event = (fields: Record<string, unknown>) => peer.postEvent({ uuid: call.uuid, direction: 'outbound', ...fields }, call.eventUrl);
  await event({ status: 'started' });
  if (callee.kind !== 'answer') {
    await event({ status: callee.kind });
    return peer.close();
  }
  await event({ status: 'ringing' });
  const dialed = peer.dial();
  if (call.amd) await event(callee.answeredBy === 'machine' ? { status: 'machine', sub_state: 'beep_start' } : { status: 'human' });
  await dialed;
}

export async function startFakeVonageApi(o: { apiKey: string; apiSecret: string; applications?: JsonRecord[]; numbers?: FakeNumber[]; voice?: FakeVoice }): Promise<FakeVonageApi> {
  const callees = new Map<string, VonageCallee>();
  const peers = new Map<string, VonagePeer>();
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
      if (path.startsWith('/v1/calls') && o.voice) {
        const voice = o.voice;
        const bearer = /^Bearer (.+)$/.exec(req.headers.authorization ?? '')?.[1];
        let claims: jsonwebtoken.JwtPayload | string | null = null;
        try {
          claims = bearer ? jsonwebtoken.verify(bearer, voice.publicKey, { algorithms: ['RS256'] }) : null;
        } catch {
          claims = null;
        }
        if (claims === null || typeof claims === 'string' || claims.application_id !== voice.applicationId) {
          return send(401, problem(401, 'Unauthorized', 'You did not provide correct credentials.'), 'application/problem+json');
        }
        const uuidMatch = /^\/v1\/calls\/([0-9a-f-]{36})$/.exec(path);
        if (uuidMatch && req.method === 'PUT') {
          void peers.get(uuidMatch[1]!)?.close();
          res.writeHead(204).end();
          return;
        }
        if (path !== '/v1/calls' || req.method !== 'POST') return send(404, problem(404, 'Not Found', `no fake route for ${req.method ?? ''} ${path}`), 'application/problem+json');
        let b: { to?: Array<{ number?: string }>; from?: { number?: string }; answer_url?: string[]; event_url?: string[]; advanced_machine_detection?: unknown };
        try {
          b = JSON.parse(body) as typeof b;
        } catch {
          return send(400, problem(400, 'Bad Request', 'body is not JSON'), 'application/problem+json');
        }
        const to = b.to?.[0]?.number;
        const from = b.from?.number;
        const answerUrl = b.answer_url?.[0];
        const eventUrl = b.event_url?.[0];
        if (!to || !from || !answerUrl || !eventUrl) return send(400, problem(400, 'Bad Request', 'to, from, answer_url and event_url are required'), 'application/problem+json');
        if (!voice.numbers.includes(from)) return send(403, problem(403, 'Forbidden', `the from number ${from} is not a number of this account`), 'application/problem+json');
        const uuid = randomUUID();
        send(201, { uuid, status: 'started', direction: 'outbound', conversation_uuid: `CON-${randomUUID()}` });
        const call = { uuid, to, from, answerUrl, eventUrl, amd: b.advanced_machine_detection !== undefined };
        setTimeout(() => void playOut(voice, callees.get(to) ?? { kind: 'answer' }, call, peers).catch(() => undefined), 50);
        return;
      }
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
    callees,
    peers,
    close: async () => {
      for (const p of peers.values()) await p.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}
