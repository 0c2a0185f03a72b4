/**
 * Twilio's side of call setup for the load worker: the signed POST
 * /twilio/voice (X-Twilio-Signature over URL + params, keep-alive agent) and
 * the <Stream> URL and token read from the TwiML; the signature header for the
 * WS upgrade.
 */
import http from 'node:http';
import twilio from 'twilio';

const agent = new http.Agent({ keepAlive: true, maxSockets: 16 });

export function closeAgent(): void {
  agent.destroy();
}

function post(url: string, params: Record<string, string>, authToken: string): Promise<{ status: number; body: string }> {
  const signature = twilio.getExpectedTwilioSignature(authToken, url, params);
  const body = new URLSearchParams(params).toString();
  return new Promise((resolve, reject) => {
    const headers = { 'content-type': 'application/x-www-form-urlencoded', 'content-length': Buffer.byteLength(body), 'x-twilio-signature': signature };
    const req = http.request(url, { method: 'POST', agent, timeout: 30_000, headers }, (res) => {
      let text = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (text += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: text }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end(body);
  });
}

const unxml = (s: string): string => s.replace(/&quot;/g, '"').replace(/&apos;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');

/** Rings the gateway for one inbound call; the stream to open, or why not. */
export async function ring(o: { baseUrl: string; authToken: string; to: string; callSid: string; from: string }): Promise<{ wsUrl: string; token: string } | { error: string }> {
  const params = { AccountSid: `AC${'0'.repeat(32)}`, ApiVersion: '2010-04-01', CallSid: o.callSid, CallStatus: 'ringing', Called: o.to, Caller: o.from, Direction: 'inbound', From: o.from, To: o.to };
  let res: { status: number; body: string };
  try {
    res = await post(`${o.baseUrl}/twilio/voice`, params, o.authToken);
  } catch (err) {
    return { error: `webhook: ${(err as Error).message}` };
  }
  if (res.status !== 200) return { error: `webhook HTTP ${res.status}` };
  const streamUrl = /<Stream[^>]*\surl="([^"]+)"/.exec(res.body)?.[1];
  const token = /<Parameter[^>]*\sname="token"[^>]*\svalue="([^"]*)"/.exec(res.body)?.[1];
  if (!streamUrl || token === undefined) return { error: 'twiml: no <Stream>' };
  return { wsUrl: unxml(streamUrl), token: unxml(token) };
}

/** Headers of the signed WS upgrade (signature over the stream URL, no params). */
export function upgradeHeaders(wsUrl: string, authToken: string): Record<string, string> {
  return { 'x-twilio-signature': twilio.getExpectedTwilioSignature(authToken, wsUrl, {}) };
}
