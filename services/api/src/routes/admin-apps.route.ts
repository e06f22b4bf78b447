import { randomBytes } from 'node:crypto';
import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { APP_ID_PATTERN } from '@twofold/contracts';
import { hashApiKey, type AppsRepository } from '@twofold/store';
import type { Authenticator } from '../auth.js';

const AppBody = Type.Object(
  {
    appId: Type.String({ pattern: APP_ID_PATTERN, description: 'e.g. jira' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    webhookUrl: Type.Optional(Type.String({ format: 'uri', pattern: '^https?://' })),
    origins: Type.Optional(Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), { maxItems: 50 })),
  },
  { additionalProperties: false },
);

const AppView = Type.Object({
  appId: Type.String(),
  name: Type.String(),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  origins: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
});

/** Registering apps: the key is returned once and stored only as a hash. */
export function adminAppsRoute(deps: {
  auth: Authenticator;
  apps: AppsRepository;
}): FastifyPluginAsyncTypebox {
  return async (app) => {
    app.post(
      '/v1/admin/apps',
      {
        schema: {
          tags: ['admin'],
          summary: 'Register an app (or rotate its key); the key is shown this once',
          body: AppBody,
          response: { 201: Type.Intersect([AppView, Type.Object({ key: Type.String() })]) },
        },
      },
      async (request, reply) => {
        await deps.auth.requireAdmin(request);
        const key = `tfk_${randomBytes(32).toString('base64url')}`;
        const record = await deps.apps.upsert({
          appId: request.body.appId,
          name: request.body.name ?? request.body.appId,
          keyHash: hashApiKey(key),
          webhookUrl: request.body.webhookUrl ?? null,
          origins: request.body.origins ?? [],
        });
        deps.auth.forget();
        return reply.code(201).send({ ...record, createdAt: record.createdAt.toISOString(), key });
      },
    );
    app.get(
      '/v1/admin/apps',
      {
        schema: {
          tags: ['admin'],
          summary: 'List registered apps',
          response: { 200: Type.Object({ apps: Type.Array(AppView) }) },
        },
      },
      async (request) => {
        await deps.auth.requireAdmin(request);
        const apps = await deps.apps.list();
        return { apps: apps.map((a) => ({ ...a, createdAt: a.createdAt.toISOString() })) };
      },
    );
  };
}
