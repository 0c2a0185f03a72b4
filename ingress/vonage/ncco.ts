/**
 * NCCOs (Vonage Call Control Objects) the gateway answers with. JSON arrays of
 * actions, executed in order by Vonage.
 *
 *  - `streamNcco`: `connect` to our media WebSocket (`audio/l16;rate=16000`,
 *    the one-time token in the endpoint's `headers`, which Vonage hands back in
 *    `websocket:connected`; `authorization: {type: 'vonage'}` makes Vonage sign
 *    the opening handshake with a JWT) with `eventType: synchronous` and an
 *    `eventUrl`: when the socket drops, Vonage POSTs `disconnected` there and
 *    runs the NCCO we answer with — a fresh `streamNcco` — so the call resumes.
 *  - `unknownNumberNcco`: says so and ends (the NCCO runs out: Vonage hangs up).
 *  - `busyNcco`: the node is at its limit: says so and ends.
 *  - `transferNcco`: `connect` to a phone number or SIP URI (blind transfer).
 */

export type NccoAction = Record<string, unknown> & { action: string };

export interface StreamNccoOptions {
  /** wss://…/vonage/media */
  mediaUrl: string;
  /** https://…/vonage/event */
  eventUrl: string;
  token: string;
  rate: 8000 | 16000;
  /** The number the call came in on (shown as the websocket leg's `from`). */
  from?: string;
}

export function streamNcco(o: StreamNccoOptions): NccoAction[] {
  const connect: NccoAction = {
    action: 'connect',
    eventType: 'synchronous',
    eventUrl: [o.eventUrl],
    eventMethod: 'POST',
    endpoint: [
      {
        type: 'websocket',
        uri: o.mediaUrl,
        'content-type': `audio/l16;rate=${o.rate}`,
        headers: { token: o.token },
        authorization: { type: 'vonage' },
      },
    ],
  };
  if (o.from) connect.from = o.from.replace(/^\+/, '');
  return [connect];
}

export function unknownNumberNcco(): NccoAction[] {
  return [{ action: 'talk', text: 'The number you have called is not in service. Goodbye.' }];
}

/** This node is at its limit (bridge/admission.ts): the caller is told, the NCCO runs out, Vonage hangs up. */
export function busyNcco(): NccoAction[] {
  return [{ action: 'talk', text: 'All our lines are busy right now. Please call again in a few minutes. Goodbye.' }];
}

/** A call that has already ended: nothing more to run (Vonage hangs up). */
export function endedNcco(): NccoAction[] {
  return [];
}

export function transferNcco(target: string): NccoAction[] {
  const endpoint = /^sips?:/i.test(target) ? { type: 'sip', uri: target } : { type: 'phone', number: target.replace(/^\+/, '') };
  return [{ action: 'connect', endpoint: [endpoint] }];
}
