/**
 * The tracing port: what the gateway's core calls to record one trace per
 * call, with no dependency on OpenTelemetry. Disabled (the default), it is the
 * no-op below and the SDK is never loaded; with `OTEL_EXPORTER_OTLP_ENDPOINT`
 * set, cli/gateway.ts loads telemetry/otel.ts, which implements it with the
 * official `@opentelemetry/*` SDK and exports over OTLP/HTTP.
 *
 *   call:<id> (one per leg/session; all of a call's legs share one trace id,
 *   │          derived from the call id, so a resumed call stays one trace)
 *   └─ turn (agent turn: hook, turn number)
 *      ├─ stt          waiting for the utterance's final words
 *      ├─ agent        the agent's hook, dispatch to return
 *      │  ├─ llm       reported by the agent's LLM helper (first token as an event)
 *      │  └─ tool      one per tool execution (a stored result: `replayed`)
 *      ├─ tts          one per say: synthesis
 *      └─ first_audio  turn start to the first audio handed to the pacer
 *
 * Attributes are ids, names, versions, providers, counts and durations — never
 * content (no transcript, no spoken text, no tool arguments or results).
 */
import { createHash } from 'node:crypto';

export type SpanAttributes = Record<string, string | number | boolean>;

export interface TraceSpan {
  /** 32 hex digits; empty when tracing is off. */
  readonly traceId: string;
  /** A child span starting now (or at `startMs`, epoch ms). */
  child(name: string, attrs?: SpanAttributes, startMs?: number): TraceSpan;
  setAttributes(attrs: SpanAttributes): void;
  /** A point in time within the span (e.g. `first_token`). */
  event(name: string, atMs?: number): void;
  /** Ends it now (or at `endMs`); an error marks it failed (a reason, not content). */
  end(endMs?: number, error?: string): void;
}

export interface Tracer {
  readonly enabled: boolean;
  /** The root span of one leg of a call, in the call's trace. */
  callSpan(callId: string, attrs: SpanAttributes): TraceSpan;
  /** Flushes what is buffered (at shutdown). */
  shutdown(): Promise<void>;
}

/** The trace id of a call: the same on every node and after every resume. */
export function traceIdOf(callId: string): string {
  return createHash('sha256').update(`switchboard-call:${callId}`).digest('hex').slice(0, 32);
}

const NOOP_SPAN: TraceSpan = {
  traceId: '',
  child: () => NOOP_SPAN,
  setAttributes: () => undefined,
  event: () => undefined,
  end: () => undefined,
};

export const NOOP_TRACER: Tracer = {
  enabled: false,
  callSpan: () => NOOP_SPAN,
  shutdown: async () => undefined,
};

/** Loads the OpenTelemetry implementation only when an endpoint is configured. */
export async function startTracer(opts: { endpoint: string | undefined; node: string; version: string }): Promise<Tracer> {
  if (!opts.endpoint) return NOOP_TRACER;
  const { startOtelTracer } = await import('./otel.ts');
  return startOtelTracer({ endpoint: opts.endpoint, node: opts.node, version: opts.version });
}
