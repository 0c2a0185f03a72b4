/**
 * The ingress port: what every provider adapter (ingress/<provider>/) implements, and the host it is mounted on —
 * all an adapter may rely on. The gateway (cli/gateway.ts) mounts the list of adapters in ingress/adapters.ts in
 * order and closes them in reverse order at shutdown; a test may add its own (test/fixtures/fake-provider/).
 *
 *   IngressAdapter.mount(host) ──► MountedIngress (close; optional capabilities such as an outbound dialer)
 *        │
 *        ├─ host.http     routes and WebSocket upgrades on the gateway's HTTP server (before it listens)
 *        ├─ host.calls    call control (bridge/call-control.ts): receive, attach media, end, dial, hold, resume …
 *        │                — the only way an adapter changes a call; it never writes a call fact itself
 *        ├─ host.store    a read view of the tables, for lookups (a call by provider id, a number)
 *        ├─ host.records  the few facts an adapter writes that are not about a call (webhook nonces, …)
 *        ├─ host.grants   scoped read grants for the subscription socket (a softphone reading its own call)
 *        ├─ host.logger   pino; the adapter makes its child (`{ ingress: name }`)
 *        └─ host.dataDir  the gateway's data dir (keys the adapter keeps, e.g. a nonce secret)
 *
 * An adapter's own settings are a typed object given to its factory (ingress/adapters.ts builds them), never
 * the process environment read from inside the adapter.
 *
 * Provider names live in ingress/<provider>/ only: the core (bridge/, media/, recording/ …) never branches on
 * one. An adapter's `name` is what the store records as a call's `provider` (schema/tables.ts: ProviderName).
 */
import type { FastifyInstance } from 'fastify';
import type { Logger } from 'pino';
import type { CallControl } from '../bridge/call-control.ts';
import type { CallLeg, LegDescription } from '../media/call-leg.ts';
import type { GrantResolver } from '../http/grants.ts';
import type { UpgradeHandler } from '../http/server.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { AmdRequest } from '../schema/amd-requests.ts';
import type { ArgsOf, Receipt, ResultOf, Store } from '../store/index.ts';
import type { consent_policy_created, number_added, transcript_accessed, webhook_nonce_claimed } from '../schema/reducers.ts';

/** The gateway's HTTP server, as an adapter sees it. */
export interface HttpRoutes {
  /**
   * Registers routes in their own fastify scope (a content-type parser set there stays there; form bodies and
   * cookies are parsed already). Only during `mount` of a `routes`-stage adapter: the server has not listened yet.
   */
  register(plugin: (scope: FastifyInstance) => Promise<void>): Promise<void>;
  /**
   * Takes the WebSocket upgrades of `path`. The handler verifies the request before accepting (refuse with
   * `refuseUpgrade`, http/server.ts) and must not throw.
   */
  onUpgrade(path: string, handler: UpgradeHandler): void;
}

/** A read view of the store: lookups only (`read(null)` spans tenants). */
export interface IngressStore {
  read: Store<SwitchboardTables>['read'];
  /** This node's name (a call's `owner_node`). */
  readonly node: string;
}

/** Facts an adapter may write itself: none is about a call (those go through `host.calls`). */
export type IngressRecord = typeof webhook_nonce_claimed | typeof transcript_accessed | typeof consent_policy_created | typeof number_added;

export interface IngressRecords {
  submit<D extends IngressRecord>(reducer: D, args: ArgsOf<D>, who: { tenant: string; caller: string; id?: string }): Promise<Receipt<ResultOf<D>>>;
}

/** What a mounted adapter may rely on (see the header). */
export interface IngressHost {
  readonly http: HttpRoutes;
  readonly calls: CallControl;
  readonly store: IngressStore;
  readonly records: IngressRecords;
  readonly grants: { addGrantResolver(resolver: GrantResolver): void };
  readonly logger: Logger;
  readonly dataDir: string;
}

/** A request for an outbound call (POST /v1/calls). */
export interface DialRequest {
  tenant: string;
  /** Who asks (`user:<id>`): the store checks `calls:originate`. */
  caller: string;
  /** One of the tenant's numbers. */
  from: string;
  /** The target, in the dialer's addressing (a sip: URI for SIP; E.164 or tel: for a telephone provider). */
  to: string;
  agent?: string | null;
  /** Answering-machine detection on the answered call (bridge/amd-stage.ts; a provider with its own asks it too); absent = none. */
  amd?: AmdRequest;
}

/** A placed call: its row, and the provider's id of it (`sipCallId`: the same id, SIP's name for it, kept for callers of the SIP dialer). */
export interface DialResult {
  callId: string;
  providerCallId: string;
  sipCallId?: string;
}

/** A dial refused before anything was sent; `status` is the HTTP status it maps to. */
export class DialError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

/**
 * Outbound calling, offered by an adapter that can place calls (SIP, a telephone provider's REST API). Which one
 * places a call is the from-number's provider (ingress/dial-router.ts).
 */
export interface OutboundDialer {
  /** Places the call; resolves once its row exists (`ringing`), with the provider's id of it. Throws DialError. */
  dial(req: DialRequest): Promise<DialResult>;
  /** Gives up a call it is still dialling (SIP: CANCEL); true when it was one of its calls. Absent: not possible. */
  cancel?(callId: string, reason: string): boolean;
  /** Why `to` is not a target this dialer can call (in words, for a 400), or null. */
  targetProblem(to: string): string | null;
  /** How the targets it dials begin (`sip:`, `tel:`, `+`): whose words explain a target nobody takes. */
  readonly prefixes?: readonly string[];
  /** Whether this dialer can place a call from `from` of `tenant` (it has an account for it); absent = always. */
  serves?(tenant: string, from: string): boolean;
  /**
   * Checks the credentials of an account of this provider before they are stored (their form, and the provider's
   * API where it has one); resolves with what may be shown of them (no secret); throws DialError 400
   * `invalid_credentials` saying what is wrong (never the value). Absent: the adapter takes no account.
   */
  checkCredentials?(credentials: Readonly<Record<string, string>>): Promise<Record<string, string>>;
}

/** Checks credentials to be set for a provider's account with that provider's adapter (ingress/dial-router.ts). */
export interface AccountChecker {
  checkAccount(provider: string, credentials: Readonly<Record<string, string>>): Promise<Record<string, string>>;
}

/** A browser's offer this adapter answered for a leg that is not a call of its own (a supervisor joining a call). */
export interface BrowserLegOffer {
  /** The SDP answer for the browser. */
  answer: string;
  /** What the leg row records (provider, media session, codec, rate), known before the media connects. */
  description: Pick<LegDescription, 'provider' | 'session' | 'codec' | 'inputRate'>;
  /** The leg once the browser's media connects, or null when it never did (the peer is closed then). */
  leg: Promise<CallLeg | null>;
  /** Gives up on it (the peer is closed). */
  cancel(): void;
}

/** Legs from browsers (WebRTC) that join an existing call instead of placing one: the supervisor's (issue 16). */
export interface BrowserLegs {
  /** Answers `offer` (an SDP offer); throws OfferError on an offer that cannot be answered. */
  answer(offer: string): Promise<BrowserLegOffer>;
}

/** An SDP offer that cannot be answered (400 invalid_sdp, with the reason). */
export class OfferError extends Error {}

/** A mounted adapter. */
export interface MountedIngress {
  /** Stops taking calls and frees sockets and timers (idempotent). Live calls are left for their resume. */
  close(): Promise<void>;
  /** Outbound calling, when the adapter can dial. */
  readonly dialer?: OutboundDialer;
  /** Browser legs joining a call (a supervisor), when the adapter takes browsers. */
  readonly browserLegs?: BrowserLegs;
  /**
   * Loads, in the background, what the adapter imports on first use (heavy packages kept out of the start): called
   * once the gateway listens, so the restart does not wait for it and the first call usually does not either.
   */
  warm?(): Promise<void>;
}

/**
 * A setting of the adapter is wrong: the start stops with this one line (which names the variable). The gateway
 * shows it like any configuration error.
 */
export class IngressConfigError extends Error {}

/**
 * A socket of the adapter could not listen: the gateway turns a taken port, a missing privilege or an address
 * this machine lacks into one line naming `variable` (cli/listen-errors.ts); anything else is `fallback`.
 */
export class IngressListenError extends Error {
  constructor(
    readonly err: unknown,
    /** What listens, for the message: `SIP`, `RTP`. */
    readonly what: string,
    /** `SIP port 5060 on 127.0.0.1`, `every RTP port pair in 20000-20999 on 127.0.0.1`. */
    readonly where: string,
    readonly variable: string,
    readonly host: string,
    readonly fallback: string,
  ) {
    super(fallback);
  }
}

/** One provider adapter. */
export interface IngressAdapter {
  /** The provider's name: a call's `provider`, a number's provider, the `{ ingress }` of its log lines. */
  readonly name: string;
  /**
   * `routes` (default): mounted before the HTTP server listens — its routes and upgrades are in place when the
   * first request comes. `sockets`: the adapter listens on its own sockets (SIP) and uses no HTTP route; it is
   * mounted once HTTP listens, so a taken HTTP port is reported first and its sockets are not bound for nothing.
   */
  readonly stage?: 'routes' | 'sockets';
  /** Mounts the adapter on `host`. A failure stops the start (IngressConfigError, IngressListenError or other). */
  mount(host: IngressHost): Promise<MountedIngress>;
}

/** Pattern every adapter name matches (schema/tables.ts accepts any such name as a call's provider). */
export const ADAPTER_NAME = /^[a-z][a-z0-9-]{1,31}$/;
