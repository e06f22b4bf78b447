import {
  context,
  propagation,
  type Context,
  type TextMapGetter,
  type TextMapSetter,
} from '@opentelemetry/api';

export { context, type Context };

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
