/**
 * WebRTC ingress (CONTRACT: WHIP-style, two-way):
 *
 *   POST   /webrtc/offer[?to=NUMBER | ?resume=TOKEN]   body: SDP offer (application/sdp)
 *          ─► 201 Created, Location: /webrtc/SESSION, X-Switchboard-Resume: TOKEN,
 *             X-Switchboard-Call: CALL ID, body: SDP answer (Opus + telephone-event, sendrecv)
 *          ─► 400 invalid_sdp (with the reason) · 404 unknown_number · 401 invalid_token · 410 call_ended
 *   DELETE /webrtc/:session                            ─► 204, the call ends
 *   GET    /webrtc/config                              ─► { iceServers } for browsers
 *   GET    /webrtc/directory                           ─► numbers open to browsers (provider webrtc)
 *   GET    /phone                                      ─► the softphone (api/phone.ts, mounted with the API)
 *   (browserLegs)                                      ─► a supervisor's browser joining a live call (supervisor.ts)
 *
 * With no `?to=` the call goes to the built-in `demo` number (demo.ts). A
 * resume re-routes the same call row through `routeInbound` (the call goes
 * `resuming`, then live again on the new peer connection), exactly like a
 * Twilio redirect. The session token also lets the softphone read its own
 * call's transcript over `WS /v1/subscribe` (a scoped grant; session-token.ts).
 *
 * Cluster mode: a resume needs nothing this node keeps in memory — the token
 * (its key derives from the recording master key every node is given) names
 * the tenant, call and session, and the call row comes from the log — so it
 * may land on any node through the load balancer. That node answers with its
 * own ICE candidates and claims the call when the media connects; while the
 * old owner's lease runs the claim is refused (`call_owned`), the peer is
 * closed and the SDK offers again until the lease has run out.
 *
 * peer.ts (and werift with it, ~1 s of CPU) is imported on the first offer, and leg.ts (with the Opus WASM) by the
 * first connected peer, not at start (ingress/werift.ts); `warm()` starts both imports in the background once the
 * gateway listens.
 */
import crypto from 'node:crypto';
import type { FastifyReply } from 'fastify';
import type { InboundDecision } from '../../bridge/call-control.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { OPERATOR_TENANT } from '../../schema/index.ts';
import type { IngressAdapter, IngressHost, MountedIngress } from '../port.ts';
import type { WebrtcConfig } from './config.ts';
import { DEMO_NUMBER, ensureDemoNumber } from './demo.ts';
import { checkOffer, MAX_SDP_BYTES } from './sdp.ts';
import { SessionTokens } from './session-token.ts';
import { loadLeg, WebrtcSessions } from './sessions.ts';
import { transcript_accessed } from '../../schema/reducers.ts';
import { webrtcBrowserLegs } from './supervisor.ts';

/**
 * The adapter's settings: SWITCHBOARD_WEBRTC_* (built by cli/config/: ICE servers, addresses, the demo switch, Opus
 * complexity; `SWITCHBOARD_WEBRTC_RESUME_GRACE_MS` the resume grace). New calls beyond the node's limits get 503
 * with Retry-After (host.calls); the session token is offered to the subscription socket (host.grants).
 */
export interface WebrtcOptions {
  /** SWITCHBOARD_WEBRTC_* (built by cli/config/). */
  config: WebrtcConfig;
}

export const PROVIDER = 'webrtc';

/** The WebRTC adapter, for the list in ingress/adapters.ts. */
export function webrtcAdapter(opts: WebrtcOptions): IngressAdapter {
  return { name: PROVIDER, mount: (host) => mountWebrtc(host, opts) };
}

const To = /^(\+[1-9]\d{1,14}|sips?:[^\s]{1,250}|[A-Za-z0-9._~-]{1,64})$/;
const SESSION = /^wrtc_[A-Za-z0-9_-]{32}$/;

/** peer.ts, imported on first use (it brings werift). */
const loadPeer = (): Promise<typeof import('./peer.ts')> => import('./peer.ts');

const problem = (reply: FastifyReply, status: number, code: string, message: string): FastifyReply => reply.code(status).send({ error: { code, message } });

export async function mountWebrtc(host: IngressHost, deps: WebrtcOptions): Promise<MountedIngress & { sessions: WebrtcSessions; tokens: SessionTokens }> {
  const log = host.logger.child({ ingress: PROVIDER });
  const cfg = deps.config;
  const tokens = new SessionTokens(loadOrCreateMasterKey(host.dataDir).key);
  const sessions = new WebrtcSessions({ store: host.store, calls: host.calls, logger: log, resumeGraceMs: cfg.resumeGraceMs, opusComplexity: cfg.opusComplexity });
  if (cfg.demo) {
    const demo = await ensureDemoNumber(host.store, host.records);
    if (demo.created) log.info({ number: DEMO_NUMBER }, 'created the demo number: a browser call without ?to= reaches the default agent (opt-in consent)');
    else if (demo.reason) log.warn({ reason: demo.reason }, 'demo number not created');
  }
  log.info({ iceLite: cfg.iceServers.length === 0, iceServers: cfg.iceServers.length, hostAddresses: cfg.hostAddresses }, 'webrtc ingress ready');

  host.grants.addGrantResolver((token) => {
    const claims = tokens.verify(token);
    if (!claims) return null;
    const { tenant, callId, session } = claims;
    return {
      tenant,
      expiresAt: claims.expiresAt,
      tables: { calls: { id: callId }, consents: { call_id: callId }, transcript_segments: { call_id: callId } },
      audit: async (table) => {
        const r = await host.records.submit(
          transcript_accessed,
          { call_id: callId, detail: `live ${table} (softphone)`, purpose: 'the caller follows their own call', remote: null },
          { tenant, caller: `webrtc:${session}` },
        );
        if (!r.outcome.ok) throw new Error(r.outcome.error.message);
      },
    };
  });

  await host.http.register(async (scope) => {
    scope.addContentTypeParser('application/sdp', { parseAs: 'string', bodyLimit: MAX_SDP_BYTES }, (_req, body, done) => done(null, body));

    scope.post('/webrtc/offer', async (req, reply) => {
      const ctype = String(req.headers['content-type'] ?? '');
      if (!ctype.startsWith('application/sdp')) return problem(reply, 415, 'unsupported_media_type', 'the body must be an SDP offer with Content-Type: application/sdp');
      const check = checkOffer(req.body);
      if (!check.ok) return problem(reply, 400, 'invalid_sdp', check.reason);
      const q = req.query as { to?: unknown; resume?: unknown };
      let route: { session: string; from: string; to: string; resumed: boolean };
      if (q.resume !== undefined) {
        const claims = tokens.verify(typeof q.resume === 'string' ? q.resume : null);
        if (!claims) return problem(reply, 401, 'invalid_token', 'the resume token is not valid or has expired');
        const row = host.store.read(claims.tenant).calls.get(claims.callId);
        if (!row || row.provider !== PROVIDER || row.provider_call_id !== claims.session) return problem(reply, 404, 'call_not_found', 'no such call');
        if (row.state === 'ended') return problem(reply, 410, 'call_ended', `the call has ended (${row.end_reason ?? 'ended'})`);
        route = { session: claims.session, from: row.from_uri, to: row.to_uri, resumed: true };
      } else {
        const to = typeof q.to === 'string' && q.to.trim() !== '' ? q.to.trim() : DEMO_NUMBER;
        if (!To.test(to)) return problem(reply, 400, 'invalid_number', 'to: expected an E.164 number (+15551234567), a SIP URI or a number name');
        route = { session: `wrtc_${crypto.randomBytes(24).toString('base64url')}`, from: 'webrtc:browser', to, resumed: false };
      }
      const { PeerError, WebrtcPeer } = await loadPeer();
      let negotiated: Awaited<ReturnType<typeof WebrtcPeer.answer>>;
      try {
        negotiated = await WebrtcPeer.answer(req.body as string, cfg, log);
      } catch (err) {
        if (err instanceof PeerError) return problem(reply, 400, 'invalid_sdp', err.message);
        throw err;
      }
      const { peer, answer } = negotiated;
      let decision: InboundDecision;
      try {
        decision = await host.calls.receive({ provider: PROVIDER, providerCallId: route.session, from: route.from, to: route.to, source: req.ip }, 'webrtc:offer');
      } catch (err) {
        peer.close();
        throw err;
      }
      if (decision.kind !== 'accepted') {
        peer.close();
        if (decision.kind === 'rejected') return problem(reply, 404, 'unknown_number', `no agent answers ${route.to}`);
        if (decision.kind === 'ended') return problem(reply, 410, 'call_ended', 'the call has ended');
        if (decision.kind === 'busy') {
          reply.header('Retry-After', String(decision.retryAfterS));
          return problem(reply, 503, decision.reason, 'all lines are busy on this node; try again later');
        }
        return problem(reply, 409, 'transfer_unsupported', 'the call is being transferred, which a browser call cannot follow');
      }
      const token = tokens.issue({ tenant: decision.tenant, callId: decision.callId, session: route.session });
      void sessions.connect({ peer, offer: check.offer, session: route.session, tenant: decision.tenant, callId: decision.callId, resumed: decision.resumed });
      log.info({ call: decision.callId, session: route.session, resumed: decision.resumed, to: route.to }, decision.resumed ? 'webrtc call resuming' : 'webrtc call answered');
      return reply
        .code(201)
        .header('Location', `/webrtc/${route.session}`)
        .header('X-Switchboard-Resume', token)
        .header('X-Switchboard-Call', decision.callId)
        .header('Cache-Control', 'no-store')
        .type('application/sdp')
        .send(answer);
    });

    scope.delete('/webrtc/:session', async (req, reply) => {
      const { session } = req.params as { session: string };
      if (!SESSION.test(session)) return problem(reply, 404, 'session_not_found', 'no such session');
      const call = host.store.read(null).calls.findOne({ provider: PROVIDER, provider_call_id: session });
      if (!call) return problem(reply, 404, 'session_not_found', 'no such session');
      if (call.state !== 'ended') await sessions.hangup(call.tenant, call.id, session);
      return reply.code(204).send();
    });

    scope.get('/webrtc/config', async (_req, reply) => reply.header('Cache-Control', 'no-store').send({ iceServers: cfg.iceServers }));

    scope.get('/webrtc/directory', async (_req, reply) => {
      // Only the operator tenant's browser numbers are public; other tenants' numbers are never listed.
      const numbers = host.store
        .read(OPERATOR_TENANT)
        .numbers.find({ provider: PROVIDER })
        .map((n) => ({ number: n.number, agent: n.agent }))
        .sort((a, b) => (a.number === DEMO_NUMBER ? -1 : b.number === DEMO_NUMBER ? 1 : a.number.localeCompare(b.number)));
      return reply.header('Cache-Control', 'no-store').send({ numbers, default: DEMO_NUMBER });
    });
  });
  // A supervisor's browser joins a live call (supervisor.ts; the API's POST /v1/calls/:id/supervise asks).
  const browserLegs = webrtcBrowserLegs(cfg, log, cfg.opusComplexity);
  return { sessions, tokens, browserLegs, warm: async () => void (await Promise.all([loadPeer(), loadLeg()])), close: async () => sessions.close() };
}
