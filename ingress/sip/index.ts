/**
 * SIP trunk ingress (RFC 3261 UAS over UDP + TCP on one port, RTP from a port
 * range). Layered like SIP.js's core:
 *
 *   transport.ts (UDP/TCP, framing, Via routing) ─► message.ts + headers.ts (grammar)
 *     ─► validate.ts (400/505/405/501/416/420/415/406) ─► admission.ts (rate limit, CIDR allowlist, digest auth
 *        with guess-throttle.ts; refusals sent statelessly)
 *     ─► transaction.ts (server transactions, timers)
 *     ─► uas.ts (matching, CANCEL, OPTIONS) ─► app.ts (calls: dialog.ts, sdp.ts + sdp-read.ts, rtp.ts, leg.ts)
 *
 * Sizes are bounded in transport.ts and message.ts before anything is parsed; every address and port a socket
 * is handed is checked where it enters (SDP in sdp-read.ts, Via routing in transport.ts, stored dialogs in
 * dialog.ts); timers and socket callbacks run under media/guard.ts, so a fault ends one call, never the node.
 *
 * Outbound (agent-initiated) calls: uac.ts (INVITE through client-transaction.ts, digest answers from
 * outbound-config.ts / SWITCHBOARD_SIP_OUTBOUND) ─► app.ts `adoptOutbound` once answered.
 */
import type { Logger } from 'pino';
import type { SwitchboardTables } from '../../schema/index.ts';
import type { Store } from '../../store/index.ts';
import type { CallAdmission } from '../../bridge/admission.ts';
import type { RefusalLog } from '../../bridge/refusals.ts';
import { SipApp, type SipCallManager } from './app.ts';
import { TrunkAdmission } from './admission.ts';
import { OutboundConfig } from './outbound-config.ts';
import { RtpPortPool } from './rtp.ts';
import type { SipTimers } from './transaction.ts';
import { defaultTrunkConfig, loadNonceSecret, type TrunkConfig } from './trunk-config.ts';
import { SipUas, type UasHandler } from './uas.ts';
import { SipDialer } from './uac.ts';

export interface SipDeps {
  store: Store<SwitchboardTables>;
  calls: SipCallManager;
  /** New calls beyond this node's limits get 503 Service Unavailable with Retry-After (absent = no limits). */
  admission?: CallAdmission;
  /** Refused calls written at a bounded rate (absent: one `call_rejected` per refusal). */
  refusals?: RefusalLog;
  logger: Logger;
  host: string;
  /** SIP port (UDP and TCP); 0 = any free port. */
  port: number;
  rtpPorts: { low: number; high: number };
  /** Address for SDP/Contact when bound to 0.0.0.0 (SWITCHBOARD_SIP_ADVERTISE). */
  advertise?: string;
  /** Ring time between 180 Ringing and the answer (SWITCHBOARD_SIP_RING_MS), default 0. */
  ringMs?: number;
  timers?: Partial<SipTimers>;
  /**
   * Trunk admission settings (SWITCHBOARD_SIP_ALLOW, _USERS, _REALM, _RATE, built by cli/config/); absent = the
   * defaults (any source, no digest auth, 50 requests/s per source, burst 100).
   */
  trunk?: TrunkConfig;
  /** Credentials for outbound calls (SWITCHBOARD_SIP_OUTBOUND, built by cli/config/); absent = none. */
  outbound?: OutboundConfig;
  /** Outbound calls: no final answer this long after the INVITE ─► CANCEL (SWITCHBOARD_SIP_DIAL_TIMEOUT_MS, default 60 s). */
  dialTimeoutMs?: number;
  /** Where the digest nonce key is kept (sip-nonce.key), so nonces survive a restart; absent = per process. */
  dataDir?: string;
}

export interface SipIngress {
  port: number;
  app: SipApp;
  uas: SipUas;
  admission: TrunkAdmission;
  /** Outbound calls (POST /v1/calls). */
  dialer: SipDialer;
  close(): Promise<void>;
}

export async function mountSip(deps: SipDeps): Promise<SipIngress> {
  const log = deps.logger.child({ ingress: 'sip' });
  const trunk = deps.trunk ?? defaultTrunkConfig({ host: deps.host, advertise: deps.advertise });
  const outbound = deps.outbound ?? OutboundConfig.empty();
  const admission = new TrunkAdmission(trunk, trunk.users ? loadNonceSecret(deps.dataDir) : Buffer.alloc(0), log);
  const rtp = new RtpPortPool(deps.rtpPorts.low, deps.rtpPorts.high, deps.host);
  const app = new SipApp({
    store: deps.store,
    calls: deps.calls,
    ...(deps.admission ? { admission: deps.admission } : {}),
    ...(deps.refusals ? { refusals: deps.refusals } : {}),
    logger: log,
    rtp,
    advertise: deps.advertise,
    ringMs: deps.ringMs,
  });
  const handler: UasHandler = {
    admit: (v, peer) => admission.admit(v, peer, { inDialog: app.hasDialog(v) }),
    screen: (v, peer) => app.screen(v, peer),
    invite: (tx, v, peer) => app.invite(tx, v, peer),
    ack: (v) => app.ack(v),
    bye: (tx, v) => app.bye(tx, v),
    info: (tx, v) => app.info(tx, v),
    cancel: (tx) => app.cancel(tx),
  };
  const uas = await SipUas.start({ host: deps.host, port: deps.port, timers: deps.timers, logger: log, handler });
  app.bind(uas);
  const dialer = new SipDialer({ store: deps.store, uas, app, rtp, config: outbound, logger: log, ringTimeoutMs: deps.dialTimeoutMs });
  const resumed = await app.resumeDialogs();
  await dialer.endInterrupted();
  if (resumed) log.info({ resumed }, 'SIP calls carried on after restart');
  log.info(
    {
      port: uas.port,
      host: deps.host,
      rtp: `${deps.rtpPorts.low}-${deps.rtpPorts.high}`,
      allow: trunk.allow ? trunk.allow.blocks.join(',') : 'any',
      auth: trunk.users ? `digest (realm "${trunk.realm}", ${trunk.users.size} users)` : 'none',
      rate: trunk.rate ? `${trunk.rate.rate}/s burst ${trunk.rate.burst}` : 'off',
      outbound: outbound.describe(),
    },
    `SIP listening on udp+tcp ${deps.host}:${uas.port}`);
  let closing: Promise<void> | null = null;
  return {
    port: uas.port,
    app,
    uas,
    admission,
    dialer,
    close: () =>
      (closing ??= (async () => {
        await dialer.close();
        app.close();
        await uas.close();
      })()),
  };
}
