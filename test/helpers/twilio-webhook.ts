/**
 * One Twilio webhook request as Twilio makes it: form-encoded, signed with
 * X-Twilio-Signature (GET: over the URL with its query), TwilioProxy user agent,
 * an idempotency token shared by the retries of one request.
 */
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { performance } from 'node:perf_hooks';
import twilio from 'twilio';

export interface WebhookResponse { status: number; body: string; contentType: string }
export type WebhookOutcome = WebhookResponse | { error: string };

export function twilioSignatureHeader(authToken: string | null, url: string, params: Record<string, string>): Record<string, string> {
  return authToken === null ? {} : { 'X-Twilio-Signature': twilio.getExpectedTwilioSignature(authToken, url, params) };
}

export interface WebhookRequest {
  url: string;
  method: 'GET' | 'POST';
  params: Record<string, string>;
  idempotency: string;
  /** null: send no signature. */
  authToken: string | null;
  /** Sees the request (so its owner can abort it on close). */
  track?: (req: http.ClientRequest) => void;
}

/** Resolves with the response, or `{error: 'connection-refused'}` for a failure Twilio would retry. */
export function sendWebhook(o: WebhookRequest): Promise<WebhookOutcome> {
  const { url, method, params, idempotency } = o;
  return new Promise((resolve) => {
      const form = new URLSearchParams(params).toString();
      const target = method === 'GET' ? `${url}${url.includes('?') ? '&' : '?'}${form}` : url; // GET: signed URL only
      const headers: Record<string, string> = {
        'User-Agent': 'TwilioProxy/1.1', Accept: '*/*', 'I-Twilio-Idempotency-Token': idempotency,
        ...twilioSignatureHeader(o.authToken, target, method === 'GET' ? {} : params),
      };
      if (method === 'POST') Object.assign(headers, { 'Content-Type': 'application/x-www-form-urlencoded', 'Content-Length': String(Buffer.byteLength(form)) });
      const u = new URL(target);
      const req = (u.protocol === 'https:' ? https : http).request(u, { method, headers, agent: false, timeout: 15000 }, (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('error', (err) => resolve({ error: err.message }));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8'), contentType: res.headers['content-type'] ?? '' }));
      });
      o.track?.(req);
      req.on('timeout', () => req.destroy(new Error('timeout')));
      // A refused connection or one reset mid-request (the gateway died while answering) is a
      // connection failure, which Twilio retries; anything else is final.
      req.on('error', (err: NodeJS.ErrnoException) =>
        resolve({ error: err.code === 'ECONNREFUSED' || err.code === 'ECONNRESET' ? 'connection-refused' : err.message }),
      );
      req.end(method === 'POST' ? form : undefined);
  });
}

const RETRY_MS = 200;

/**
 * Webhooks as Twilio sends them for one call: a refused connection is retried
 * every 200 ms for `retryMs` with the same idempotency token; `close()` aborts
 * what is in flight and wakes every wait.
 */
export class WebhookSender {
  private readonly requests = new Set<http.ClientRequest>();
  private readonly sleeps = new Map<NodeJS.Timeout, () => void>();

  constructor(private readonly o: { authToken: string | null; retryMs: number }) {}

  async send(url: string, method: 'GET' | 'POST', params: Record<string, string>, stop: () => boolean): Promise<WebhookOutcome> {
    const deadline = performance.now() + this.o.retryMs;
    const idempotency = randomUUID(); // the same on every retry of one request
    for (;;) {
      const res = await sendWebhook({ url, method, params, idempotency, authToken: this.o.authToken, track: (req) => {
        this.requests.add(req);
        req.on('close', () => this.requests.delete(req));
      } });
      const left = deadline - performance.now();
      if (!('error' in res) || res.error !== 'connection-refused' || left <= 0 || stop()) return res;
      await this.sleep(Math.min(RETRY_MS, left));
    }
  }

  close(): void {
    for (const req of this.requests) req.destroy();
    for (const [t, wake] of this.sleeps) (clearTimeout(t), wake());
    this.sleeps.clear();
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((wake) => {
      const t = setTimeout(() => (this.sleeps.delete(t), wake()), ms);
      this.sleeps.set(t, wake);
    });
  }
}
