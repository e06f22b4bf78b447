import { ADMIN_EVENT_PREFIX, DLQ_HEADERS, type AnyTwofoldEvent } from '@twofold/contracts';
import type { ConsumedEvent, RawConsumed } from '@twofold/kafka';
import { canonicalIp, type AuditRow } from '@twofold/store';

const OUTCOME_BY_TYPE: Record<string, string> = {
  'twofold.login.succeeded': 'success',
  'twofold.login.failed': 'failure',
  'twofold.logout': 'logout',
  'twofold.2fa.verified': 'success',
  'twofold.2fa.failed': 'failure',
  'twofold.lockout.imposed': 'locked',
  'twofold.lockout.lifted': 'unlocked',
  'twofold.attack.detected': 'attack',
  'twofold.session.validated': 'validated',
  'twofold.session.revoked': 'revoked',
};

const str = (value: unknown): string | null => (typeof value === 'string' && value.length > 0 ? value : null);

function outcomeOf(event: AnyTwofoldEvent, data: Record<string, unknown>): string | null {
  if (event.type === 'twofold.2fa.decided') return str(data['decision']);
  // Admin actions: the action itself (policy_updated, enrollment_reset, …).
  if (event.type.startsWith(ADMIN_EVENT_PREFIX)) return event.type.slice(ADMIN_EVENT_PREFIX.length);
  return OUTCOME_BY_TYPE[event.type] ?? null;
}

/**
 * The event's own time. A time the schema accepts but JavaScript cannot represent (a leap
 * second, `…T23:59:60Z`) falls back to the broker's timestamp, so the row is still stored
 * (under the same key on every redelivery).
 */
function occurredAtOf(consumed: ConsumedEvent): Date {
  const time = new Date(consumed.event.time);
  return Number.isNaN(time.getTime()) ? new Date(consumed.timestamp) : time;
}

/** Lifts the columns analysts filter on out of an event; the full event is kept as jsonb. */
export function auditRowFromEvent(consumed: ConsumedEvent): AuditRow {
  const event: AnyTwofoldEvent = consumed.event;
  const data = event.data as Record<string, unknown>;
  const appFromSource = event.source.startsWith('app/') ? event.source.slice(4) : null;
  // Security events are keyed by username or by IP: an IP subject is not a user.
  const ipSubject =
    consumed.role === 'security' && canonicalIp(event.subject) !== null ? event.subject : null;
  const ipScoped = str(data['scope']) === 'ip';
  // A (user, IP) lockout's key is `username|ip` (libs/lockout userIpKey; the IP is the part
  // after the last '|'): its IP belongs in the ip column, or "what hit this IP" misses it.
  const userIpKey = str(data['scope']) === 'user_ip' ? (str(data['key']) ?? '') : '';
  const keyIp = userIpKey.slice(userIpKey.lastIndexOf('|') + 1);
  const pairIp = userIpKey.includes('|') && canonicalIp(keyIp) !== null ? keyIp : null;
  // Spraying is detected over every user and source at once (key `global`): no user.
  const global = event.type === 'twofold.attack.detected' && str(data['kind']) === 'password_spraying';
  return {
    eventId: event.id,
    occurredAt: occurredAtOf(consumed),
    type: event.type,
    source: event.source,
    appId: str(data['appId']) ?? appFromSource,
    username: (consumed.role === 'security' && ipScoped) || ipSubject || global ? null : event.subject,
    session: str(data['session']),
    ip: str(data['ip']) ?? (ipScoped ? str(data['key']) : null) ?? pairIp ?? ipSubject,
    outcome: outcomeOf(event, data),
    decision: str(data['decision']),
    reason: str(data['reason']) ?? str(data['kind']),
    kafkaTopic: consumed.topic,
    kafkaPartition: consumed.partition,
    kafkaOffset: consumed.offset,
    event,
  };
}

/** A message of the DLQ topic: recorded as such, keyed by its own coordinates. */
export function auditRowFromDlq(raw: RawConsumed): AuditRow {
  const header = (name: string) => {
    const value = raw.message.headers?.[name];
    const first = Array.isArray(value) ? value[0] : value;
    return first === undefined ? null : first.toString();
  };
  const bytes = raw.message.value ?? Buffer.alloc(0);
  return {
    eventId: `dlq:${raw.topic}:${raw.partition}:${raw.offset}`,
    occurredAt: new Date(Number(raw.message.timestamp)),
    type: 'twofold.dlq',
    source: `consumer/${header(DLQ_HEADERS.consumer) ?? 'unknown'}`,
    appId: null,
    username: null,
    session: null,
    ip: null,
    outcome: 'rejected',
    decision: null,
    reason: header(DLQ_HEADERS.error),
    kafkaTopic: raw.topic,
    kafkaPartition: raw.partition,
    kafkaOffset: raw.offset,
    event: {
      error: header(DLQ_HEADERS.error),
      topic: header(DLQ_HEADERS.topic),
      partition: header(DLQ_HEADERS.partition),
      offset: header(DLQ_HEADERS.offset),
      key: raw.message.key?.toString('utf8') ?? null,
      // The refused bytes, base64: they may be neither JSON nor UTF-8.
      valueBase64: bytes.subarray(0, 65_536).toString('base64'),
      size: bytes.length,
    },
  };
}
