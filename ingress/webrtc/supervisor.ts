/**
 * Browser legs that join a live call rather than placing one (issue 16: a supervisor in the console): the same
 * WHIP-style answer as a call's (peer.ts, sdp.ts), but the connected leg goes to whoever asked (bridge/supervisor-desk.ts
 * through `MountedIngress.browserLegs`), never to call control as a call of its own.
 *
 *   answer(offer) ─► SDP answer + the leg's description (session `wsup_…`, Opus at 16 kHz)
 *                └► leg: the WebrtcLeg once the browser connects (within CONNECT_TIMEOUT_MS), else null (peer closed)
 */
import crypto from 'node:crypto';
import type { Logger } from 'pino';
import { OfferError, type BrowserLegOffer, type BrowserLegs } from '../port.ts';
import type { WebrtcConfig } from './config.ts';
import { OPUS_RATE } from './opus-format.ts';
import { checkOffer } from './sdp.ts';
import { CONNECT_TIMEOUT_MS, loadLeg } from './sessions.ts';

export function webrtcBrowserLegs(cfg: WebrtcConfig, log: Logger, opusComplexity?: number): BrowserLegs {
  return {
    async answer(offer: string): Promise<BrowserLegOffer> {
      const check = checkOffer(offer);
      if (!check.ok) throw new OfferError(check.reason);
      const { PeerError, WebrtcPeer } = await import('./peer.ts');
      let negotiated: Awaited<ReturnType<typeof WebrtcPeer.answer>>;
      try {
        negotiated = await WebrtcPeer.answer(offer, cfg, log);
      } catch (err) {
        if (err instanceof PeerError) throw new OfferError(err.message);
        throw err;
      }
      const { peer, answer } = negotiated;
      const session = `wsup_${crypto.randomBytes(24).toString('base64url')}`;
      let ended = false;
      const leg = (async () => {
        const ok = await peer.connected(CONNECT_TIMEOUT_MS);
        if (!ok || ended) {
          peer.close();
          log.warn({ session, state: peer.state }, 'supervisor peer did not connect');
          return null;
        }
        const { WebrtcLeg } = await loadLeg();
        const l = new WebrtcLeg(peer, { session, offer: check.offer, callEnded: () => true, ...(opusComplexity === undefined ? {} : { opusComplexity }) });
        log.info({ session }, 'supervisor peer connected');
        return l;
      })();
      return {
        answer,
        description: { provider: 'webrtc', session, codec: 'opus', inputRate: OPUS_RATE },
        leg,
        cancel: () => {
          ended = true;
          peer.close();
        },
      };
    },
  };
}
