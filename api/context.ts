/**
 * What every control-plane route shares: the store, the clock, the blob store
 * and keys, and three helpers that give every route the same edges —
 * `parse` (zod → 400 with the zod message), `submitAs` (a command as the
 * signed-in user; a rejection becomes the matching HTTP status) and
 * `HttpError` (the contract's `{ error: { code, message } }`).
 */
import type { Logger } from 'pino';
import type { z } from 'zod';
import type { AgentRegistry } from '../agents/registry.ts';
import type { DrainStart } from '../bridge/drain.ts';
import type { AccountChecker, OutboundDialer } from '../ingress/port.ts';
import type { MasterKey } from '../recording/crypto.ts';
import type { ContentSealer } from '../recording/content-seal.ts';
import type { ContentEraser } from '../bridge/content-erase.ts';
import type { SupervisorDesk } from '../bridge/supervisor-desk.ts';
import type { BlobStore } from '../recording/types.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import { StoreError, type ArgsOf, type ReducerHandle, type ResultOf, type Store } from '../store/index.ts';
import type { Principal } from './auth/principal.ts';
import { HttpError } from '../http/server.ts';

export { HttpError };

export interface ApiContext {
  store: Store<SwitchboardTables>;
  logger: Logger;
  blobs: BlobStore;
  master: MasterKey;
  /** Opens sealed content for reading (recording/content-seal.ts); absent = content is read as stored. */
  content?: ContentSealer;
  /** Erases a call's content (bridge/content-erase.ts); absent = erasure answers 503. */
  eraser?: ContentEraser;
  /** Wall clock (ms); outside reducers only. */
  now: () => number;
  ffmpegPath?: string;
  /** Public base URL, to decide whether cookies are `Secure`. */
  publicUrl: string;
  /** Deployed agent versions (deploy, rollback, live calls per version). */
  agents: AgentRegistry;
  /** Outbound calls (POST /v1/calls): the adapters' dialers behind one router (ingress/dial-router.ts), set once they listen; absent = 503. */
  dialer?: OutboundDialer & Partial<AccountChecker>;
  /** Names of the ingress adapters mounted (a number's `provider` must be one); absent = the built-in four. */
  providers?: readonly string[];
  /** Caches derived from the code (DATA_DIR/cache: the softphone bundle); absent = nothing is kept between starts. */
  cacheDir?: string;
  /** Draining this node (POST /v1/cluster/drain: bridge/drain.ts), set once the gateway listens; absent = 503. */
  drain?: { start(): Promise<DrainStart> };
  /** Campaigns (api/routes/campaigns.ts): the runner to wake and each provider's default calls per second; absent = campaigns are stored but not run. */
  campaigns?: { runner: { poke(): void }; callsPerSecond: Readonly<Record<string, number>> };
  /** Supervisors joining live calls (api/routes/supervise.ts, bridge/supervisor-desk.ts), set once the adapters are mounted; absent = 503. */
  supervise?: SupervisorDesk;
}

/** Validates `input` with `schema`; a failure is a 400 naming each bad field. */
export function parse<S extends z.ZodType>(schema: S, input: unknown): z.output<S> {
  const r = schema.safeParse(input ?? {});
  if (r.success) return r.data;
  const message = r.error.issues.map((i) => `${i.path.join('.') || '(body)'}: ${i.message}`).join('; ');
  throw new HttpError(400, 'invalid_request', message);
}

/** HTTP status for a reducer's rejection code. */
export function statusForRejection(code: string): number {
  if (code === 'forbidden') return 403;
  if (code.endsWith('_not_found')) return 404;
  if (code.endsWith('_exists')) return 409;
  if (code === 'locked_out') return 429;
  if (code.startsWith('invalid_')) return 422;
  return 409;
}

/**
 * Submits a command as `principal` in its tenant and returns the reducer's
 * result. A rejection becomes an HttpError with the reducer's code; a storage
 * failure is a retryable 503 (nothing was committed).
 */
export async function submitAs<D extends ReducerHandle>(
  ctx: ApiContext,
  principal: Pick<Principal, 'tenant' | 'caller'>,
  reducer: D,
  args: ArgsOf<D>,
  opts: { id?: string; tenant?: string } = {},
): Promise<ResultOf<D>> {
  let receipt;
  try {
    receipt = await ctx.store.submit(reducer, args, { tenant: opts.tenant ?? principal.tenant, caller: principal.caller, id: opts.id });
  } catch (err) {
    if (err instanceof StoreError && err.code === 'invalid_args') throw new HttpError(400, 'invalid_request', err.message);
    ctx.logger.error({ err, reducer: reducer.name }, 'command failed to commit');
    throw new HttpError(503, 'store_unavailable', 'the store could not commit the command; nothing was changed, retry later', { 'Retry-After': '1' });
  }
  if (!receipt.outcome.ok) {
    const { code, message } = receipt.outcome.error;
    throw new HttpError(statusForRejection(code), code, message);
  }
  return receipt.outcome.result;
}
