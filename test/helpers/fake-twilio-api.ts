/**
 * A FAKE of the few Twilio REST endpoints the gateway and `switchboard numbers connect --provider twilio` use, for
 * tests offline. It is NOT Twilio: its answers are modelled on Twilio's public API reference (2010-04-01 Calls and
 * IncomingPhoneNumbers resources, error JSON `{ code, message, more_info, status }`), not recorded from the live
 * service, so a test against it proves what the `twilio` package sends on the wire and how the gateway handles the
 * answers and the webhooks that follow; it does NOT prove the gateway works against live Twilio.
 *
 *   POST /2010-04-01/Accounts/:sid/Calls.json                 form: To, From, Url, StatusCallback, StatusCallbackEvent,
 *                                                             MachineDetection … → 201 call JSON (status queued); then
 *                                                             the call is played out (below)
 *   POST /2010-04-01/Accounts/:sid/Calls/:callSid.json         form: Status=canceled|completed → the call JSON
 *   GET  /2010-04-01/Accounts/:sid.json                       → the account JSON (sid, friendly_name, status active, type)
 *   GET  /2010-04-01/Accounts/:sid/IncomingPhoneNumbers.json   ?PhoneNumber= → { incoming_phone_numbers: [...] }
 *   POST /2010-04-01/Accounts/:sid/IncomingPhoneNumbers/:pn.json  form: VoiceUrl, VoiceMethod, StatusCallback,
 *                                                             StatusCallbackMethod → the number JSON
 *
 * Every request needs HTTP Basic `AccountSid:AuthToken` of the account in the path (else 401, Twilio error 20003).
 * A call's `From` must be one of the account's incoming numbers (else 400, error 21210, as Twilio refuses an
 * unverified caller ID). After the 201, the callee's behaviour (`callees[To]`, default `answer`) is played out with
 * the Twilio peer (test/helpers/twilio-peer.ts), signed with the account's auth token:
 *   answer      ─► status `initiated`, `ringing`, then the peer dials the call's Url (Direction outbound-api,
 *                  `AnsweredBy` when MachineDetection was asked: `answeredBy`, default `human`) and streams
 *   busy | no-answer | failed ─► status `initiated`, then the final status callback with that CallStatus
 * The peers are in `peers` (by CallSid) and announced by `onCall`, for the test to speak and press keys.
 */
import { randomBytes } from 'node:crypto';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { TwilioPeer } from './twilio-peer.ts';

export interface RecordedTwilioRequest {
  method: string;
  path: string;
  authorization: string | undefined;
  form: Record<string, string[]>;
}

export type Callee = { kind: 'answer'; answeredBy?: string } | { kind: 'busy' | 'no-answer' | 'failed' };

export interface FakeTwilioNumber {
  sid: string;
  phone_number: string;
  voice_url: string | null;
  voice_method: string;
  status_callback: string | null;
  status_callback_method: string;
}

export interface FakeTwilioApi {
  url: string;
  requests: RecordedTwilioRequest[];
  numbers: FakeTwilioNumber[];
  /** What the callee at a number does (default: answers as a human). */
  callees: Map<string, Callee>;
  peers: Map<string, TwilioPeer>;
  onCall: ((peer: TwilioPeer) => void) | null;
  close: () => Promise<void>;
}

const hex32 = (): string => randomBytes(16).toString('hex');

export async function startFakeTwilioApi(o: { accountSid: string; authToken: string; numbers: string[]; publicUrl?: () => string }): Promise<FakeTwilioApi> {
  const expectedAuth = `Basic ${Buffer.from(`${o.accountSid}:${o.authToken}`).toString('base64')}`;
  const base = `/2010-04-01/Accounts/${o.accountSid}`;
  const requests: RecordedTwilioRequest[] = [];
  const numbers: FakeTwilioNumber[] = o.numbers.map((n) => ({ sid: `PN${hex32()}`, phone_number: n, voice_url: null, voice_method: 'POST', status_callback: null, status_callback_method: 'POST' }));
  const callees = new Map<string, Callee>();
  const peers = new Map<string, TwilioPeer>();
  const calls = new Map<string, Record<string, unknown>>();
  const api: FakeTwilioApi = { url: '', requests, numbers, callees, peers, onCall: null, close: async () => undefined };

  const error = (status: number, code: number, message: string) => ({ code, message, more_info: `https://www.twilio.com/docs/errors/${code}`, status });

  /** Plays out a created call: status callbacks and, when answered, the peer's webhook and stream. */
  const playOut = async (call: Record<string, unknown>, form: Record<string, string[]>): Promise<void> => {
    const one = (k: string): string => form[k]?.[0] ?? '';
    const url = new URL(one('Url'));
    const publicUrl = `${url.protocol}//${url.host}`;
    const callee = callees.get(one('To')) ?? { kind: 'answer' };
    const amd = one('MachineDetection') !== '';
    const peer = new TwilioPeer({
      publicUrl, authToken: o.authToken, accountSid: o.accountSid, callSid: String(call.sid), from: one('From'), to: one('To'), direction: 'outbound-api',
      redirectRetryMs: 5000, ...(amd && callee.kind === 'answer' ? { params: { AnsweredBy: callee.answeredBy ?? 'human', MachineDetectionDuration: '1840' } } : {}),
    });
    peers.set(String(call.sid), peer);
    await peer.postStatus('initiated');
    if (callee.kind !== 'answer') {
      call.status = callee.kind;
      await peer.postStatus(callee.kind);
      await peer.close();
      return;
    }
    await peer.postStatus('ringing');
    call.status = 'in-progress';
    api.onCall?.(peer);
    await peer.dial();
  };

  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const u = new URL(req.url ?? '/', 'http://fake');
      const form: Record<string, string[]> = {};
      for (const [k, v] of new URLSearchParams(Buffer.concat(chunks).toString('utf8'))) (form[k] ??= []).push(v);
      requests.push({ method: req.method ?? '', path: `${u.pathname}${u.search}`, authorization: req.headers.authorization, form });
      const send = (status: number, json: unknown): void => {
        const text = JSON.stringify(json);
        res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
        res.end(text);
      };
      if (!(u.pathname.startsWith(`${base}/`) || u.pathname === `${base}.json`) || req.headers.authorization !== expectedAuth) return send(401, error(401, 20003, 'Authenticate'));
      if (u.pathname === `${base}.json` && req.method === 'GET') {
        return send(200, { sid: o.accountSid, friendly_name: 'Fake account', status: 'active', type: 'Full', owner_account_sid: o.accountSid, uri: `${base}.json` });
      }
      const rest = u.pathname.slice(base.length);
      const one = (k: string): string | undefined => form[k]?.[0];
      if (rest === '/Calls.json' && req.method === 'POST') {
        const to = one('To');
        const from = one('From');
        if (!to || !one('Url')) return send(400, error(400, 21201, 'No \'To\' number is specified / Url is required'));
        if (!numbers.some((n) => n.phone_number === from)) return send(400, error(400, 21210, `The source phone number provided, ${from ?? ''}, is not yet verified for your account.`));
        const sid = `CA${hex32()}`;
        const call = { sid, account_sid: o.accountSid, to, from, status: 'queued', direction: 'outbound-api', api_version: '2010-04-01', uri: `${base}/Calls/${sid}.json` };
        calls.set(sid, call);
        send(201, call);
        setTimeout(() => void playOut(call, form).catch(() => undefined), 50);
        return;
      }
      const callMatch = /^\/Calls\/(CA[0-9a-f]{32})\.json$/.exec(rest);
      if (callMatch && req.method === 'POST') {
        const call = calls.get(callMatch[1]!);
        if (!call) return send(404, error(404, 20404, 'The requested resource was not found'));
        const status = one('Status');
        if (status === 'canceled' || status === 'completed') {
          call.status = status;
          void peers.get(String(call.sid))?.close();
        }
        return send(200, call);
      }
      if (rest === '/IncomingPhoneNumbers.json' && req.method === 'GET') {
        const want = u.searchParams.get('PhoneNumber');
        return send(200, { incoming_phone_numbers: numbers.filter((n) => want === null || n.phone_number === want).map((n) => ({ ...n, account_sid: o.accountSid })), page: 0, page_size: 50 });
      }
      const pnMatch = /^\/IncomingPhoneNumbers\/(PN[0-9a-f]{32})\.json$/.exec(rest);
      if (pnMatch && req.method === 'POST') {
        const n = numbers.find((x) => x.sid === pnMatch[1]);
        if (!n) return send(404, error(404, 20404, 'The requested resource was not found'));
        if (one('VoiceUrl') !== undefined) n.voice_url = one('VoiceUrl')!;
        if (one('VoiceMethod') !== undefined) n.voice_method = one('VoiceMethod')!;
        if (one('StatusCallback') !== undefined) n.status_callback = one('StatusCallback')!;
        if (one('StatusCallbackMethod') !== undefined) n.status_callback_method = one('StatusCallbackMethod')!;
        return send(200, { ...n, account_sid: o.accountSid });
      }
      return send(404, error(404, 20404, `no fake route for ${req.method ?? ''} ${u.pathname}`));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  api.url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  api.close = async () => {
    for (const p of peers.values()) await p.close();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  };
  return api;
}
