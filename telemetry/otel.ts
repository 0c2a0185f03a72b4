/**
 * The tracing port (telemetry/tracing.ts) on the official OpenTelemetry SDK:
 * a BasicTracerProvider whose BatchSpanProcessor exports over OTLP/HTTP (JSON)
 * to `<OTEL_EXPORTER_OTLP_ENDPOINT>/v1/traces`. Loaded only when that variable
 * is set. The provider is used directly, never registered as the global one,
 * and parents are passed explicitly (no context manager), so nothing else in
 * the process is affected.
 *
 * A call's spans share the trace id `traceIdOf(callId)`: each leg's root span
 * is started under a remote parent context carrying that id.
 */
import { context, trace, TraceFlags, type Span, type Tracer as OtelTracer } from '@opentelemetry/api';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, BatchSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { ATTR_SERVICE_NAME, ATTR_SERVICE_VERSION } from '@opentelemetry/semantic-conventions';
import { traceIdOf, type SpanAttributes, type TraceSpan, type Tracer } from './tracing.ts';

function wrap(tracer: OtelTracer, span: Span): TraceSpan {
  return {
    traceId: span.spanContext().traceId,
    child: (name, attrs, startMs) => wrap(tracer, tracer.startSpan(name, { attributes: attrs, startTime: startMs }, trace.setSpan(context.active(), span))),
    setAttributes: (attrs) => void span.setAttributes(attrs),
    event: (name, atMs) => void span.addEvent(name, atMs),
    end: (endMs, error) => {
      if (error) span.setStatus({ code: 2, message: error.slice(0, 200) }); // SpanStatusCode.ERROR
      span.end(endMs);
    },
  };
}

export function startOtelTracer(opts: { endpoint: string; node: string; version: string }): Tracer {
  const exporter = new OTLPTraceExporter({ url: `${opts.endpoint.replace(/\/+$/, '')}/v1/traces` });
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ [ATTR_SERVICE_NAME]: 'switchboard', [ATTR_SERVICE_VERSION]: opts.version, 'switchboard.node': opts.node }),
    spanProcessors: [new BatchSpanProcessor(exporter, { scheduledDelayMillis: 1000 })],
  });
  const tracer = provider.getTracer('switchboard', opts.version);
  return {
    enabled: true,
    callSpan: (callId: string, attrs: SpanAttributes) => {
      const traceId = traceIdOf(callId);
      const parent = trace.setSpanContext(context.active(), { traceId, spanId: traceId.slice(0, 16), traceFlags: TraceFlags.SAMPLED, isRemote: true });
      return wrap(tracer, tracer.startSpan('call', { attributes: { 'switchboard.call_id': callId, ...attrs } }, parent));
    },
    shutdown: () => provider.shutdown(),
  };
}
