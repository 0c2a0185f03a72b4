/**
 * Twilio ingress: the voice webhook (TwiML answer, also the resume target),
 * the status callback, and the bidirectional Media Stream WebSocket.
 *
 *   POST /twilio/voice  ─► route the call ─► <Connect><Stream url=…/twilio/media>
 *                                             <Parameter name="token" …/></Stream></Connect>
 *                                             <Redirect>/twilio/voice</Redirect>
 *   WS   /twilio/media  ─► signature + one-time token ─► TwilioLeg ─► host.calls.attach
 *   POST /twilio/status ─► host.calls.end on a final status (idempotent, out-of-order safe)
 *   dialer              ─► outbound calls through Twilio's REST API (dialer.ts); their webhooks land on the
 *                          same routes (routed by the number the call was placed from); `AnsweredBy` (AMD)
 *                          ─► host.calls.answeredBy. A webhook is checked with the auth token of the account it
 *                          names (AccountSid) when that account is configured, else TWILIO_AUTH_TOKEN.
 *
 * When the stream drops (this node killed, network), Twilio executes the
 * <Redirect>: the webhook lands again, the call goes `resuming`, and a fresh
 * stream carries it on.
 *
 * Replays. Twilio's signature covers the URL and the parameters only: no
 * timestamp, no nonce, so a captured signed `/twilio/voice` can be re-sent
 * forever. Twilio only runs the <Redirect> once the stream has ended, so a
 * webhook for a call whose stream is live here is not from Twilio's flow: it
 * gets `<Pause length="1"/><Redirect>` back to this webhook — no token,
 * nothing written. (Twilio itself lands there only when its request overtook
 * the old socket's close; a second later the stream is gone and the resume
 * proceeds.) A stream token (ingress/stream-tokens.ts) is single-use on every
 * node (claimed in the log), void once any stream for the call was accepted,
 * answered again to a retry within seconds by the node that issued it, and
 * valid only for a `start` naming the same CallSid; a `start` for a call whose
 * media is live is refused (1008) instead of superseding the caller's stream.
 *
 * Cluster failover: the token is checked by whichever node the stream reaches,
 * so after a node's death the <Redirect> and the new stream land on any live
 * node through the load balancer; that node takes the call once the dead
 * owner's lease has run out (until then its claim is refused, the stream is
 * closed, and Twilio's <Redirect> tries again).
 */
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { z } from 'zod';
import { refuseUpgrade } from '../../http/server.ts';
import { LazyWebSocketServer, loadWs } from '../../http/ws-server.ts';
import { guardMessages, rawText } from '../../http/ws-guard.ts';
import type { IngressAdapter, IngressHost, MountedIngress } from '../port.ts';
import { holdEarly } from '../early-messages.ts';
import { streamTokensFor, type StreamTokens } from '../stream-tokens.ts';
import { TwilioLeg } from './leg.ts';
import { parseInbound } from './messages.ts';
import { verifyTwilioSignature, type SignaturePolicy } from './signature.ts';
import { loadTwilio, twilioLoaded } from './sdk.ts';
import { call_ended } from '../../schema/reducers.ts';
import { storedAccounts, type ProviderSection } from '../provider-accounts.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { answeredByOf, twilioAccounts, TwilioDialer } from './dialer.ts';

/** The adapter's settings (new calls beyond the node's limits get `<Reject reason="busy"/>`: host.calls). */
export interface TwilioOptions {
  publicUrl: string;
  /** From TWILIO_AUTH_TOKEN. */
  authToken: string | undefined;
  /** Development profile: unsigned requests pass (with a warning) when no token is set. */
  development: boolean;
  /** SWITCHBOARD_PROVIDER_ACCOUNTS' twilio section: the accounts outbound calls are placed with. */
  accounts?: ProviderSection;
}

const CallSid = z.string().regex(/^CA[0-9a-fA-F]{32}$/, 'CallSid must be CA + 32 hex');
const VoiceParams = z.object({ CallSid, From: z.string().max(256).default(''), To: z.string().min(1).max(256) }).passthrough();
const StatusParams = z.object({ CallSid, CallStatus: z.string().min(1).max(32) }).passthrough();
const FINAL_STATUSES = new Set(['completed', 'busy', 'failed', 'no-answer', 'canceled']);
const START_TIMEOUT_MS = 10_000;

export const PROVIDER = 'twilio';

/** The Twilio adapter, for the list in ingress/adapters.ts. */
export function twilioAdapter(opts: TwilioOptions): IngressAdapter {
  return { name: PROVIDER, mount: async (host) => mountTwilio(host, opts) };
}

export async function mountTwilio(host: IngressHost, deps: TwilioOptions): Promise<MountedIngress & { tokens: StreamTokens; dialer: TwilioDialer }> {
  const log = host.logger.child({ ingress: PROVIDER });
  const policy: SignaturePolicy = { authToken: deps.authToken, allowUnsigned: deps.development };
  if (!deps.authToken) {
    if (deps.development) log.warn('TWILIO_AUTH_TOKEN is not set: Twilio requests are NOT authenticated (development profile only)');
    else log.error('TWILIO_AUTH_TOKEN is not set: every Twilio request will be refused (403)');
  }
  const tokens = streamTokensFor(host, PROVIDER);
  const stored = storedAccounts(host.store, () => loadOrCreateMasterKey(host.dataDir), PROVIDER, log);
  const dialer = new TwilioDialer({ calls: host.calls, accounts: twilioAccounts(deps.accounts ?? { apiBase: null, accounts: [] }, PROVIDER), stored, apiBase: deps.accounts?.apiBase ?? null, publicUrl: deps.publicUrl, provider: PROVIDER, log });
  const httpUrl = (path: string): string => `${deps.publicUrl}${path}`;
  const wsUrl = (path: string): string => httpUrl(path).replace(/^http/, 'ws');

  const authenticate = (req: FastifyRequest, reply: FastifyReply, params: Record<string, string>): boolean => {
    const own = params.AccountSid === undefined ? undefined : dialer.authTokenOf(params.AccountSid);
    const verdict = verifyTwilioSignature(own ? { ...policy, authToken: own } : policy, req.headers['x-twilio-signature'], [httpUrl(req.url)], params);
    if (verdict.ok) {
      if (verdict.bypassed) log.warn({ url: req.url }, 'unsigned Twilio webhook accepted (development profile, no TWILIO_AUTH_TOKEN)');
      return true;
    }
    log.warn({ url: req.url, reason: verdict.reason, ip: req.ip }, 'Twilio webhook refused');
    void reply.code(403).send({ error: { code: 'forbidden', message: verdict.reason } });
    return false;
  };
  const formParams = (req: FastifyRequest): Record<string, string> | null => {
    const body = req.body;
    if (typeof body !== 'object' || body === null) return null;
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(body)) if (typeof v === 'string') out[k] = v;
    return out;
  };
  const twiml = (reply: FastifyReply, xml: string): FastifyReply => reply.type('text/xml; charset=utf-8').send(xml);

  const routes = async (app: FastifyInstance): Promise<void> => {
  app.post('/twilio/voice', async (req, reply) => {
    const twilio = await loadTwilio(); // the SDK, imported on first use (sdk.ts)
    const params = formParams(req);
    if (!params) return reply.code(415).send({ error: { code: 'unsupported_media_type', message: 'expected application/x-www-form-urlencoded' } });
    if (!authenticate(req, reply, params)) return reply;
    const parsed = VoiceParams.safeParse(params);
    if (!parsed.success) return reply.code(400).send({ error: { code: 'invalid_params', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') } });
    const p = parsed.data;
    const response = new twilio.twiml.VoiceResponse();
    // The webhook of a call we are placing can overtake the create's response: wait for its row.
    if (p.Direction === 'outbound-api' && !host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: p.CallSid })) await dialer.settled();
    const known = host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: p.CallSid });
    if (known && known.state !== 'ended' && host.calls.mediaLive(known.id)) {
      log.warn({ callSid: p.CallSid, call: known.id, ip: req.ip }, 'voice webhook for a call whose stream is live: no stream token (a replay, or ahead of the old stream\'s close)');
      response.pause({ length: 1 });
      response.redirect({ method: 'POST' }, httpUrl('/twilio/voice'));
      return twiml(reply, response.toString());
    }
    if (known) host.calls.detachLost(known.id, 'media silent: Twilio asked to resume the call');
    const decision = await host.calls.receive({ provider: PROVIDER, providerCallId: p.CallSid, from: p.From, to: p.To }, 'twilio:voice');
    if (decision.kind === 'rejected') {
      log.info({ callSid: p.CallSid, to: p.To }, 'call rejected: unknown number');
      response.reject({ reason: 'rejected' });
      return twiml(reply, response.toString());
    }
    if (decision.kind === 'busy') {
      // Twilio plays the caller a busy tone and the call is never answered (nothing billed, nothing recorded).
      log.warn({ callSid: p.CallSid, to: p.To, reason: decision.reason }, 'call refused: this node is at its limit');
      response.reject({ reason: 'busy' });
      return twiml(reply, response.toString());
    }
    if (decision.kind === 'ended') {
      response.hangup();
      return twiml(reply, response.toString());
    }
    if (decision.kind === 'transfer') {
      // Blind transfer: Twilio bridges the caller to the target; the status callback ends the call.
      const dial = response.dial({ answerOnBridge: true });
      if (/^sips?:/i.test(decision.target)) dial.sip(decision.target);
      else dial.number(decision.target);
      log.info({ callSid: p.CallSid, call: decision.callId, target: decision.target }, 'call transferred');
      return twiml(reply, response.toString());
    }
    if (typeof p.AnsweredBy === 'string' && p.AnsweredBy !== '' && !decision.resumed) {
      const by = answeredByOf(p.AnsweredBy);
      const evidence = { AnsweredBy: p.AnsweredBy, ...(typeof p.MachineDetectionDuration === 'string' ? { MachineDetectionDuration: p.MachineDetectionDuration } : {}) };
      const r = await host.calls.answeredBy({ tenant: decision.tenant, callId: decision.callId }, { by, source: 'provider', evidence }, { caller: 'twilio:voice', id: `twilio:amd:${p.CallSid}` });
      if (!r.ok) log.warn({ callSid: p.CallSid, code: r.code }, 'AnsweredBy not recorded');
    }
    const token = tokens.issue({ tenant: decision.tenant, callId: decision.callId, providerCallId: p.CallSid });
    const stream = response.connect().stream({ url: wsUrl('/twilio/media') });
    stream.parameter({ name: 'token', value: token });
    response.redirect({ method: 'POST' }, httpUrl('/twilio/voice'));
    log.info({ callSid: p.CallSid, call: decision.callId, resumed: decision.resumed }, decision.resumed ? 'call resuming' : 'call answered');
    return twiml(reply, response.toString());
  });

  app.post('/twilio/status', async (req, reply) => {
    await loadTwilio();
    const params = formParams(req);
    if (!params) return reply.code(415).send({ error: { code: 'unsupported_media_type', message: 'expected application/x-www-form-urlencoded' } });
    if (!authenticate(req, reply, params)) return reply;
    const parsed = StatusParams.safeParse(params);
    if (!parsed.success) return reply.code(400).send({ error: { code: 'invalid_params', message: parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ') } });
    const { CallSid: sid, CallStatus: status } = parsed.data;
    if (!host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: sid })) await dialer.settled();
    const call = host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: sid });
    if (!call) {
      log.info({ callSid: sid, status }, 'status for an unknown call ignored');
      return reply.code(204).send();
    }
    if (FINAL_STATUSES.has(status)) {
      await host.calls.end({ tenant: call.tenant, callId: call.id }, `twilio:${status}`, { caller: 'twilio:status', id: `twilio:status:${sid}:final` });
    }
    return reply.code(204).send();
  });
  };
  await host.http.register(routes);

  // Messages up to 1 MiB are read and validated (an oversized media frame is dropped, the call goes on);
  // beyond that the socket is closed (1009) and Twilio's <Redirect> resumes the call on a fresh stream.
  // The ws package comes in with the SDK, in the background once the gateway listens (http/ws-server.ts).
  const wss = new LazyWebSocketServer({ maxPayload: 1024 * 1024 });
  host.http.onUpgrade('/twilio/media', function upgrade(req: http.IncomingMessage, socket: Duplex, head: Buffer): void {
    // Before the SDK is in (sdk.ts), the upgrade waits for it; the socket may close meanwhile (refuseUpgrade copes).
    if (!twilioLoaded()) return void loadTwilio().then(() => upgrade(req, socket, head), (err: unknown) => {
      log.error({ err }, 'loading the twilio SDK failed');
      refuseUpgrade(socket, 503, 'the twilio SDK is not available');
    });
    const path = req.url ?? '/twilio/media';
    const check = (p: SignaturePolicy) => verifyTwilioSignature(p, req.headers['x-twilio-signature'], [wsUrl(path), httpUrl(path)], {});
    const first = check(policy);
    const signed = first.ok && !first.bypassed ? first : dialer.authTokens().map((authToken) => check({ ...policy, authToken })).find((v) => v.ok);
    const verdict = signed ?? first;
    if (!verdict.ok) {
      log.warn({ reason: verdict.reason }, 'Twilio media upgrade refused');
      return refuseUpgrade(socket, 403, verdict.reason);
    }
    if (verdict.bypassed) log.warn('unsigned Twilio media stream accepted (development profile, no TWILIO_AUTH_TOKEN)');
    wss.handleUpgrade(req, socket, head, (ws) => acceptStream(ws, socket), (err) => {
      log.error({ err }, 'loading the ws package failed');
      refuseUpgrade(socket, 503, 'WebSocket support is not available');
    });
  });

  /** Waits for `connected` + `start`, checks the one-time token, then hands a TwilioLeg to the call manager. */
  const acceptStream = (ws: WebSocket, socket: Duplex): void => {
    const timer = setTimeout(() => ws.close(1008, 'no start message'), START_TIMEOUT_MS);
    const onMessage = guardMessages(ws, (err) => log.error({ err }, 'media socket message handler failed: socket closed (1011)'), (data, isBinary) => {
      const parsed = isBinary ? { ok: false as const, error: 'binary frame' } : parseInbound(rawText(data));
      if (!parsed.ok) return void log.warn({ error: parsed.error }, 'malformed message before start');
      const msg = parsed.msg;
      if (msg.event === 'connected') return;
      if (msg.event !== 'start') return void log.warn({ event: msg.event }, 'message before start ignored');
      clearTimeout(timer);
      ws.off('message', onMessage);
      // The token is checked through the store (its nonce claimed in the log): media arriving meanwhile is kept
      // and handed to the leg, so the caller's first words are not lost to the check.
      const early = holdEarly(ws);
      void tokens.consume(msg.start.customParameters?.token).then((verdict) => {
        const held = early.release();
        if (ws.readyState !== ws.OPEN) return;
        if (!verdict.ok || verdict.grant.providerCallId !== msg.start.callSid) {
          const reason = verdict.ok ? 'token for another call' : verdict.reason;
          log.warn({ callSid: msg.start.callSid, reason }, 'media stream with an invalid or used token refused');
          return ws.close(!verdict.ok && verdict.unavailable ? 1011 : 1008, 'invalid stream token');
        }
        const grant = verdict.grant;
        if (host.calls.mediaLive(grant.callId)) {
          // The caller's stream is flowing: a second one must not take the call over.
          log.warn({ callSid: msg.start.callSid, call: grant.callId }, 'second media stream for a call whose stream is live refused');
          return ws.close(1008, 'call already has a live stream');
        }
        const leg = new TwilioLeg(ws, msg.start.streamSid, msg.start.callSid, Number(msg.sequenceNumber ?? 1), socket);
        for (const [data, isBinary] of held) ws.emit('message', data, isBinary);
        host.calls.attach({ tenant: grant.tenant, callId: grant.callId }, leg).catch((err: unknown) => {
          log.warn({ err, call: grant.callId }, 'media attach refused');
        });
      });
    });
    ws.on('message', onMessage);
    // A protocol error (an oversized frame: 1009, bad UTF-8: 1007) is emitted as 'error' and ws closes the socket
    // itself; without a listener the 'error' would be thrown and end the process.
    ws.on('error', (err) => log.warn({ err: err.message }, 'media socket error before start: socket closed'));
    ws.on('close', () => clearTimeout(timer));
  };

  return { tokens, dialer, warm: async () => void (await Promise.all([loadTwilio(), loadWs()])), close: async () => wss.close() };
}
