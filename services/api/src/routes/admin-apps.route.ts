import { randomBytes } from 'node:crypto';
import Type from 'typebox';
import type { FastifyPluginAsyncTypebox } from '@fastify/type-provider-typebox';
import { canonicalAddress, DEFAULT_WEBHOOK_DENYLIST, type NetworkDenylist } from '@twofold/config';
import { APP_ID_PATTERN } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import { hashApiKey, type AppsRepository } from '@twofold/store';
import type { Authenticator } from '../auth.js';
import { publishAdminEvent } from '../admin-events.js';
import { problems } from '../problem.js';

const AppBody = Type.Object(
  {
    appId: Type.String({ pattern: APP_ID_PATTERN, description: 'e.g. jira' }),
    name: Type.Optional(Type.String({ minLength: 1, maxLength: 200 })),
    webhookUrl: Type.Optional(
      Type.String({
        format: 'uri',
        pattern: '^https?://',
        description:
          'where session events are POSTed; an address in WEBHOOK_DENIED_NETWORKS (link-local and cloud metadata by default) is refused, and a host name resolving into one is never delivered to',
      }),
    ),
    origins: Type.Optional(Type.Array(Type.String({ pattern: '^https?://[^/]+$' }), { maxItems: 50 })),
  },
  { additionalProperties: false },
);

/**
 * Why `webhookUrl` cannot be delivered to, or undefined when it can. JSON-schema `format: uri`
 * lets through what `new URL()` (and so the session broadcaster) rejects, such as
 * `http://jira:80800/hook` or `http://999.1.1.1/hook`; credentials (`user:pass@`) would be
 * dropped silently by the broadcaster's connection to the URL's origin. A host that is an
 * address in a denied network (cloud metadata, link-local) is refused here; a host name is
 * accepted, and the broadcaster checks the addresses it resolves to at each connection.
 */
export function webhookUrlProblem(webhookUrl: string, denylist: NetworkDenylist): string | undefined {
  let url: URL;
  try {
    url = new URL(webhookUrl);
  } catch {
    return `webhookUrl ${JSON.stringify(webhookUrl)} is not a valid URL (check the host and port)`;
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:')
    return `webhookUrl must be an http or https URL, not ${url.protocol}`;
  if (url.username || url.password)
    return 'webhookUrl must not carry credentials (user:password@); webhooks are signed with the webhook secret';
  const denial = denylist.denialOf(url.hostname);
  if (denial) {
    const host = canonicalAddress(url.hostname)?.address ?? url.hostname;
    const via = denial.embedded ? ` (as ${denial.embedded}, the IPv4 address it embeds)` : '';
    return (
      `webhookUrl host ${host} is in ${denial.network}${via}, a network ` +
      'webhooks are never sent to (WEBHOOK_DENIED_NETWORKS: link-local and cloud metadata addresses unless the ' +
      "operator changed it); give the address or host name of the app's own server"
    );
  }
  return undefined;
}

const AppView = Type.Object({
  appId: Type.String(),
  name: Type.String(),
  webhookUrl: Type.Union([Type.String(), Type.Null()]),
  origins: Type.Array(Type.String()),
  createdAt: Type.String({ format: 'date-time' }),
});

/**
 * Registering apps: the key is returned once and stored only as a hash. A registration
 * or key rotation is announced on the admin topic (twofold.admin.app_registered,
 * twofold.admin.app_key_rotated; never the key) inside its transaction and committed only
 * once announced: one that cannot be audited (Kafka) changes nothing and is answered 503.
 */
export function adminAppsRoute(deps: {
  auth: Authenticator;
  apps: AppsRepository;
  producer: EventProducer;
  /** Networks a webhook URL may not name by address (WEBHOOK_DENIED_NETWORKS); the default list when absent. */
  webhookDenylist?: NetworkDenylist;
}): FastifyPluginAsyncTypebox {
  const { producer } = deps;
  const webhookDenylist = deps.webhookDenylist ?? DEFAULT_WEBHOOK_DENYLIST;
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
        const urlProblem =
          request.body.webhookUrl && webhookUrlProblem(request.body.webhookUrl, webhookDenylist);
        if (urlProblem) throw problems.invalid(urlProblem);
        const key = `tfk_${randomBytes(32).toString('base64url')}`;
        const record = await deps.apps.upsert(
          {
            appId: request.body.appId,
            name: request.body.name ?? request.body.appId,
            keyHash: hashApiKey(key),
            webhookUrl: request.body.webhookUrl ?? null,
            origins: request.body.origins ?? [],
          },
          {
            beforeCommit: ({ app: changed, created }) =>
              publishAdminEvent(
                producer,
                created ? 'twofold.admin.app_registered' : 'twofold.admin.app_key_rotated',
                'admin',
                {
                  appId: changed.appId,
                  name: changed.name,
                  webhookUrl: changed.webhookUrl,
                  origins: changed.origins,
                },
              ),
          },
        );
        // After the commit: this replica drops the keys it kept now, the others within a second.
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
