import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import {
  createEvent,
  MAX_EVENT_TIME_AHEAD_MS,
  validateEvent,
  SecondFactorDecidedData,
  type AnyTwofoldEvent,
} from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import type { Authenticator } from '../auth.js';
import type { DecisionWaiter } from '../decision-waiter.js';
import { problems } from '../problem.js';

const LoginEventBody = Type.Object(
  {
    type: Type.String({ description: 'twofold.login.succeeded | twofold.login.failed | twofold.logout' }),
    specversion: Type.Optional(Type.String()),
    id: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    source: Type.Optional(Type.String()),
    subject: Type.Optional(Type.String({ description: 'the username' })),
    username: Type.Optional(Type.String({ description: 'shorthand for subject' })),
    time: Type.Optional(Type.String({ format: 'date-time' })),
    data: Type.Record(Type.String(), Type.Unknown()),
  },
  { additionalProperties: true },
);

const Query = Type.Object({
  wait: Type.Optional(Type.Literal('decision')),
  timeoutMs: Type.Optional(Type.Integer({ minimum: 1, maximum: 30_000, default: 5_000 })),
});

/** POST /v1/login-events: apps that do not speak Kafka publish login events here. */
export function loginEventsRoute(deps: {
  auth: Authenticator;
  producer: EventProducer;
  waiter: DecisionWaiter;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/login-events',
      {
        schema: {
          tags: ['events'],
          summary: 'Publish a login event (optionally wait for the 2FA decision)',
          body: LoginEventBody,
          querystring: Query,
          response: {
            200: SecondFactorDecidedData,
            202: Type.Object({ id: Type.String() }),
          },
        },
      },
      async (request, reply) => {
        const caller = await deps.auth.requireApp(request);
        const body = request.body;
        const ownSource = `app/${caller.appId}`;
        if (body.source !== undefined && body.source !== ownSource) {
          throw problems.forbidden(`app ${caller.appId} may only publish events with source "${ownSource}"`);
        }
        const subject = body.subject ?? body.username;
        if (subject === undefined) throw problems.invalid('body.subject (the username) is required');
        const candidate: AnyTwofoldEvent = {
          ...createEvent(body.type as 'twofold.login.succeeded', ownSource, subject, body.data as never, {
            ...(body.id ? { id: body.id } : {}),
            ...(body.time ? { time: body.time } : {}),
          }),
        } as AnyTwofoldEvent;
        const checked = validateEvent(candidate, 'login');
        if (!checked.ok) throw problems.invalidEvent(checked.reason);
        const event = checked.event;
        // A time from the future would outlive every window and record keyed on it.
        const aheadMs = Date.parse(event.time) - Date.now();
        if (aheadMs > MAX_EVENT_TIME_AHEAD_MS) {
          throw problems.invalidEvent(
            `time ${event.time} is ${Math.round(aheadMs / 1000)} s ahead of twofold's clock; at most ` +
              `${MAX_EVENT_TIME_AHEAD_MS / 1000} s is accepted: check the app's clock (NTP), or leave time out and twofold stamps it`,
          );
        }
        if ('appId' in event.data && event.data.appId !== caller.appId) {
          throw problems.forbidden(`data.appId must be "${caller.appId}", the app whose key was used`);
        }
        const publish = () => deps.producer.publish('login', [event]);
        if (request.query.wait === 'decision' && event.type === 'twofold.login.succeeded') {
          const decision = await deps.waiter.waitFor(event.id, request.query.timeoutMs ?? 5_000, publish, {
            mayBeDecided: body.id !== undefined,
          });
          if (decision) {
            // Ids are the apps' own: a decision of another app or session answers another
            // login that used this id (kept 10 minutes), never this one.
            if (decision.appId !== caller.appId || decision.session !== event.data.session) {
              throw problems.conflict(
                `event id ${event.id} was used already by another login; send each login with its own id`,
              );
            }
            return reply.code(200).send(decision);
          }
          return reply.code(202).send({ id: event.id });
        }
        await publish();
        return reply.code(202).send({ id: event.id });
      },
    );
  };
}
