import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { AppId, hashSessionToken, IsoTime, Username } from '@twofold/contracts';
import type { Redis } from '@twofold/redis';
import { readSession, type SessionEventFeed, type WebhookDeadLetters } from '@twofold/state';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

/** What the session routes need (ApiDeps.sessions). */
export interface SessionApiDeps {
  /** State client: session reads and the SSE catch-up. */
  redis: Redis;
  keyPrefix: string;
  /** The SSE fan-out (its own blocking Redis connection). */
  feed: SessionEventFeed;
  deadLetters: WebhookDeadLetters;
}

const SessionHeaders = Type.Object({
  'x-twofold-session': Type.String({
    minLength: 1,
    maxLength: 4096,
    description: 'the raw SSO token (e.g. crowd.token_key); twofold hashes it and never stores it',
  }),
});

export const SessionStateView = Type.Object({
  verified: Type.Boolean(),
  username: Type.Optional(Username),
  verifiedAt: Type.Optional(IsoTime),
  expiresAt: Type.Optional(IsoTime),
  appId: Type.Optional(AppId),
});

/** GET /v1/sessions/current: has this SSO session passed the second factor (in any app)? */
export function sessionsRoute(deps: {
  auth: Authenticator;
  redis: Redis;
  keyPrefix: string;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/sessions/current',
      {
        schema: {
          tags: ['sessions'],
          summary: 'Whether the SSO session in X-Twofold-Session passed the second factor',
          headers: SessionHeaders,
          response: { 200: SessionStateView },
        },
      },
      async (request, reply) => {
        await deps.auth.requireApp(request);
        const session = hashSessionToken(request.headers['x-twofold-session']);
        let state;
        try {
          state = await readSession(deps.redis, deps.keyPrefix, session);
        } catch (err) {
          request.log.warn({ err }, 'session state unavailable');
          // Fail closed: the app must ask for the second factor rather than assume it.
          throw problems.unavailable(
            'session state is unavailable right now; ask the user for the second factor',
          );
        }
        return reply.header('cache-control', 'no-store').send(state);
      },
    );
  };
}
