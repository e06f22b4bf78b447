import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { APP_ID_PATTERN, MAX_USERNAME_LENGTH, normalizeUsername } from '@twofold/contracts';
import { createAuditRepository, type AuditSearchRow, type Pool } from '@twofold/store';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

const AuditQuery = Type.Object(
  {
    user: Type.Optional(
      Type.String({
        minLength: 1,
        maxLength: MAX_USERNAME_LENGTH,
        // Postgres text cannot hold NUL, so no stored username has one.
        pattern: '^[^\\u0000]+$',
        description: 'username (normalized: case and width do not matter)',
      }),
    ),
    app: Type.Optional(Type.String({ pattern: APP_ID_PATTERN, description: 'app id, e.g. jira' })),
    type: Type.Optional(
      Type.String({
        pattern: '^[a-z0-9_.-]+\\*?$',
        maxLength: 200,
        description: 'event type, e.g. twofold.login.failed, or a prefix ending in * (twofold.admin.*)',
      }),
    ),
    from: Type.Optional(Type.String({ format: 'date-time', description: 'events at or after this time' })),
    to: Type.Optional(Type.String({ format: 'date-time', description: 'events before this time' })),
    limit: Type.Integer({ minimum: 1, maximum: 500, default: 50, description: 'events per page' }),
    cursor: Type.Optional(Type.String({ maxLength: 1_000, description: 'nextCursor of the previous page' })),
  },
  { additionalProperties: false },
);

const AuditEventView = Type.Object({
  eventId: Type.String(),
  type: Type.String(),
  occurredAt: Type.String({ format: 'date-time' }),
  receivedAt: Type.String({ format: 'date-time' }),
  source: Type.String(),
  appId: Type.Union([Type.String(), Type.Null()]),
  username: Type.Union([Type.String(), Type.Null()]),
  session: Type.Union([Type.String(), Type.Null()]),
  ip: Type.Union([Type.String(), Type.Null()]),
  outcome: Type.Union([Type.String(), Type.Null()]),
  decision: Type.Union([Type.String(), Type.Null()]),
  reason: Type.Union([Type.String(), Type.Null()]),
  kafka: Type.Object({ topic: Type.String(), partition: Type.Integer(), offset: Type.String() }),
  event: Type.Unknown({
    description: 'the full event as stored (CloudEvents JSON; for DLQ rows the refused bytes)',
  }),
});

const AuditPage = Type.Object({
  events: Type.Array(AuditEventView),
  nextCursor: Type.Union([Type.String(), Type.Null()], {
    description: 'pass as cursor for the next (older) page; null on the last page',
  }),
});

interface Position {
  occurredAt: string;
  eventId: string;
}

const EXACT_TIME = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{6}Z$/;

/** The cursor is opaque to callers: the position (time to the microsecond, event id) of the last row served. */
function encodeCursor(position: Position): string {
  return Buffer.from(JSON.stringify({ v: 1, t: position.occurredAt, id: position.eventId })).toString(
    'base64url',
  );
}

function decodeCursor(cursor: string): Position {
  const invalid = problems.invalid(
    'cursor is not one this API returned; repeat the query without it to start over',
  );
  let parsed: unknown;
  try {
    parsed = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  const { v, t, id } = (parsed ?? {}) as Record<string, unknown>;
  if (
    v !== 1 ||
    typeof t !== 'string' ||
    !EXACT_TIME.test(t) ||
    typeof id !== 'string' ||
    id.length === 0 ||
    id.length > 200 ||
    id.includes('\u0000')
  )
    throw invalid;
  return { occurredAt: t, eventId: id };
}

const toView = (row: AuditSearchRow) => ({
  eventId: row.eventId,
  type: row.type,
  occurredAt: row.occurredAt.toISOString(),
  receivedAt: row.receivedAt.toISOString(),
  source: row.source,
  appId: row.appId,
  username: row.username,
  session: row.session,
  ip: row.ip,
  outcome: row.outcome,
  decision: row.decision,
  reason: row.reason,
  kafka: { topic: row.kafkaTopic, partition: row.kafkaPartition, offset: row.kafkaOffset },
  event: row.event,
});

/** Admin search over the audit trail: filters, newest first, cursor pagination. */
export function adminAuditRoute(deps: { auth: Authenticator; pool: Pool }): FastifyPluginAsyncTypebox {
  const audit = createAuditRepository(deps.pool);
  return async (app) => {
    app.get(
      '/v1/admin/audit',
      {
        schema: {
          tags: ['admin'],
          summary: 'Search the audit trail by user, app, type and time, newest first, one page at a time',
          querystring: AuditQuery,
          response: { 200: AuditPage },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const q = request.query;
        const from = q.from === undefined ? undefined : new Date(q.from);
        const to = q.to === undefined ? undefined : new Date(q.to);
        if (from && Number.isNaN(from.getTime()))
          throw problems.invalid('querystring.from is not a time that exists');
        if (to && Number.isNaN(to.getTime()))
          throw problems.invalid('querystring.to is not a time that exists');
        if (from && to && from >= to)
          throw problems.invalid('querystring.from must be earlier than querystring.to');
        const username = q.user === undefined ? undefined : normalizeUsername(q.user);
        if (username === '') throw problems.invalid('querystring.user is empty once normalized');
        const rows = await audit.search({
          ...(username !== undefined ? { username } : {}),
          ...(q.app !== undefined ? { appId: q.app } : {}),
          ...(q.type !== undefined ? { type: q.type } : {}),
          ...(from ? { from } : {}),
          ...(to ? { to } : {}),
          ...(q.cursor !== undefined ? { after: decodeCursor(q.cursor) } : {}),
          limit: q.limit,
        });
        const page = rows.slice(0, q.limit);
        const last = page[page.length - 1];
        return {
          events: page.map(toView),
          nextCursor:
            rows.length > q.limit && last
              ? encodeCursor({ occurredAt: last.occurredAtExact, eventId: last.eventId })
              : null,
        };
      },
    );
  };
}
