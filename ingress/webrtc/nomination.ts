/**
 * Media follows the browser's latest nomination (the pair it selected).
 *
 * The gateway is the ICE-controlled side (ICE-lite without STUN servers): the
 * browser, which controls, picks the candidate pair and tells us with
 * USE-CANDIDATE on its checks (RFC 8445 §7.3.1.5, §8.1.1). A browser may pick
 * again: Chromium nominates its selected connection and, when it later prefers
 * another pair, nominates that one and from then on sends DTLS and SRTP only
 * there (with an ICE-lite peer it sets USE-CANDIDATE only on its selected,
 * writable connection). werift keeps the FIRST nominated pair for good and
 * sends everything of ours (DTLS, SRTP, SCTP) on it.
 *
 * That broke every browser call on a machine with a real interface: offered
 * 127.0.0.1 (SWITCHBOARD_WEBRTC_HOST_ADDRESSES) and the machine's address,
 * Chromium nominated the 127.0.0.1 pair first, then switched to the pair on the
 * machine's address; our DTLS answers kept leaving from 127.0.0.1, the
 * browser's DTLS never completed (`dtlsState: connecting`, nothing received)
 * and the call ended `webrtc: media never connected`. With one address offered
 * there is only one pair, which is why that worked.
 *
 * So: on every authenticated binding request carrying USE-CANDIDATE (the
 * MESSAGE-INTEGRITY checked with our ICE password and the USERNAME naming our
 * ufrag, which werift does not check on requests — an unauthenticated packet
 * must never move the media path), once that pair's checks succeeded, it
 * becomes the pair werift sends on (`connection.nominated`, read by werift
 * for each packet it sends). With full ICE (STUN configured) a pair whose
 * triggered check is still running is taken on the browser's next nominating
 * check, which Chromium repeats on its selected pair every few seconds.
 */
import { CandidatePairState, parseMessage, type CandidatePair, type Connection, type Message, type Protocol, type RTCPeerConnection } from 'werift';

export interface NominationLog {
  debug(obj: object, msg: string): void;
}

/** True when `msg` (raw `data`) is a binding request for us, signed with our ICE password, that nominates its pair. */
function authenticNomination(conn: Connection, msg: Message, data: Buffer): boolean {
  if (!msg.attributesKeys.includes('USE-CANDIDATE')) return false;
  const username = msg.getAttributeValue('USERNAME');
  if (typeof username !== 'string' || !username.startsWith(`${conn.localUsername}:`)) return false;
  return parseMessage(data, Buffer.from(conn.localPassword, 'utf8')) !== undefined;
}

function pairFor(conn: Connection, protocol: Protocol, addr: readonly [string, number]): CandidatePair | undefined {
  return conn.checkList.find((p) => p.protocol === protocol && p.remoteAddr[0] === addr[0] && p.remoteAddr[1] === addr[1]);
}

/**
 * Makes every ICE transport of `pc` send on the pair the controlling agent nominated last. Call it once the
 * local description is set (the host sockets exist) and before the answer leaves (no check can arrive earlier).
 */
export function followNominations(pc: RTCPeerConnection, log?: NominationLog): void {
  for (const transport of pc.iceTransports) {
    const conn = transport.connection as Connection;
    // werift keeps its sockets (one per local candidate) private; each is subscribed once.
    const protocols = (conn as unknown as { protocols: Protocol[] }).protocols;
    for (const protocol of protocols) {
      // Subscribed after werift's own handler, so a pair this request created or nominated already exists.
      protocol.onRequestReceived.subscribe((msg, addr, data) => {
        if (conn.iceControlling || !authenticNomination(conn, msg, data)) return;
        const pair = pairFor(conn, protocol, addr);
        if (!pair || pair.state !== CandidatePairState.SUCCEEDED || conn.nominated === pair || !conn.nominated) return;
        const from = conn.nominated;
        pair.nominated = true;
        conn.nominated = pair;
        log?.debug({ from: `${from.localCandidate.host} -> ${from.remoteAddr.join(':')}`, to: `${pair.localCandidate.host} -> ${addr.join(':')}` }, 'webrtc: the browser nominated another candidate pair; media follows it');
      });
    }
  }
}
