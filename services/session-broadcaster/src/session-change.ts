import { createHash } from 'node:crypto';
import { createEvent, normalizeUsername, type AnyTwofoldEvent, type TwofoldEvent } from '@twofold/contracts';
import type { SessionChange, SessionOutcome } from '@twofold/state';

export const BROADCASTER_SOURCE = 'service/session-broadcaster';

/** Admin actions that end every session of the user they name. */
export const SESSION_REVOKING_ADMIN_TYPES: ReadonlySet<string> = new Set([
  'twofold.admin.sessions_revoked',
  'twofold.admin.enrollment_reset',
  'twofold.admin.user_disabled',
]);

/** What a consumed event means for session state, if anything. */
export function sessionChangeOf(event: AnyTwofoldEvent): SessionChange | undefined {
  const at = Date.parse(event.time);
  if (!Number.isFinite(at)) return undefined;
  switch (event.type) {
    case 'twofold.2fa.verified':
      return {
        kind: 'validate',
        session: event.data.session,
        username: event.subject,
        appId: event.data.appId,
        at,
        eventId: event.id,
      };
    case 'twofold.logout':
      return {
        kind: 'revoke',
        session: event.data.session,
        reason: 'logout',
        at,
        eventId: event.id,
        username: event.subject,
      };
    case 'twofold.lockout.imposed': {
      if (event.data.scope !== 'user') return undefined;
      const username = normalizeUsername(event.data.key);
      return username
        ? { kind: 'revoke-user', username, reason: 'lockout', at, eventId: event.id }
        : undefined;
    }
    default:
      break;
  }
  if (SESSION_REVOKING_ADMIN_TYPES.has(event.type)) {
    const named = (event.data as Record<string, unknown>)['username'];
    const username = typeof named === 'string' ? normalizeUsername(named) : event.subject;
    return username ? { kind: 'revoke-user', username, reason: 'admin', at, eventId: event.id } : undefined;
  }
  return undefined;
}

/** A stable event id per (cause, session, kind): a redelivered cause re-announces the same id. */
export function announcementId(causeId: string, session: string, kind: 'validated' | 'revoked'): string {
  const hex = createHash('sha256').update(`${causeId}\n${session}\n${kind}`).digest('hex');
  // RFC 9562 UUIDv8 (custom): version nibble 8, variant 10.
  const variant = ((parseInt(hex[16]!, 16) & 0x3) | 0x8).toString(16);
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-8${hex.slice(13, 16)}-${variant}${hex.slice(17, 20)}-${hex.slice(20, 32)}`;
}

export type SessionAnnouncement =
  TwofoldEvent<'twofold.session.validated'> | TwofoldEvent<'twofold.session.revoked'>;

/**
 * The session events apps must hear for these outcomes, in order, once per id. A revoke's
 * `time` is the time the session's state stands at, never earlier than the validation it ends.
 */
export function announcementsOf(outcomes: readonly SessionOutcome[]): SessionAnnouncement[] {
  const seen = new Set<string>();
  const events: SessionAnnouncement[] = [];
  for (const outcome of outcomes) {
    if (!outcome.announce || !outcome.username) continue;
    const { change, session, username } = outcome;
    const time = new Date(outcome.version).toISOString();
    let event: SessionAnnouncement;
    if (change.kind === 'validate') {
      event = createEvent(
        'twofold.session.validated',
        BROADCASTER_SOURCE,
        username,
        {
          session,
          username,
          appId: change.appId,
          verifiedAt: time,
          expiresAt: new Date(outcome.expiresAtMs).toISOString(),
        },
        { id: announcementId(change.eventId, session, 'validated'), time },
      );
    } else {
      // `username` is an extra field (the contract allows more): apps need not map hashes back.
      const data = { session, reason: change.reason, username };
      event = createEvent('twofold.session.revoked', BROADCASTER_SOURCE, username, data, {
        id: announcementId(change.eventId, session, 'revoked'),
        time,
      });
    }
    if (seen.has(event.id)) continue;
    seen.add(event.id);
    events.push(event);
  }
  return events;
}
