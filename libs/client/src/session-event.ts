import type { TwofoldEvent } from '@twofold/contracts';

/** `twofold.session.validated`: the session passed the second factor in `data.appId`. */
export type SessionValidatedEvent = TwofoldEvent<'twofold.session.validated'>;
/** `twofold.session.revoked`: stop treating the session as verified (`data.reason`). */
export type SessionRevokedEvent = TwofoldEvent<'twofold.session.revoked'>;

/**
 * What apps hear on every channel (Kafka topic, webhook body, SSE `data`): a CloudEvent.
 * Deliveries are at least once: the same `id` may arrive again. They are not guaranteed to
 * arrive in order: for one session, the event with the later `time` wins, and at equal
 * times `revoked` wins. `GET /v1/sessions/current` always has the settled answer.
 */
export type SessionEvent = SessionValidatedEvent | SessionRevokedEvent;
