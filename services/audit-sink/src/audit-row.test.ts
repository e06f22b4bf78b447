import { describe, expect, it } from 'vitest';
import { DLQ_HEADERS, createEvent, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import type { ConsumedEvent, RawConsumed } from '@twofold/kafka';
import { ConfigError } from '@twofold/config';
import { auditRowFromDlq, auditRowFromEvent } from './audit-row.js';
import { loadAuditSinkConfig } from './config.js';

const session = 'a'.repeat(64);
const consumed = (role: TopicRole, event: AnyTwofoldEvent, timestamp = 1_764_320_000_000): ConsumedEvent =>
  ({
    event,
    role,
    topic: `twofold.${role}.v1`,
    partition: 2,
    offset: '41',
    timestamp,
    key: event.subject,
    traceContext: {},
  }) as unknown as ConsumedEvent;

describe('auditRowFromEvent', () => {
  it.each([
    [
      'a failed login',
      'login',
      createEvent('twofold.login.failed', 'app/jira', 'Alice', {
        appId: 'jira',
        ip: '192.0.2.1',
        reason: 'bad_password',
      }),
      {
        appId: 'jira',
        username: 'alice',
        ip: '192.0.2.1',
        outcome: 'failure',
        reason: 'bad_password',
        decision: null,
      },
    ],
    [
      'a decision',
      'secondFactor',
      createEvent('twofold.2fa.decided', 'service/verifier', 'alice', {
        loginEventId: 'l1',
        appId: 'jira',
        session,
        decision: 'skip',
        reason: 'sso',
      }),
      { appId: 'jira', session, outcome: 'skip', decision: 'skip', reason: 'sso' },
    ],
    [
      'an IP lockout (no user)',
      'security',
      createEvent('twofold.lockout.imposed', 'service/lockout-detector', '203.0.113.9', {
        scope: 'ip',
        key: '203.0.113.9',
        until: null,
        failures: 9,
        rule: 'ip',
      }),
      { username: null, ip: '203.0.113.9', outcome: 'locked' },
    ],
    [
      'an attack keyed by IP',
      'security',
      createEvent('twofold.attack.detected', 'service/lockout-detector', '2001:db8::5', {
        kind: 'password_spraying',
        key: '2001:db8::5',
        evidence: {},
      }),
      { username: null, ip: '2001:db8::5', outcome: 'attack', reason: 'password_spraying' },
    ],
    [
      'a (user, IP) lockout: the IP out of its key',
      'security',
      createEvent('twofold.lockout.imposed', 'service/lockout-detector', 'alice', {
        scope: 'user_ip',
        key: 'alice|2001:db8::7',
        until: null,
        failures: 5,
        rule: 'userIp',
      }),
      { username: 'alice', ip: '2001:db8::7', outcome: 'locked' },
    ],
    [
      'password spraying over every user (key global): no user',
      'security',
      createEvent('twofold.attack.detected', 'service/lockout-detector', 'global', {
        kind: 'password_spraying',
        key: 'global',
        evidence: { users: 900, sources: 200 },
      }),
      { username: null, ip: null, outcome: 'attack', reason: 'password_spraying' },
    ],
    [
      'an attack on a user',
      'security',
      createEvent('twofold.attack.detected', 'service/lockout-detector', 'bob', {
        kind: 'brute_force',
        key: 'bob',
        evidence: {},
      }),
      { username: 'bob', ip: null, reason: 'brute_force' },
    ],
    [
      'an admin action',
      'admin',
      createEvent('twofold.admin.policy_rule_set', 'service/api', 'admin', {
        actor: 'admin',
        kind: 'user',
        subject: 'bob',
      }),
      { username: 'admin', appId: null, outcome: 'policy_rule_set' },
    ],
    [
      'an app event without appId in its data',
      'secondFactor',
      createEvent('twofold.enrollment.activated', 'app/confluence', 'carol', { method: 'imported' }),
      { appId: 'confluence', outcome: null },
    ],
  ] as const)('lifts the columns of %s', (_what, role, event, expected) => {
    const row = auditRowFromEvent(consumed(role, event as AnyTwofoldEvent));
    expect(row).toMatchObject({
      eventId: event.id,
      type: event.type,
      source: event.source,
      kafkaTopic: `twofold.${role}.v1`,
      kafkaPartition: 2,
      kafkaOffset: '41',
      event,
      ...expected,
    });
    expect(row.occurredAt.toISOString()).toBe(event.time);
  });

  it('takes the broker time when the event time cannot be represented (a leap second)', () => {
    const event = createEvent(
      'twofold.logout',
      'app/jira',
      'alice',
      { appId: 'jira', session },
      { time: '2026-12-31T23:59:60Z' },
    );
    const brokerTime = Date.parse('2027-01-01T00:00:00.000Z');
    expect(auditRowFromEvent(consumed('login', event, brokerTime)).occurredAt).toEqual(new Date(brokerTime));
  });
});

describe('auditRowFromDlq', () => {
  it('records a refused message with its reason, origin and bytes', () => {
    const raw = {
      topic: 'twofold.dlq.v1',
      partition: 0,
      offset: '7',
      message: {
        key: Buffer.from('alice'),
        value: Buffer.from('{"not": json'),
        timestamp: '1764320000000',
        headers: {
          [DLQ_HEADERS.error]: Buffer.from('not JSON: Unexpected token'),
          [DLQ_HEADERS.topic]: Buffer.from('twofold.login.v1'),
          [DLQ_HEADERS.partition]: Buffer.from('1'),
          [DLQ_HEADERS.offset]: Buffer.from('99'),
          [DLQ_HEADERS.consumer]: Buffer.from('twofold-verifier'),
        },
      },
    } as unknown as RawConsumed;
    expect(auditRowFromDlq(raw)).toMatchObject({
      eventId: 'dlq:twofold.dlq.v1:0:7',
      type: 'twofold.dlq',
      source: 'consumer/twofold-verifier',
      outcome: 'rejected',
      reason: 'not JSON: Unexpected token',
      occurredAt: new Date(1_764_320_000_000),
      event: {
        topic: 'twofold.login.v1',
        partition: '1',
        offset: '99',
        key: 'alice',
        valueBase64: Buffer.from('{"not": json').toString('base64'),
        size: 12,
      },
    });
  });
});

describe('loadAuditSinkConfig', () => {
  const base = {
    KAFKA_BROKERS: '127.0.0.1:9092',
    REDIS_URL: 'redis://127.0.0.1:6379',
    DATABASE_URL: 'postgres://u:p@127.0.0.1:5432/db',
  };

  it('has defaults for retention and upkeep', () => {
    expect(loadAuditSinkConfig(base).audit).toEqual({
      retentionDays: 400,
      partitionsAheadDays: 14,
      maintenanceIntervalMs: 3_600_000,
      concurrentPartitions: 4,
    });
  });

  it('names every bad audit setting', () => {
    let error: unknown;
    try {
      loadAuditSinkConfig({
        ...base,
        AUDIT_RETENTION_DAYS: '0',
        AUDIT_PARTITIONS_AHEAD_DAYS: '2.5',
        AUDIT_CONCURRENT_PARTITIONS: '12',
      });
    } catch (err) {
      error = err;
    }
    expect(error).toBeInstanceOf(ConfigError);
    expect((error as ConfigError).problems).toEqual([
      'AUDIT_RETENTION_DAYS: must be a whole number from 1 to 36500, got 0',
      'AUDIT_PARTITIONS_AHEAD_DAYS: must be a whole number from 1 to 366, got 2.5',
      expect.stringMatching(/^AUDIT_CONCURRENT_PARTITIONS \(12\) must be below DATABASE_POOL_SIZE \(10\)/),
    ]);
  });
});
