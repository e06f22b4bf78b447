import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { createEvent } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import { deterministicEventId, lockoutLiftedEvent } from '@twofold/lockout';
import type { Redis } from '@twofold/redis';
import {
  LockoutCursorError,
  LockoutKeyError,
  liftLockout,
  listLockouts,
  lockoutsToLift,
  type LockoutRecord,
} from '@twofold/state';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

const API_SOURCE = 'service/api';

const Scope = Type.Union([Type.Literal('user'), Type.Literal('user_ip'), Type.Literal('ip')]);

const LockoutView = Type.Object({
  lockId: Type.String(),
  scope: Scope,
  key: Type.String({ description: 'user: username; user_ip: "username|ip"; ip: an IP or a network (CIDR)' }),
  mode: Type.Union([Type.Literal('deny'), Type.Literal('force_second_factor')], {
    description: 'deny: logins refused; force_second_factor: the code is asked on every login (no skips)',
  }),
  rule: Type.String(),
  until: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], { description: 'null: permanent' }),
  imposedAt: Type.String({ format: 'date-time' }),
  failures: Type.Integer(),
  level: Type.Integer({ description: 'lockouts of this key in a row (the backoff level)' }),
  sparesKnownNetworks: Type.Optional(
    Type.Boolean({ description: "user locks: the user's known-good networks are not locked" }),
  ),
});

const view = (record: LockoutRecord) => ({ ...record });

/**
 * Admin list and lift of lockouts (CONTRACT.md). A lift publishes `lockout.lifted` (by
 * admin) on the security topic for each lockout lifted, and `twofold.admin.unlock` on the
 * admin topic; the lockout is then never announced as lifted by expiry.
 */
export function adminLockoutsRoute(deps: {
  auth: Authenticator;
  redis: Redis;
  keyPrefix: string;
  producer: EventProducer;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/admin/lockouts',
      {
        schema: {
          tags: ['admin'],
          summary: 'Lockouts in force, soonest to end first (permanent ones last)',
          querystring: Type.Object({
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
            cursor: Type.Optional(
              Type.String({
                minLength: 1,
                maxLength: 2048,
                description: 'nextCursor of the previous page (opaque)',
              }),
            ),
          }),
          response: {
            200: Type.Object({ lockouts: Type.Array(LockoutView), nextCursor: Type.Optional(Type.String()) }),
          },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const page = await listLockouts(deps.redis, deps.keyPrefix, {
          limit: request.query.limit ?? 100,
          ...(request.query.cursor ? { cursor: request.query.cursor } : {}),
        }).catch((err: unknown) => {
          throw err instanceof LockoutCursorError ? problems.invalid(err.message) : err;
        });
        return {
          lockouts: page.lockouts.map(view),
          ...(page.nextCursor ? { nextCursor: page.nextCursor } : {}),
        };
      },
    );

    app.delete(
      '/v1/admin/lockouts/:scope/:key',
      {
        schema: {
          tags: ['admin'],
          summary: 'Lift the lockouts of a user, a (user, IP) pair, an IP or a network',
          description:
            'user/{username}: the hard lock and the forced second factor, and the failure streak is reset. ' +
            'user_ip/{username|ip} (URL-encode the key): the backoff lock of that pair. ' +
            'ip/{ip} or ip/{network}, e.g. ip/203.0.113.0%2F24: the block of that IP or network.',
          params: Type.Object({ scope: Scope, key: Type.String({ minLength: 1, maxLength: 400 }) }),
          response: { 200: Type.Object({ lifted: Type.Array(LockoutView) }) },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const { scope, key } = request.params;
        let inForce: LockoutRecord[];
        try {
          inForce = await lockoutsToLift(deps.redis, deps.keyPrefix, scope, key);
        } catch (err) {
          if (err instanceof LockoutKeyError) throw problems.invalid(err.message);
          throw err;
        }
        if (inForce.length === 0) throw problems.notFound(`no lockout of ${scope} ${key} is in force`);
        // Announced first, lifted second. A lift that could not be announced would leave no
        // audit trail, and nothing would announce it later (expiry skips what an admin
        // lifted). The other way round, a failed announcement lifts nothing: the user stays
        // locked (fail closed) and the retry announces again with the same event ids (from
        // the lockout ids), which consumers dedupe; if the lift itself fails after the
        // announcement, the retry lifts, or expiry announces the same lockout.lifted id.
        // Only the lockouts announced are lifted: one imposed meanwhile stays in force.
        const time = new Date();
        const lockIds = inForce.map((r) => r.lockId);
        try {
          await deps.producer.publishMany([
            {
              role: 'security',
              events: inForce.map((record) =>
                lockoutLiftedEvent(record, 'admin', { time, source: API_SOURCE }),
              ),
            },
            {
              role: 'admin',
              events: [
                createEvent(
                  'twofold.admin.unlock',
                  API_SOURCE,
                  'admin',
                  {
                    actor: 'admin',
                    scope,
                    key,
                    lifted: inForce.map((r) => ({
                      lockId: r.lockId,
                      scope: r.scope,
                      key: r.key,
                      rule: r.rule,
                      mode: r.mode,
                    })),
                  },
                  { id: deterministicEventId('admin.unlock', ...[...lockIds].sort()), time },
                ),
              ],
            },
          ]);
        } catch (err) {
          request.log.warn({ err }, 'admin unlock not announced');
          throw problems.unavailable(
            `nothing was lifted: the unlock of ${scope} ${key} could not be announced (the event bus is unavailable); try again`,
          );
        }
        const lifted = await liftLockout(deps.redis, deps.keyPrefix, scope, key, { lockIds });
        return { lifted: lifted.map(view) };
      },
    );
  };
}
