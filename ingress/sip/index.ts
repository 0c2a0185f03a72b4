/**
 * SIP trunk ingress (RFC 3261 UAS over UDP + TCP on one port, TLS on another when configured, RTP from a port
 * range). Layered like SIP.js's core:
 *
 *   tls.ts (TLS listener, certificate reload, mutual TLS) ─┐
 *   transport.ts (UDP/TCP/TLS, framing, Via routing) ─► message.ts + headers.ts (grammar)
 *     ─► validate.ts (400/505/405/501/416/420/415/406) ─► admission.ts (rate limit, CIDR allowlist, digest auth
 *        with guess-throttle.ts; refusals sent statelessly)
 *     ─► transaction.ts (server transactions, timers)
 *     ─► uas.ts (matching, CANCEL, OPTIONS) ─► app.ts (calls: dialog.ts, sdp.ts + sdp-read.ts, rtp.ts, leg.ts;
 *        SDES-SRTP media: sdes.ts keys, srtp.ts werift SRTP with replay window, ROC and keys sealed for a restart,
 *        srtp-tag32.ts the 32-bit tag of AES_CM_128_HMAC_SHA1_32, srtp-call.ts re-offers)
 *
 * Sizes are bounded in transport.ts and message.ts before anything is parsed; every address and port a socket
 * is handed is checked where it enters (SDP in sdp-read.ts, Via routing in transport.ts, stored dialogs in
 * dialog.ts); timers and socket callbacks run under media/guard.ts, so a fault ends one call, never the node.
 *
 * Encryption policy per trunk/route (encryption-policy.ts, SWITCHBOARD_SIP_ENCRYPTION): app.ts `screen` refuses a
 * cleartext INVITE where TLS is required (403 + Warning, recorded as call_rejected).
 *
 * Cluster mode: takeover.ts takes the live SIP calls of a node that died (or stopped) over with a target-refresh
 * re-INVITE; resume.ts carries this node's own calls on after its restart.
 *
 * Outbound (agent-initiated) calls: uac.ts (INVITE through client-transaction.ts, digest answers from
 * outbound-config.ts / SWITCHBOARD_SIP_OUTBOUND; tel:/E.164 targets to the from-number's trunk, trunk-routes.ts) ─►
 * app.ts `adoptOutbound` once answered.
 */
import dgram from 'node:dgram';
import { IngressConfigError, IngressListenError, type IngressAdapter, type IngressHost, type MountedIngress } from '../port.ts';
import { PROVIDER, SipApp, type SipCallControl } from './app.ts';
import type { RtpTimeoutLimits } from './rtp-timeout.ts';
import { TrunkAdmission } from './admission.ts';
import { EncryptionPolicies } from './encryption-policy.ts';
import { SipTlsError, SipTlsListener, type SipTlsSettings } from './tls.ts';
import { OutboundConfig } from './outbound-config.ts';
import { RtpPortPool } from './rtp.ts';
import type { SipTimers } from './transaction.ts';
import { defaultTrunkConfig, loadNonceSecret, type TrunkConfig } from './trunk-config.ts';
import { SipUas, type UasHandler } from './uas.ts';
import { SipDialer } from './uac.ts';
import { sipTrunks, trunkFor } from './trunk-routes.ts';
import { storedAccounts, type ProviderSection } from '../provider-accounts.ts';
import { EarlyMediaRoutes } from './early-media.ts';
import { ReferRoutes } from './refer.ts';
import { loadOrCreateMasterKey } from '../../recording/master-key.ts';
import { loadWerift } from '../werift.ts';

/** The adapter's settings (new calls beyond the node's limits get 503 with Retry-After: host.calls). */
export interface SipOptions {
  host: string;
  /** SIP port (UDP and TCP); 0 = any free port. */
  port: number;
  rtpPorts: { low: number; high: number };
  /** Address for SDP/Contact when bound to 0.0.0.0 (SWITCHBOARD_SIP_ADVERTISE). */
  advertise?: string;
  /** Ring time between 180 Ringing and the answer (SWITCHBOARD_SIP_RING_MS), default 0. */
  ringMs?: number;
  /** Session timers (RFC 4028): the smallest Session-Expires accepted, seconds (SWITCHBOARD_SIP_MIN_SE), default 90. */
  minSe?: number;
  /** RTP inactivity (rtp-timeout.ts; SWITCHBOARD_SIP_RTP_TIMEOUT_MS, SWITCHBOARD_SIP_RTP_HOLD_TIMEOUT_MS): default 60 s, never while held. */
  rtpTimeout?: RtpTimeoutLimits;
  /** Early media (SWITCHBOARD_SIP_EARLY_MEDIA, early-media.ts): a WAV file, or KEY=FILE rules per route/trunk, played after 183 + SDP; absent = 180. */
  earlyMedia?: string;
  /** REFER per trunk and route (SWITCHBOARD_SIP_REFER, refer.ts): `transfer` sends blind transfers as REFER; absent = none. */
  refer?: string;
  timers?: Partial<SipTimers>;
  /**
   * Trunk admission settings (SWITCHBOARD_SIP_ALLOW, _USERS, _REALM, _RATE: trunk-config.ts) and outbound routes
   * (SWITCHBOARD_SIP_OUTBOUND); absent = the defaults (any source, no digest auth, 50 requests/s per source,
   * burst 100, no outbound credentials).
   */
  trunk?: TrunkConfig;
  /** Credentials for outbound calls (SWITCHBOARD_SIP_OUTBOUND, built by cli/config/); absent = none. */
  outbound?: OutboundConfig;
  /** Outbound calls: no final answer this long after the INVITE ─► CANCEL (SWITCHBOARD_SIP_DIAL_TIMEOUT_MS, default 60 s). */
  dialTimeoutMs?: number;
  /** Bind one RTP pair of the range before listening, so an unusable range stops the start (default true). */
  checkRtpRange?: boolean;
  /** SIP over TLS (SWITCHBOARD_SIP_TLS_*, tls.ts); absent = no TLS listener. */
  tls?: SipTlsSettings;
  /** TLS/SRTP policy per trunk and route (SWITCHBOARD_SIP_ENCRYPTION); absent = allow everything. */
  encryption?: EncryptionPolicies;
  /** SWITCHBOARD_PROVIDER_ACCOUNTS' sip section: the trunks that carry tel:/E.164 targets (trunk-routes.ts); absent = none. */
  accounts?: ProviderSection;
}

/**
 * The SIP adapter, for the list in ingress/adapters.ts. It listens on its own sockets (stage `sockets`); a bad
 * SWITCHBOARD_SIP_* setting is an IngressConfigError, a port or range that cannot be bound an IngressListenError.
 */
export function sipAdapter(opts: SipOptions): IngressAdapter {
  return {
    name: PROVIDER,
    stage: 'sockets',
    mount: async (host) => {
      if (opts.checkRtpRange !== false) await checkRtpRange(opts.rtpPorts, opts.host);
      try {
        return await mountSip(host, opts);
      } catch (err) {
        if (err instanceof IngressConfigError || err instanceof IngressListenError) throw err;
        if (err instanceof SipTlsError) throw new IngressConfigError(err.message);
        const message = (err as Error).message;
        // A bad SWITCHBOARD_SIP_* setting names itself; anything else is the listen failing.
        if (/SWITCHBOARD_SIP_/.test(message)) throw new IngressConfigError(message);
        throw new IngressListenError(err, 'SIP', `SIP port ${opts.port} on ${opts.host}`, 'SWITCHBOARD_SIP_PORT', opts.host, `SIP could not listen on ${opts.host}:${opts.port} (SWITCHBOARD_SIP_PORT): ${message}`);
      }
    },
  };
}

export interface SipIngress extends MountedIngress {
  port: number;
  app: SipApp;
  uas: SipUas;
  admission: TrunkAdmission;
  /** Outbound calls (POST /v1/calls). */
  dialer: SipDialer;
  /** The TLS listener (null: SWITCHBOARD_SIP_TLS_CERT unset). */
  tls: SipTlsListener | null;
  close(): Promise<void>;
}

/** What the SIP stack needs of its host: the port's host with call control narrowed to what SIP calls. */
export type SipHost = Pick<IngressHost, 'store' | 'logger' | 'dataDir'> & {
  calls: SipCallControl & Pick<IngressHost['calls'], 'dial' | 'answered'> & Partial<Pick<IngressHost['calls'], 'unavailableRetryAfter'>>;
};

export async function mountSip(host: SipHost, deps: SipOptions): Promise<SipIngress> {
  const log = host.logger.child({ ingress: PROVIDER });
  // Validated before anything listens: a bad setting stops the start naming its variable.
  const trunk = deps.trunk ?? defaultTrunkConfig({ host: deps.host, advertise: deps.advertise });
  const outbound = deps.outbound ?? OutboundConfig.empty();
  const trunks = sipTrunks(deps.accounts ?? { apiBase: null, accounts: [] }, PROVIDER);
  const stored = storedAccounts(host.store, () => loadOrCreateMasterKey(host.dataDir), PROVIDER, log);
  const admission = new TrunkAdmission(trunk, trunk.users ? loadNonceSecret(host.dataDir) : Buffer.alloc(0), log);
  const rtp = new RtpPortPool(deps.rtpPorts.low, deps.rtpPorts.high, deps.host);
  const app = new SipApp({
    store: host.store,
    calls: host.calls,
    logger: log,
    rtp,
    advertise: deps.advertise,
    ringMs: deps.ringMs,
    minSe: deps.minSe,
    rtpTimeout: deps.rtpTimeout,
    earlyMedia: EarlyMediaRoutes.parse(deps.earlyMedia),
    encryption: deps.encryption ?? EncryptionPolicies.none(),
    refer: ReferRoutes.parse(deps.refer),
    masterKey: () => loadOrCreateMasterKey(host.dataDir),
  });
  const handler: UasHandler = {
    admit: (v, peer) => admission.admit(v, peer, { inDialog: app.hasDialog(v) }),
    screen: (v, peer) => app.screen(v, peer),
    invite: (tx, v, peer) => app.invite(tx, v, peer),
    ack: (v) => app.ack(v),
    bye: (tx, v) => app.bye(tx, v),
    info: (tx, v) => app.info(tx, v),
    prack: (tx, v) => app.prack(tx, v),
    refer: (tx, v, peer) => app.refer(tx, v, peer),
    notify: (tx, v) => app.notify(tx, v),
    update: (tx, v) => app.update(tx, v),
    cancel: (tx) => app.cancel(tx),
    unavailable: () => host.calls.unavailableRetryAfter?.() ?? null,
  };
  const uas = await SipUas.start({ host: deps.host, port: deps.port, timers: deps.timers, logger: log, handler });
  let tls: SipTlsListener | null = null;
  try {
    if (deps.tls) tls = await SipTlsListener.listen(deps.tls, deps.host, uas.transport, log);
  } catch (err) {
    await uas.close();
    if (err instanceof SipTlsError) throw err;
    throw new IngressListenError(err, 'SIP TLS', `SIP TLS port ${deps.tls?.port} on ${deps.host}`, 'SWITCHBOARD_SIP_TLS_PORT', deps.host, `SIP over TLS could not listen on ${deps.host}:${deps.tls?.port} (SWITCHBOARD_SIP_TLS_PORT): ${(err as Error).message}`);
  }
  app.bind(uas);
  const dialer = new SipDialer({ store: host.store, calls: host.calls, uas, app, rtp, config: outbound, logger: log, ringTimeoutMs: deps.dialTimeoutMs, trunkFor: (tenant, from) => trunkFor(trunks, tenant, from, stored) });
  app.outboundEarly = { has: (v) => dialer.hasEarly(v), update: (tx, v) => dialer.earlyUpdate(tx, v) };
  const resumed = await app.resumeDialogs();
  await dialer.endInterrupted();
  app.startTakeover();
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
      trunks: trunks.length,
      tls: tls ? `${tls.port}${tls.mutual ? ' (mutual)' : ''}` : 'off',
      encryption: (deps.encryption ?? EncryptionPolicies.none()).describe(),
    },
    `SIP listening on udp+tcp ${deps.host}:${uas.port}${tls ? `, tls ${tls.port}` : ''}`);
  let closing: Promise<void> | null = null;
  return {
    port: uas.port,
    app,
    uas,
    admission,
    dialer,
    tls,
    // The SRTP ciphers (werift) are loaded on first use; warm() starts that once the gateway listens.
    warm: async () => void (await loadWerift()),
    close: () =>
      (closing ??= (async () => {
        tls?.close();
        await dialer.close();
        app.close();
        await uas.close();
      })()),
  };
}

function bindUdp(port: number, host: string): Promise<dgram.Socket> {
  return new Promise((resolve, reject) => {
    const socket = dgram.createSocket(host.includes(':') ? 'udp6' : 'udp4');
    socket.once('error', (err) => {
      socket.close();
      reject(err);
    });
    socket.bind(port, host, () => {
      socket.removeAllListeners('error');
      resolve(socket);
    });
  });
}

/**
 * Proves the RTP range usable: RTP ports are bound per call, so nothing would notice an unusable range until the
 * first SIP call. Binds the first free even/odd pair of `low`–`high` on `host`, then releases it; throws an
 * IngressListenError (SWITCHBOARD_RTP_PORTS) for the last failure when no pair can be bound.
 */
export async function checkRtpRange(range: { low: number; high: number }, host: string): Promise<void> {
  let last: unknown = null;
  for (let port = range.low; port + 1 <= range.high; port += 2) {
    try {
      const rtp = await bindUdp(port, host);
      try {
        const rtcp = await bindUdp(port + 1, host);
        rtcp.close();
        return;
      } finally {
        rtp.close();
      }
    } catch (err) {
      last = err;
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE' && (err as NodeJS.ErrnoException).code !== 'EACCES') break;
    }
  }
  const span = `${range.low}-${range.high}`;
  throw new IngressListenError(last, 'RTP', `every RTP port pair in ${span} on ${host}`, 'SWITCHBOARD_RTP_PORTS', host, `SWITCHBOARD_RTP_PORTS ${span}: no RTP port pair can be bound on ${host}`);
}
