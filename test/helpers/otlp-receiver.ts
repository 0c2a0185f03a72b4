/**
 * otlp-receiver: a TEST DOUBLE for an OpenTelemetry collector's OTLP/HTTP
 * trace endpoint. A loopback node http server that takes `POST /v1/traces`
 * with a JSON body (`application/json`, what @opentelemetry/exporter-trace-otlp-http
 * sends), answers 200 `{}` and keeps every body verbatim (`bodies`, for
 * "no content leaked" checks) and every span decoded (`spans`): ids in hex,
 * times in epoch ms, attributes flattened to plain values.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';

export interface ReceivedSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  startMs: number;
  endMs: number;
  attributes: Record<string, string | number | boolean>;
  events: Array<{ name: string; atMs: number }>;
  /** The resource's attributes (service.name, …). */
  resource: Record<string, string | number | boolean>;
}

export interface OtlpReceiver {
  /** For OTEL_EXPORTER_OTLP_ENDPOINT (no path: the exporter adds /v1/traces). */
  url: string;
  bodies: string[];
  spans: ReceivedSpan[];
  close(): Promise<void>;
}

type AnyValue = { stringValue?: string; intValue?: string | number; doubleValue?: number; boolValue?: boolean };
type KeyValue = { key: string; value: AnyValue };

function flatten(attrs: KeyValue[] | undefined): Record<string, string | number | boolean> {
  const out: Record<string, string | number | boolean> = {};
  for (const a of attrs ?? []) {
    const v = a.value;
    out[a.key] = v.stringValue ?? (v.intValue !== undefined ? Number(v.intValue) : (v.doubleValue ?? v.boolValue ?? ''));
  }
  return out;
}

const nanosToMs = (n: string | number | { low: number; high: number }): number =>
  typeof n === 'object' ? (n.high * 2 ** 32 + (n.low >>> 0)) / 1e6 : Number(BigInt(n) / 1000n) / 1000;

export async function startOtlpReceiver(): Promise<OtlpReceiver> {
  const bodies: string[] = [];
  const spans: ReceivedSpan[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const body = Buffer.concat(chunks).toString('utf8');
      if (req.method !== 'POST' || req.url !== '/v1/traces') return void res.writeHead(404).end();
      bodies.push(body);
      try {
        const parsed = JSON.parse(body) as { resourceSpans?: Array<{ resource?: { attributes?: KeyValue[] }; scopeSpans?: Array<{ spans?: Array<Record<string, unknown>> }> }> };
        for (const rs of parsed.resourceSpans ?? []) {
          const resource = flatten(rs.resource?.attributes);
          for (const ss of rs.scopeSpans ?? []) {
            for (const s of ss.spans ?? []) {
              spans.push({
                traceId: String(s.traceId),
                spanId: String(s.spanId),
                parentSpanId: String(s.parentSpanId ?? ''),
                name: String(s.name),
                startMs: nanosToMs(s.startTimeUnixNano as string),
                endMs: nanosToMs(s.endTimeUnixNano as string),
                attributes: flatten(s.attributes as KeyValue[] | undefined),
                events: ((s.events as Array<{ name: string; timeUnixNano: string }> | undefined) ?? []).map((e) => ({ name: e.name, atMs: nanosToMs(e.timeUnixNano) })),
                resource,
              });
            }
          }
        }
      } catch {
        return void res.writeHead(400).end();
      }
      res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const { port } = server.address() as AddressInfo;
  return {
    url: `http://127.0.0.1:${port}`,
    bodies,
    spans,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}
