import {
  SpanKind,
  SpanStatusCode,
  context,
  propagation,
  trace,
  type Context,
  type Link,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

export { context, trace, type Context };

/** Kafka headers as kafkajs exposes them: values may be Buffers, strings or arrays. */
export type MessageHeaders = Record<string, Buffer | string | (Buffer | string)[] | undefined>;

const headerGetter: TextMapGetter<MessageHeaders> = {
  keys: (carrier) => Object.keys(carrier),
  get: (carrier, key) => {
    const value = carrier[key];
    if (value === undefined) return undefined;
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? undefined : first.toString();
  },
};

const headerSetter: TextMapSetter<Record<string, string>> = {
  set: (carrier, key, value) => {
    carrier[key] = value;
  },
};

/** W3C trace context of the active span, as message headers. */
export function traceHeaders(active: Context = context.active()): Record<string, string> {
  const carrier: Record<string, string> = {};
  propagation.inject(active, carrier, headerSetter);
  return carrier;
}

/** The context a producer put in a message's headers (the root context when none). */
export function contextFromHeaders(headers: MessageHeaders | undefined): Context {
  return headers ? propagation.extract(context.active(), headers, headerGetter) : context.active();
}

/**
 * Runs fn inside a consumer span for a batch: its parent is the first message's trace (so
 * a one-message batch continues the producer's trace), with a link to every message's.
 * Events published inside fn carry this span in their headers.
 */
export async function inConsumerSpan<T>(
  name: string,
  messageContexts: readonly Context[],
  attributes: Record<string, string | number>,
  fn: () => Promise<T>,
): Promise<T> {
  const tracer = trace.getTracer('twofold-kafka');
  const links: Link[] = messageContexts
    .map((ctx) => trace.getSpanContext(ctx))
    .filter((sc) => sc !== undefined)
    .map((sc) => ({ context: sc }));
  const parent = messageContexts[0] ?? context.active();
  return tracer.startActiveSpan(
    name,
    { kind: SpanKind.CONSUMER, links, attributes },
    parent,
    async (span) => {
      try {
        return await fn();
      } catch (err) {
        span.recordException(err as Error);
        span.setStatus({ code: SpanStatusCode.ERROR });
        throw err;
      } finally {
        span.end();
      }
    },
  );
}
