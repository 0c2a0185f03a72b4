/**
 * The supervisor desk of this node: the API's way into a live call's supervision (api/routes/supervise.ts). It writes
 * the supervision's rows as the user (bridge/call-facts.ts: the reducers check the `supervisor` permission, so a user
 * without it is refused and nothing is written), connects the supervisor's browser (an adapter's `browserLegs`:
 * ingress/webrtc/supervisor.ts) and hands the leg to the call's session (bridge/supervisor.ts).
 *
 *   join(user, call, offer)  ─► the call's media is here, nobody supervises it ─► SDP answer ─► call_supervisor_joined
 *                               ─► (the browser connects) session.supervision.attach ─► listen
 *                               └► (it never does) call_supervisor_left 'supervisor media never connected'
 *   mode(user, call, id, m)  ─► call_supervisor_mode_set ─► session.supervision.setMode (live)
 *   leave(user, call, id)    ─► call_supervisor_left ─► session.supervision.detach (two-party again, media closed)
 *
 * Errors are DeskError (status, code, message) for the route to answer with.
 */
import type { Logger } from 'pino';
import type { BrowserLegs } from '../ingress/port.ts';
import { OfferError } from '../ingress/port.ts';
import type { SwitchboardTables } from '../schema/index.ts';
import type { SupervisorMode } from '../schema/supervision.ts';
import type { Store } from '../store/index.ts';
import * as facts from './call-facts.ts';
import type { CallManager } from './call-manager.ts';

export class DeskError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
  }
}

export interface DeskDeps {
  store: Store<SwitchboardTables>;
  calls: Pick<CallManager, 'get'>;
  /** The adapter that takes browsers (null: none mounted, joins answer 503). */
  browser: () => BrowserLegs | null;
  logger: Logger;
}

/** Who acts: the user's tenant and caller (`user:…`). */
export interface DeskUser {
  tenant: string;
  caller: string;
}

function refused(r: { code: string; message: string }): DeskError {
  const status = r.code === 'forbidden' ? 403 : r.code.endsWith('_not_found') ? 404 : r.code.startsWith('invalid_') ? 422 : 409;
  return new DeskError(status, r.code, r.message);
}

export class SupervisorDesk {
  constructor(private readonly deps: DeskDeps) {}

  /** The supervisor joins call `callId` from a browser offering `offer`: the SDP answer and the supervision. */
  async join(user: DeskUser, callId: string, offer: string): Promise<{ supervision_id: string; leg_id: string; mode: string; sdp: string }> {
    const { store } = this.deps;
    const call = store.read(user.tenant).calls.get(callId);
    if (!call) throw new DeskError(404, 'call_not_found', 'no such call');
    if (call.state === 'ended') throw new DeskError(409, 'call_ended', 'the call has ended');
    const session = this.deps.calls.get(callId);
    if (!session || session.isClosed) throw new DeskError(409, 'call_not_live_here', "the call's media is not on this node (or not connected now)");
    const problem = session.supervision.joinProblem();
    if (problem) throw new DeskError(409, problem.code, problem.message);
    const browser = this.deps.browser();
    if (!browser) throw new DeskError(503, 'webrtc_unavailable', 'no WebRTC ingress is mounted');
    let offered;
    try {
      offered = await browser.answer(offer);
    } catch (err) {
      if (err instanceof OfferError) throw new DeskError(400, 'invalid_sdp', err.message);
      throw err;
    }
    const ref = { tenant: user.tenant, callId };
    const joined = await facts.supervisorJoined(store, ref, offered.description, user).catch((err: unknown) => {
      offered.cancel();
      throw err;
    });
    if (!joined.ok) {
      offered.cancel();
      throw refused(joined);
    }
    const id = joined.result.supervision_id;
    const log = this.deps.logger.child({ call: callId, supervision: id });
    void offered.leg.then(
      async (leg) => {
        const live = this.deps.calls.get(callId);
        if (leg && live && !live.isClosed) return live.supervision.attach(id, leg, user.caller);
        leg?.close('the call is no longer here');
        const r = await facts.supervisorLeft(store, ref, id, leg ? 'the call is no longer live here' : 'supervisor media never connected', { caller: 'media' });
        if (!r.ok && r.code !== 'supervision_ended') log.warn({ outcome: r }, 'supervisor leave not recorded');
      },
      (err: unknown) => log.warn({ err }, 'supervisor media failed'),
    );
    log.info({ by: user.caller }, 'supervisor joining');
    return { supervision_id: id, leg_id: joined.result.leg_id, mode: joined.result.mode, sdp: offered.answer };
  }

  /** Switches supervision `id` of call `callId` to `mode`. */
  async mode(user: DeskUser, callId: string, id: string, mode: SupervisorMode): Promise<{ supervision_id: string; mode: string; changed: boolean }> {
    this.own(user, callId, id);
    const r = await facts.supervisorModeSet(this.deps.store, { tenant: user.tenant, callId }, id, mode, user);
    if (!r.ok) throw refused(r);
    await this.deps.calls.get(callId)?.supervision.setMode(id, mode, user.caller);
    return { supervision_id: id, mode: r.result.mode, changed: r.result.changed };
  }

  /** Supervision `id` of call `callId` ends: the supervisor leaves. */
  async leave(user: DeskUser, callId: string, id: string): Promise<{ supervision_id: string; mode: string }> {
    this.own(user, callId, id);
    const r = await facts.supervisorLeft(this.deps.store, { tenant: user.tenant, callId }, id, 'the supervisor left', user);
    if (!r.ok) throw refused(r);
    await this.deps.calls.get(callId)?.supervision.detach(id, 'the supervisor left', user.caller);
    return { supervision_id: id, mode: r.result.mode };
  }

  /** The supervision is one of this call's (in the user's tenant): else 404. */
  private own(user: DeskUser, callId: string, id: string): void {
    const row = this.deps.store.read(user.tenant).call_supervisions.get(id);
    if (!row || row.call_id !== callId) throw new DeskError(404, 'supervision_not_found', 'no such supervision of this call');
  }
}
