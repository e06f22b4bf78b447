import { randomUUID } from 'node:crypto';
import { isIP } from 'node:net';
import { Ajv, type ErrorObject, type ValidateFunction } from 'ajv';
import addFormatsModule from 'ajv-formats';
import {
  ADMIN_EVENT_PREFIX,
  AdminActionData,
  EVENT_DATA_SCHEMAS,
  EnvelopeSchema,
  type AnyTwofoldEvent,
  type EventData,
  type EventType,
  type KnownEventType,
  type TwofoldEvent,
} from './events.js';
import { normalizeUsername } from './names.js';
import { TOPIC_EVENT_TYPES, type TopicRole } from './topics.js';

// eslint-disable-next-line no-control-regex -- control characters are what it finds
const CONTROL_CHARACTER = /[\u0000-\u001f\u007f-\u009f]/;

/** Events larger than this are refused (CONTRACT.md). */
export const MAX_EVENT_BYTES = 64 * 1024;

// ajv-formats is published as CommonJS with a default export.
const addFormats = addFormatsModule as unknown as typeof addFormatsModule.default;

export const ajv = new Ajv({ allErrors: false, strict: false, coerceTypes: false });
addFormats(ajv, ['date-time', 'uri', 'email', 'uuid']);
ajv.addFormat('ip', { type: 'string', validate: (value: string) => isIP(value) !== 0 });

const validateEnvelope = ajv.compile(EnvelopeSchema);
const dataValidators = new Map<string, ValidateFunction>(
  Object.entries(EVENT_DATA_SCHEMAS).map(([type, schema]) => [type, ajv.compile(schema)]),
);
const validateAdminData = ajv.compile(AdminActionData);

export type ParseResult = { ok: true; event: AnyTwofoldEvent } | { ok: false; reason: string };

function describe(errors: ErrorObject[] | null | undefined, where: string): string {
  const first = errors?.[0];
  if (!first) return `${where} is invalid`;
  const path = first.instancePath ? `${where}${first.instancePath.replaceAll('/', '.')}` : where;
  // A union of literals fails every branch; name the allowed values rather than the first.
  const union = errors!.find((e) => e.keyword === 'anyOf' && e.instancePath === first.instancePath);
  if (union) {
    const allowed = errors!
      .filter((e) => e.keyword === 'const' && e.instancePath === first.instancePath)
      .map((e) => JSON.stringify(e.params['allowedValue']));
    if (allowed.length > 1) return `${path} must be one of ${allowed.join(', ')}`;
  }
  if (first.keyword === 'required') return `${path}.${String(first.params['missingProperty'])} is required`;
  if (first.keyword === 'additionalProperties')
    return `${path} has unknown field ${String(first.params['additionalProperty'])}`;
  if (first.keyword === 'const') return `${path} must be ${JSON.stringify(first.params['allowedValue'])}`;
  if (first.keyword === 'anyOf' || first.keyword === 'enum') return `${path} has a value that is not allowed`;
  return `${path} ${first.message ?? 'is invalid'}`;
}

/**
 * Checks an event object against the envelope and the payload schema of its type, and
 * (when a topic is named) that the topic carries that type. The subject comes back normalized.
 */
export function validateEvent(candidate: unknown, topic?: TopicRole): ParseResult {
  if (typeof candidate !== 'object' || candidate === null || Array.isArray(candidate)) {
    return { ok: false, reason: 'event must be a JSON object' };
  }
  if (!validateEnvelope(candidate)) return { ok: false, reason: describe(validateEnvelope.errors, 'event') };
  const event = candidate as unknown as TwofoldEvent;
  const isAdmin = event.type.startsWith(ADMIN_EVENT_PREFIX);
  const validateData = isAdmin ? validateAdminData : dataValidators.get(event.type);
  if (!validateData) return { ok: false, reason: `unknown event type ${event.type}` };
  if (topic && topic !== 'dlq') {
    const allowed = topic === 'admin' ? isAdmin : TOPIC_EVENT_TYPES[topic].includes(event.type);
    if (!allowed)
      return { ok: false, reason: `event type ${event.type} does not belong on the ${topic} topic` };
  }
  if (!validateData(event.data)) return { ok: false, reason: describe(validateData.errors, 'data') };
  // "0000-01-01T00:00:00Z" is a date-time, but no database date: Postgres has no year 0 and
  // JavaScript writes years past 9999 as "+010000". The audit sink failed on such an event
  // forever, stalling its partition; consumers that count by time take the broker's.
  const year = new Date(event.time).getUTCFullYear();
  if (!(year >= 1 && year <= 9999)) {
    return { ok: false, reason: `event.time ${event.time} is outside the years 0001-9999 (UTC)` };
  }
  const subject = normalizeUsername(event.subject);
  if (subject.length === 0) return { ok: false, reason: 'event.subject is empty once normalized' };
  // A username never holds one, and Postgres text cannot hold NUL: a consumer reading
  // users in batches would fail the whole batch on it, deciding for nobody.
  const control = CONTROL_CHARACTER.exec(subject);
  if (control) {
    const code = control[0].codePointAt(0)!.toString(16).toUpperCase().padStart(4, '0');
    return { ok: false, reason: `event.subject contains the control character U+${code}` };
  }
  return { ok: true, event: { ...event, subject } as AnyTwofoldEvent };
}

/** Parses the bytes of a Kafka message (or HTTP body) into a validated event. */
export function parseEvent(bytes: Buffer | null, topic?: TopicRole): ParseResult {
  if (bytes === null || bytes.length === 0) return { ok: false, reason: 'message has no value' };
  if (bytes.length > MAX_EVENT_BYTES) {
    return { ok: false, reason: `event is ${bytes.length} bytes; the limit is ${MAX_EVENT_BYTES}` };
  }
  let candidate: unknown;
  try {
    candidate = JSON.parse(bytes.toString('utf8'));
  } catch (err) {
    return { ok: false, reason: `not JSON: ${(err as Error).message}` };
  }
  return validateEvent(candidate, topic);
}

export interface NewEventOptions {
  id?: string;
  time?: Date | string;
}

/** Builds a well-formed event; the subject is normalized. */
export function createEvent<T extends EventType>(
  type: T,
  source: string,
  subject: string,
  data: EventData<T>,
  options: NewEventOptions = {},
): TwofoldEvent<T> {
  const time =
    options.time instanceof Date ? options.time.toISOString() : (options.time ?? new Date().toISOString());
  return {
    specversion: '1.0',
    id: options.id ?? randomUUID(),
    type,
    source,
    subject: normalizeUsername(subject),
    time,
    datacontenttype: 'application/json',
    data,
  };
}

export function isEventOfType<T extends KnownEventType>(
  event: AnyTwofoldEvent,
  type: T,
): event is Extract<AnyTwofoldEvent, { type: T }> {
  return event.type === type;
}
