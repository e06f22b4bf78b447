import { createHmac, timingSafeEqual } from 'node:crypto';
import type { SessionEvent } from './session-event.js';

/**
 * Webhook signatures in the Standard Webhooks style (https://www.standardwebhooks.com):
 * `webhook-signature: v1,<base64 HMAC-SHA256 of "<webhook-id>.<webhook-timestamp>.<body>">`,
 * keyed with the app's secret (`whsec_<base64>`). While a rotated secret's grace period
 * lasts, twofold signs with both, space-separated (`v1,<new> v1,<old>`), so a receiver
 * holding either secret verifies.
 */

export const WEBHOOK_HEADERS = {
  id: 'webhook-id',
  timestamp: 'webhook-timestamp',
  signature: 'webhook-signature',
} as const;

/** Default window (seconds) in which a webhook's timestamp must fall, either side of now. */
export const DEFAULT_WEBHOOK_TOLERANCE_SECONDS = 300;

export type WebhookVerificationFailure = 'missing_header' | 'stale' | 'bad_signature' | 'bad_body';

/** Thrown by verifyWebhookSignature: answer the request with 400 and do not act on it. */
export class WebhookVerificationError extends Error {
  constructor(
    readonly code: WebhookVerificationFailure,
    message: string,
  ) {
    super(message);
    this.name = 'WebhookVerificationError';
  }
}

function secretBytes(secret: string | Uint8Array): Buffer {
  if (typeof secret !== 'string') return Buffer.from(secret);
  const encoded = secret.startsWith('whsec_') ? secret.slice('whsec_'.length) : secret;
  const bytes = Buffer.from(encoded, 'base64');
  if (bytes.length === 0) throw new TypeError('the webhook secret is empty');
  return bytes;
}

function bodyBytes(body: string | Uint8Array): Buffer {
  return typeof body === 'string' ? Buffer.from(body, 'utf8') : Buffer.from(body);
}

/** The `v1,<base64>` signature of one delivery. */
export function signWebhook(input: {
  secret: string | Uint8Array;
  id: string;
  timestamp: number;
  body: string | Uint8Array;
}): string {
  const mac = createHmac('sha256', secretBytes(input.secret))
    .update(`${input.id}.${input.timestamp}.`, 'utf8')
    .update(bodyBytes(input.body))
    .digest('base64');
  return `v1,${mac}`;
}

/** Headers as node's `IncomingMessage.headers` has them, or a fetch `Headers`. */
export type WebhookHeaders = Headers | Record<string, string | string[] | undefined>;

function header(headers: WebhookHeaders, name: string): string | undefined {
  if (typeof (headers as Headers).get === 'function') return (headers as Headers).get(name) ?? undefined;
  const record = headers as Record<string, string | string[] | undefined>;
  const value = record[name] ?? Object.entries(record).find(([k]) => k.toLowerCase() === name)?.[1];
  return Array.isArray(value) ? value[0] : value;
}

/**
 * Checks a webhook twofold sent: the signature over id, timestamp and the raw body (pass
 * the bytes as received, before any JSON parsing), and a timestamp within
 * `toleranceSeconds` of now (a captured delivery cannot be replayed later). Returns the
 * session event; throws WebhookVerificationError when the delivery must be refused.
 */
export function verifyWebhookSignature(input: {
  /**
   * The app's webhook secret, `whsec_…` (GET /v1/admin/apps/{appId}/webhook-secret), or
   * several (the new and the old one while a rotation settles): any one matching will do.
   */
  secret: string | Uint8Array | readonly (string | Uint8Array)[];
  headers: WebhookHeaders;
  body: string | Uint8Array;
  toleranceSeconds?: number;
  /** Clock (ms), for tests. */
  now?: number;
}): SessionEvent {
  const id = header(input.headers, WEBHOOK_HEADERS.id);
  const timestamp = header(input.headers, WEBHOOK_HEADERS.timestamp);
  const signatures = header(input.headers, WEBHOOK_HEADERS.signature);
  if (!id || !timestamp || !signatures) {
    throw new WebhookVerificationError(
      'missing_header',
      'webhook-id, webhook-timestamp and webhook-signature headers are required',
    );
  }
  const seconds = Number(timestamp);
  const tolerance = input.toleranceSeconds ?? DEFAULT_WEBHOOK_TOLERANCE_SECONDS;
  const nowSeconds = Math.floor((input.now ?? Date.now()) / 1000);
  if (!/^\d{1,12}$/.test(timestamp) || Math.abs(nowSeconds - seconds) > tolerance) {
    throw new WebhookVerificationError(
      'stale',
      `webhook-timestamp is outside the ${tolerance} s tolerance (replayed or clock skew)`,
    );
  }
  const secrets = Array.isArray(input.secret) ? input.secret : [input.secret as string | Uint8Array];
  if (secrets.length === 0) throw new TypeError('no webhook secret given');
  const expected = secrets.map((secret) =>
    Buffer.from(signWebhook({ secret, id, timestamp: seconds, body: input.body })),
  );
  const candidates = signatures
    .split(' ')
    .filter(Boolean)
    .map((candidate) => Buffer.from(candidate));
  const matches = expected.some((want) =>
    candidates.some((candidate) => candidate.length === want.length && timingSafeEqual(candidate, want)),
  );
  if (!matches)
    throw new WebhookVerificationError('bad_signature', 'no webhook-signature matches the secret');
  let event: SessionEvent;
  try {
    event = JSON.parse(bodyBytes(input.body).toString('utf8')) as SessionEvent;
  } catch {
    throw new WebhookVerificationError('bad_body', 'the signed body is not JSON');
  }
  if (event.id !== id) throw new WebhookVerificationError('bad_body', 'the body id differs from webhook-id');
  return event;
}
