import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { APP_ID_PATTERN } from '@twofold/contracts';
import type { WebhookDeadLetters } from '@twofold/state';
import type { AppsRepository } from '@twofold/store';
import type { Authenticator } from '../auth.js';
import { problems } from '../problem.js';

const DeadLetter = Type.Object({
  appId: Type.String(),
  eventId: Type.String(),
  type: Type.String(),
  session: Type.String(),
  attempts: Type.Integer(),
  failedReason: Type.String(),
  failedAt: Type.Union([Type.String({ format: 'date-time' }), Type.Null()]),
  enqueuedAt: Type.String({ format: 'date-time' }),
});

const AppParams = Type.Object({ appId: Type.String({ pattern: APP_ID_PATTERN }) });

/** Webhook administration: each app's signing secret, and the dead letters of session webhooks. */
export function adminWebhooksRoute(deps: {
  auth: Authenticator;
  apps: AppsRepository;
  deadLetters: WebhookDeadLetters;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.get(
      '/v1/admin/apps/:appId/webhook-secret',
      {
        schema: {
          tags: ['admin'],
          summary: "The app's webhook signing secret (whsec_…), to verify session webhooks with",
          params: AppParams,
          response: { 200: Type.Object({ appId: Type.String(), secret: Type.String() }) },
        },
      },
      async (request, reply) => {
        deps.auth.requireAdmin(request);
        const secret = await deps.apps.webhookSecret(request.params.appId);
        if (!secret)
          throw problems.notFound(`no app ${request.params.appId}; register it with POST /v1/admin/apps`);
        return reply.header('cache-control', 'no-store').send({ appId: request.params.appId, secret });
      },
    );

    app.get(
      '/v1/admin/webhooks/dead-letters',
      {
        schema: {
          tags: ['admin'],
          summary: 'Session webhooks that used every attempt, newest first per app',
          querystring: Type.Object({
            appId: Type.Optional(Type.String({ pattern: APP_ID_PATTERN })),
            limit: Type.Optional(Type.Integer({ minimum: 1, maximum: 1000, default: 100 })),
          }),
          response: { 200: Type.Object({ deadLetters: Type.Array(DeadLetter) }) },
        },
      },
      async (request) => {
        deps.auth.requireAdmin(request);
        const appIds = request.query.appId
          ? [request.query.appId]
          : (await deps.apps.list()).map((a) => a.appId);
        return { deadLetters: await deps.deadLetters.list(appIds, request.query.limit ?? 100) };
      },
    );

    app.post(
      '/v1/admin/webhooks/dead-letters/replay',
      {
        schema: {
          tags: ['admin'],
          summary:
            "Deliver dead letters again with fresh attempts (all of the app's when eventIds is absent)",
          body: Type.Object(
            {
              appId: Type.String({ pattern: APP_ID_PATTERN }),
              eventIds: Type.Optional(
                Type.Array(Type.String({ minLength: 1, maxLength: 200 }), { maxItems: 1000 }),
              ),
            },
            { additionalProperties: false },
          ),
          response: { 202: Type.Object({ replayed: Type.Array(Type.String()) }) },
        },
      },
      async (request, reply) => {
        deps.auth.requireAdmin(request);
        const replayed = await deps.deadLetters.replay(request.body.appId, request.body.eventIds);
        return reply.code(202).send({ replayed });
      },
    );
  };
}
