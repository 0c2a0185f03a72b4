/**
 * Scoped read grants for the subscription socket (`WS /v1/subscribe`, api/subscribe.ts): a token that is not an
 * API principal — e.g. a WebRTC softphone's session token — may be resolved to a narrow grant on its own call.
 * The type lives here, below api/ and ingress/, so an ingress adapter can offer a resolver (through its host,
 * ingress/port.ts) without importing the API.
 */
import type { Filter } from '../store/index.ts';

/** A narrow, non-session read grant (see api/subscribe.ts's header). */
export interface ScopedGrant {
  tenant: string;
  /** The only tables offered, each with the filter forced onto every subscription. */
  tables: Readonly<Record<string, Filter>>;
  expiresAt: number;
  /** Commits the access row before a content table's snapshot is sent; a rejection refuses the subscription. */
  audit?: (table: string) => Promise<void>;
}

/** Turns a presented token into a grant, or null when the token is not one of the resolver's. */
export type GrantResolver = (token: string) => ScopedGrant | null;
