import { randomBytes } from 'node:crypto';
import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { APP_ID_PATTERN } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import type { WebhookDeadLetters } from '@twofold/state';
import type { AppsRepository } from '@twofold/store';
import type { Authenticator } from '../auth.js';
import { publishAdminEvent } from '../admin-events.js';
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

/** How long a replaced webhook secret still signs deliveries unless the rotation says otherwise. */
export const DEFAULT_WEBHOOK_SECRET_GRACE_SECONDS = 86_400;

const RotateBody = Type.Object(
  {
    graceSeconds: Type.Optional(
      Type.Integer({
        minimum: 0,
        maximum: 30 * 86_400,
        description:
          'how long deliveries are also signed with the old secret (default 86400; 0: the old one stops at once)',
      }),
    ),
  },
  { additionalProperties: false },
);

const RotatedSecret = Type.Object({
  appId: Type.String(),
  secret: Type.String({ description: 'the new whsec_… secret' }),
  previousSecretValidUntil: Type.Union([Type.String({ format: 'date-time' }), Type.Null()], {
    description: 'until when deliveries also carry a signature by the old secret',
  }),
});

/** Webhook administration: each app's signing secret, and the dead letters of session webhooks. */
export function adminWebhooksRoute(deps: {
  auth: Authenticator;
  apps: AppsRepository;
  deadLetters: WebhookDeadLetters;
  /** Admin topic for the audit trail of rotations; without it they are not announced. */
  producer: EventProducer;
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
        await deps.auth.requireAdmin(request);
        const secret = await deps.apps.webhookSecret(request.params.appId);
        if (!secret)
          throw problems.notFound(`no app ${request.params.appId}; register it with POST /v1/admin/apps`);
        return reply.header('cache-control', 'no-store').send({ appId: request.params.appId, secret });
      },
    );

    app.post(
      '/v1/admin/apps/:appId/webhook-secret/rotate',
      {
        schema: {
          tags: ['admin'],
          summary:
            "Replace the app's webhook secret; the new one is in the answer, and the old one still signs deliveries for graceSeconds",
          description:
            'While the grace period lasts every delivery carries two signatures (`webhook-signature: v1,<new> v1,<old>`), so the app verifies with either secret while it switches; the SDK takes both (`secret: [new, old]`). Senders pick the new secret up within TWOFOLD_WEBHOOK_REFRESH_MS.',
          params: AppParams,
          body: RotateBody,
          response: { 200: RotatedSecret },
        },
        // No body at all (`curl -X POST`) means every default.
        preValidation: async (request) => {
          request.body ??= {};
        },
      },
      async (request, reply) => {
        await deps.auth.requireAdmin(request);
        const { appId } = request.params;
        const graceSeconds = request.body.graceSeconds ?? DEFAULT_WEBHOOK_SECRET_GRACE_SECONDS;
        const secret = `whsec_${randomBytes(32).toString('base64')}`;
        // Announced inside the rotation's transaction and committed only once announced: a
        // rotation that cannot be audited (Kafka) leaves the old secret in place and is a 503.
        const rotated = await deps.apps.rotateWebhookSecret(appId, secret, graceSeconds, {
          beforeCommit: ({ previousValidUntil }) =>
            publishAdminEvent(deps.producer, 'twofold.admin.webhook_secret_rotated', 'admin', {
              appId,
              previousSecretValidUntil: previousValidUntil?.toISOString() ?? null,
            }),
        });
        if (!rotated) throw problems.notFound(`no app ${appId}; register it with POST /v1/admin/apps`);
        const previousSecretValidUntil = rotated.previousValidUntil?.toISOString() ?? null;
        return reply
          .header('cache-control', 'no-store')
          .send({ appId, secret: rotated.secret, previousSecretValidUntil });
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
        await deps.auth.requireAdmin(request);
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
        await deps.auth.requireAdmin(request);
        const replayed = await deps.deadLetters.replay(request.body.appId, request.body.eventIds);
        return reply.code(202).send({ replayed });
      },
    );
  };
}
