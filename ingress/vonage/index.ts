/**
 * Vonage ingress: the answer webhook (NCCO), the event webhook (lifecycle, and
 * the synchronous resume of a dropped media socket), and the media WebSocket.
 *
 *   GET|POST /vonage/answer ─► signed JWT ─► route the call ─► NCCO connect ─► wss://…/vonage/media
 *                                                              (token in headers, eventType synchronous)
 *   WS       /vonage/media  ─► signed handshake + websocket:connected + one-time token ─► VonageLeg ─► host.calls.attach
 *   POST     /vonage/event  ─► caller leg final status ─► host.calls.end (idempotent, out-of-order safe)
 *                           ─► media leg `disconnected` of a live call ─► a fresh NCCO connect: the call resumes
 *                           ─► `human` / `machine` (advanced machine detection) ─► host.calls.answeredBy
 *   dialer                  ─► outbound calls through Vonage's Voice API (dialer.ts); their webhooks land on the
 *                              same routes (routed by the number the call was placed from)
 *
 * A `disconnected` event resumes only a call whose media is lost here (it may
 * overtake the socket's close: it waits a moment for it), and a media socket
 * for a call whose socket is live is refused (1008) rather than superseding it.
 *
 * The stream token (ingress/stream-tokens.ts) is checked by whichever node the
 * socket reaches: after a node's death Vonage's `disconnected` event (retried
 * until a live node answers) and the new socket land on any live node through
 * the load balancer, which finds the call through the log and takes it once the
 * dead owner's lease has run out (until then the socket is refused and the next
 * `disconnected` asks again).
 *
 * Every webhook's JWT is checked against the raw body (payload_hash), so the
 * routes live in their own fastify scope whose body parser keeps the bytes.
 * An accepted JWT's `jti` is then claimed through the store (WebhookNonces):
 * a replay is refused (403) even after a restart, before anything is acted on.
 */
import { randomUUID } from 'node:crypto';
import type http from 'node:http';
import type { Duplex } from 'node:stream';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import { refuseUpgrade } from '../../http/server.ts';
import { guardMessages, rawText } from '../../http/ws-guard.ts';
import type { InboundDecision } from '../../bridge/call-control.ts';
import type { IngressAdapter, IngressHost, MountedIngress } from '../port.ts';
import { holdEarly } from '../early-messages.ts';
import { streamTokensFor, type StreamTokens } from '../stream-tokens.ts';
import { WebhookNonces } from '../webhook-nonces.ts';
import { loadJsonwebtoken, ReplayCache, replayWindowEnd, verifyVonageRequest, type JwtPolicy, type JwtVerdict } from './jwt.ts';
import { LazyWebSocketServer, loadWs } from '../../http/ws-server.ts';
import { VonageLeg } from './leg.ts';
import { AnswerParams, connectedToken, EventBody, FINAL_STATUSES, l16Rate, parseText, phoneNumber } from './messages.ts';
import { busyNcco, endedNcco, streamNcco, transferNcco, unknownNumberNcco, type NccoAction } from './ncco.ts';
import { ConversationIndex } from './conversations.ts';
import { call_ended } from '../../schema/reducers.ts';
import { storedAccounts, type ProviderSection } from '../provider-accounts.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { answeredByOf, vonageAccounts, VonageDialer } from './dialer.ts';

/** The adapter's settings (new calls beyond the node's limits hear a busy message: host.calls). */
export interface VonageOptions {
  publicUrl: string;
  /** From VONAGE_SIGNATURE_SECRET. */
  signatureSecret: string | undefined;
  /** Development profile: unsigned requests pass (with a warning) when no secret is set. */
  development: boolean;
  /** L16 rate asked of Vonage (default 16000). */
  rate?: 8000 | 16000;
  /** SWITCHBOARD_PROVIDER_ACCOUNTS' vonage section: the applications outbound calls are placed with. */
  accounts?: ProviderSection;
}

const START_TIMEOUT_MS = 10_000;
const BODY_LIMIT = 64 * 1024;
/** How long a `disconnected` event waits for the media socket's close it may have overtaken. */
const RACE_MS = 2_500;

export const PROVIDER = 'vonage';

/** The Vonage adapter, for the list in ingress/adapters.ts. */
export function vonageAdapter(opts: VonageOptions): IngressAdapter {
  return { name: PROVIDER, mount: async (host) => mountVonage(host, opts) };
}

export async function mountVonage(host: IngressHost, deps: VonageOptions): Promise<MountedIngress & { tokens: StreamTokens; replay: ReplayCache; dialer: VonageDialer }> {
  const log = host.logger.child({ ingress: PROVIDER });
  const policy: JwtPolicy = { secret: deps.signatureSecret, allowUnsigned: deps.development };
  if (!deps.signatureSecret) {
    if (deps.development) log.warn('VONAGE_SIGNATURE_SECRET is not set: Vonage requests are NOT authenticated (development profile only)');
    else log.error('VONAGE_SIGNATURE_SECRET is not set: every Vonage request will be refused (403)');
  }
  const rate = deps.rate ?? 16000;
  const tokens = streamTokensFor(host, PROVIDER);
  const replay = new ReplayCache();
  const nonces = new WebhookNonces(host.records, PROVIDER);
  const conversations = new ConversationIndex(host.store);
  const stored = storedAccounts(host.store, () => loadOrCreateMasterKey(host.dataDir), PROVIDER, log);
  const dialer = new VonageDialer({ calls: host.calls, accounts: vonageAccounts(deps.accounts ?? { apiBase: null, accounts: [] }, PROVIDER), stored, apiBase: deps.accounts?.apiBase ?? null, publicUrl: deps.publicUrl, provider: PROVIDER, log });
  const httpUrl = (path: string): string => `${deps.publicUrl}${path}`;
  const wsUrl = (path: string): string => httpUrl(path).replace(/^http/, 'ws');

  const refuse = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply => reply.code(status).send({ error: { code, message } });
  /** The signature check, then the durable `jti` claim (a replay after a restart is refused too). */
  const verify = async (authorization: string | string[] | undefined, body: Buffer | null): Promise<JwtVerdict | { ok: false; status: 403 | 503; reason: string }> => {
    if (policy.secret) await loadJsonwebtoken();
    const verdict = verifyVonageRequest(policy, authorization, body, replay);
    if (!verdict.ok || verdict.bypassed) return verdict;
    const claimed = await nonces.claim(verdict.claims.jti, replayWindowEnd(verdict.claims));
    return claimed.ok ? verdict : { ok: false, status: claimed.status, reason: `JWT ${claimed.reason}` };
  };
  const authenticate = async (req: FastifyRequest, reply: FastifyReply, body: Buffer): Promise<boolean> => {
    const verdict = await verify(req.headers.authorization, body);
    if (verdict.ok) {
      if (verdict.bypassed) log.warn({ url: req.url }, 'unsigned Vonage webhook accepted (development profile, no VONAGE_SIGNATURE_SECRET)');
      return true;
    }
    log.warn({ url: req.url.split('?')[0], reason: verdict.reason, ip: req.ip }, 'Vonage webhook refused');
    void refuse(reply, verdict.status, verdict.status === 403 ? 'forbidden' : 'unavailable', verdict.reason);
    return false;
  };
  const rawBody = (req: FastifyRequest): Buffer => (Buffer.isBuffer(req.body) ? req.body : Buffer.alloc(0));
  const jsonBody = (raw: Buffer): unknown => {
    try {
      return JSON.parse(raw.toString('utf8'));
    } catch {
      return undefined;
    }
  };
  const issues = (e: { issues: Array<{ path: PropertyKey[]; message: string }> }): string => e.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
  const ncco = (reply: FastifyReply, actions: NccoAction[]): FastifyReply => reply.code(200).type('application/json').send(JSON.stringify(actions));

  /** What Vonage runs next for a routing decision (answer, or a resume after the socket dropped). */
  const nccoFor = (decision: InboundDecision, callUuid: string, conversationUuid: string | null, to: string): NccoAction[] => {
    switch (decision.kind) {
      case 'rejected':
        log.info({ uuid: callUuid, to }, 'call rejected: unknown number');
        return unknownNumberNcco();
      case 'busy':
        log.warn({ uuid: callUuid, to, reason: decision.reason }, 'call refused: this node is at its limit');
        return busyNcco();
      case 'ended':
        return endedNcco();
      case 'transfer':
        log.info({ uuid: callUuid, call: decision.callId, target: decision.target }, 'call transferred');
        return transferNcco(decision.target);
      case 'accepted': {
        if (conversationUuid) conversations.remember(conversationUuid, callUuid);
        // The conversation rides in the token: the media socket may land on another node, which never saw this answer.
        const token = tokens.issue({ tenant: decision.tenant, callId: decision.callId, providerCallId: callUuid, ...(conversationUuid ? { session: conversationUuid } : {}) });
        log.info({ uuid: callUuid, call: decision.callId, resumed: decision.resumed }, decision.resumed ? 'call resuming' : 'call answered');
        return streamNcco({ mediaUrl: wsUrl('/vonage/media'), eventUrl: httpUrl('/vonage/event'), token, rate, from: to });
      }
    }
  };

  /** Resolves true once the call has no live media on this node, false if it still has after `RACE_MS`. */
  const mediaLost = async (callId: string): Promise<boolean> => {
    for (let waited = 0; host.calls.mediaLive(callId); waited += 50) {
      if (waited >= RACE_MS) return false;
      await new Promise((r) => setTimeout(r, 50));
    }
    return true;
  };

  /** Answers to `disconnected` already given, per media leg uuid: a retried event gets the same NCCO. */
  const resumeAnswers = new Map<string, { at: number; actions: NccoAction[] }>();
  const rememberAnswer = (legUuid: string, actions: NccoAction[]): void => {
    const now = Date.now();
    for (const [k, v] of resumeAnswers) if (now - v.at > 60_000) resumeAnswers.delete(k);
    resumeAnswers.set(legUuid, { at: now, actions });
  };

  const routes = async (scope: FastifyInstance): Promise<void> => {
    // Raw bytes for every content type: the JWT's payload_hash is over the body as sent.
    scope.removeAllContentTypeParsers();
    scope.addContentTypeParser('*', { parseAs: 'buffer', bodyLimit: BODY_LIMIT }, (_req, body, done) => done(null, body));

    const answer = async (req: FastifyRequest, reply: FastifyReply): Promise<FastifyReply> => {
      const raw = rawBody(req);
      if (!(await authenticate(req, reply, raw))) return reply;
      const params = req.method === 'GET' ? req.query : jsonBody(raw);
      if (params === undefined) return refuse(reply, 400, 'invalid_json', 'the answer webhook body is not JSON');
      const parsed = AnswerParams.safeParse(params);
      if (!parsed.success) return refuse(reply, 400, 'invalid_params', issues(parsed.error));
      const p = parsed.data;
      const to = phoneNumber(p.to);
      // The answer webhook of a call we are placing can overtake the create's response: wait for its row.
      if (!host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: p.uuid })) await dialer.settled();
      const decision = await host.calls.receive({ provider: PROVIDER, providerCallId: p.uuid, from: phoneNumber(p.from), to }, 'vonage:answer');
      return ncco(reply, nccoFor(decision, p.uuid, p.conversation_uuid, to));
    };
    scope.get('/vonage/answer', answer);
    scope.post('/vonage/answer', answer);

    scope.post('/vonage/event', async (req, reply) => {
      const raw = rawBody(req);
      if (!(await authenticate(req, reply, raw))) return reply;
      const body = jsonBody(raw);
      if (body === undefined) return refuse(reply, 400, 'invalid_json', 'the event webhook body is not JSON');
      const parsed = EventBody.safeParse(body);
      if (!parsed.success) return refuse(reply, 400, 'invalid_params', issues(parsed.error));
      const e = parsed.data;
      if (!host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: e.uuid })) await dialer.settled();
      const read = host.store.read(null);
      // The caller's own leg: its final status ends the call (idempotent; late or repeated events are no-ops).
      const own = read.calls.findOne({ provider: PROVIDER, provider_call_id: e.uuid });
      if (own) {
        if (e.conversation_uuid) conversations.remember(e.conversation_uuid, e.uuid);
        if (FINAL_STATUSES.has(e.status)) {
          await host.calls.end({ tenant: own.tenant, callId: own.id }, `vonage:${e.status}`, { caller: 'vonage:event', id: `vonage:event:${e.uuid}:final` });
        }
        const by = answeredByOf(e.status);
        if (by !== null) {
          const evidence = { status: e.status, ...(typeof e.sub_state === 'string' ? { sub_state: e.sub_state } : {}), ...(e.timestamp ? { timestamp: e.timestamp } : {}) };
          const r = await host.calls.answeredBy({ tenant: own.tenant, callId: own.id }, { by, source: 'provider', evidence }, { caller: 'vonage:event', id: `vonage:amd:${e.uuid}` });
          if (!r.ok) log.warn({ uuid: e.uuid, code: r.code }, 'machine detection not recorded');
        }
        return reply.code(204).send();
      }
      // Another leg of a known conversation: our media socket's leg.
      const callUuid = e.conversation_uuid ? conversations.callUuid(e.conversation_uuid) : null;
      const call = callUuid ? read.calls.findOne({ provider: PROVIDER, provider_call_id: callUuid }) : undefined;
      if (!call) {
        log.info({ uuid: e.uuid, status: e.status }, 'event for an unknown call ignored');
        return reply.code(204).send();
      }
      if (e.status !== 'disconnected') return reply.code(204).send();
      // Synchronous: the media socket dropped (this node died, network, our own close). Vonage runs what we answer.
      const again = resumeAnswers.get(e.uuid);
      if (again) return ncco(reply, again.actions);
      // A resume only for lost media: Vonage's event can overtake the socket's close by a moment, so wait for it;
      // if the call's media still flows here, the event is about another socket and changes nothing.
      if (!(await mediaLost(call.id))) {
        log.warn({ uuid: e.uuid, call: call.id }, 'disconnected event for a call whose media socket is live: no resume');
        return reply.code(204).send();
      }
      host.calls.detachLost(call.id, 'media silent: Vonage reported the socket disconnected');
      const decision = await host.calls.receive({ provider: PROVIDER, providerCallId: call.provider_call_id, from: call.from_uri, to: call.to_uri }, 'vonage:event');
      const actions = nccoFor(decision, call.provider_call_id, e.conversation_uuid ?? null, call.to_uri);
      rememberAnswer(e.uuid, actions);
      return ncco(reply, actions);
    });
  };
  await host.http.register(routes);

  // Messages up to 1 MiB are read and validated (an oversized audio message is dropped, the call goes on);
  // beyond that the socket is closed (1009) and Vonage's synchronous event resumes the call on a fresh socket.
  // The ws package comes in the background once the gateway listens (`warm`, http/ws-server.ts).
  const wss = new LazyWebSocketServer({ maxPayload: 1024 * 1024 });
  host.http.onUpgrade('/vonage/media', (req: http.IncomingMessage, socket: Duplex, head: Buffer) => {
    void verify(req.headers.authorization, null).then((verdict) => {
      if (socket.destroyed) return;
      if (!verdict.ok) {
        log.warn({ reason: verdict.reason }, 'Vonage media upgrade refused');
        return refuseUpgrade(socket, verdict.status, verdict.reason);
      }
      if (verdict.bypassed) log.warn('unsigned Vonage media socket accepted (development profile, no VONAGE_SIGNATURE_SECRET)');
      wss.handleUpgrade(req, socket, head, (ws) => acceptStream(ws), (err) => {
        log.error({ err }, 'loading the ws package failed');
        refuseUpgrade(socket, 503, 'WebSocket support is not available');
      });
    });
  });

  /** Waits for `websocket:connected`, checks its content-type and one-time token, then hands a VonageLeg over. */
  const acceptStream = (ws: WebSocket): void => {
    const timer = setTimeout(() => ws.close(1008, 'no websocket:connected'), START_TIMEOUT_MS);
    const onMessage = guardMessages(ws, (err) => log.error({ err }, 'media socket message handler failed: socket closed (1011)'), (data, isBinary) => {
      if (isBinary) return void log.warn('audio before websocket:connected ignored');
      const parsed = parseText(rawText(data));
      if (!parsed.ok) return void log.warn({ error: parsed.error }, 'malformed message before websocket:connected');
      const msg = parsed.msg;
      if (msg.event !== 'websocket:connected') return void log.warn({ event: msg.event }, 'message before websocket:connected ignored');
      clearTimeout(timer);
      ws.off('message', onMessage);
      const legRate = l16Rate(msg['content-type']);
      // The token is checked through the store (its nonce claimed in the log): audio arriving meanwhile is kept
      // and handed to the leg, so the caller's first words are not lost to the check.
      const early = holdEarly(ws);
      void tokens.consume(connectedToken(msg)).then((verdict) => {
        const held = early.release();
        if (ws.readyState !== ws.OPEN) return;
        if (!verdict.ok) {
          log.warn({ reason: verdict.reason }, 'media socket with an invalid or used token refused');
          return ws.close(verdict.unavailable ? 1011 : 1008, 'invalid stream token');
        }
        const grant = verdict.grant;
        if (!legRate) {
          log.warn({ contentType: msg['content-type'] }, 'media socket with an unsupported content-type refused');
          return ws.close(1003, 'unsupported content-type');
        }
        if (host.calls.mediaLive(grant.callId)) {
          // The caller's socket is flowing: a second one must not take the call over.
          log.warn({ call: grant.callId }, 'second media socket for a call whose socket is live refused');
          return ws.close(1008, 'call already has a live media socket');
        }
        const conversationUuid = grant.session ?? conversations.conversationOf(grant.providerCallId);
        if (grant.session) conversations.remember(grant.session, grant.providerCallId);
        const leg = new VonageLeg(ws, { rate: legRate, session: conversationUuid ?? randomUUID(), callUuid: grant.providerCallId, conversationUuid });
        for (const [data, isBinary] of held) ws.emit('message', data, isBinary);
        host.calls.attach({ tenant: grant.tenant, callId: grant.callId }, leg).catch((err: unknown) => {
          log.warn({ err, call: grant.callId }, 'media attach refused');
        });
      });
    });
    ws.on('message', onMessage);
    // A protocol error (an oversized frame: 1009, bad UTF-8: 1007) is emitted as 'error' and ws closes the socket
    // itself; without a listener the 'error' would be thrown and end the process.
    ws.on('error', (err) => log.warn({ err: err.message }, 'media socket error before websocket:connected: socket closed'));
    ws.on('close', () => clearTimeout(timer));
  };

  return { tokens, replay, dialer, warm: async () => void (await Promise.all([loadJsonwebtoken(), loadWs()])), close: async () => wss.close() };
}
