import { isIP } from 'node:net';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Ajv } from 'ajv';
import Fastify, {
  LogController,
  type FastifyBaseLogger,
  type FastifyInstance,
  type FastifyServerOptions,
  type RawServerDefault,
} from 'fastify';
import { FastifyOtelInstrumentation } from '@fastify/otel';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import type { TypeBoxTypeProvider } from '@fastify/type-provider-typebox';
import type { NetworkDenylist } from '@twofold/config';
import type { EventProducer } from '@twofold/kafka';
import type { Redis } from '@twofold/redis';
import type { ChallengeStore } from '@twofold/state';
import type { AppsRepository, PolicyRepository, Pool } from '@twofold/store';
import type { CodeVerifier, EnrollmentService, PolicySnapshot } from '@twofold/verification';
import type { Logger, ReadinessCheck, ServiceMetrics } from '@twofold/telemetry';
import type { Authenticator } from './auth.js';
import type { DecisionWaiter } from './decision-waiter.js';
import { installHttpMetrics } from './http-metrics.js';
import { installProblemHandlers } from './problem.js';
import { hostedPagesRoute } from './pages/hosted-pages.plugin.js';
import { registerProblemResponses } from './plugins/problem-responses.plugin.js';
import {
  DEFAULT_RATE_LIMITS,
  registerRequestLimits,
  type RateLimits,
} from './plugins/request-limits.plugin.js';
import { docsCsp, registerSecurityHeaders } from './plugins/security-headers.plugin.js';
import { registerStrictBodyValidation } from './plugins/strict-validation.plugin.js';
import { adminAppsRoute } from './routes/admin-apps.route.js';
import { adminAuditRoute } from './routes/admin-audit.route.js';
import { adminPolicyRoute } from './routes/admin-policy.route.js';
import { adminUsersRoute } from './routes/admin-users.route.js';
import { adminLockoutsRoute } from './routes/admin-lockouts.route.js';
import { challengesRoute } from './routes/challenges.route.js';
import { enrollmentsRoute } from './routes/enrollments.route.js';
import { healthRoute } from './routes/health.route.js';
import { loginEventsRoute } from './routes/login-events.route.js';
import { adminWebhooksRoute } from './routes/admin-webhooks.route.js';
import { sessionEventsRoute } from './routes/session-events.route.js';
import { sessionsRoute, type SessionApiDeps } from './routes/sessions.route.js';

// Same `ip` format as the event contracts use.
type AjvPlugin = NonNullable<NonNullable<FastifyServerOptions['ajv']>['plugins']>[number];
const addIpFormat = ((ajv: Ajv): Ajv =>
  ajv.addFormat('ip', { type: 'string', validate: (v: string) => isIP(v) !== 0 })) as unknown as AjvPlugin;

export type ApiInstance = FastifyInstance<
  RawServerDefault,
  IncomingMessage,
  ServerResponse,
  FastifyBaseLogger,
  TypeBoxTypeProvider
>;

export interface ApiDeps {
  logger: Logger;
  metrics: ServiceMetrics;
  producer: EventProducer;
  apps: AppsRepository;
  auth: Authenticator;
  waiter: DecisionWaiter;
  readiness: ReadinessCheck;
  publicUrl: string;
  challenges: ChallengeStore;
  codeVerifier: CodeVerifier;
  enrollment: EnrollmentService;
  policies: PolicyRepository;
  policySnapshot: PolicySnapshot;
  /** Rate limits per minute, counted in Redis for every replica (in memory without it); defaults when absent. */
  limits?: { rates?: RateLimits; redis?: Redis; keyPrefix?: string };
  /** Lockout state for the admin lockout routes; without it those routes are absent. */
  lockouts?: { redis: Redis; keyPrefix: string };
  /** Session state, session events (SSE) and webhook admin; without it those routes are absent. */
  sessions?: SessionApiDeps;
  /** Postgres for the admin audit search (GET /v1/admin/audit); without it that route is absent. */
  pool?: Pool;
  /** Networks a webhook URL may not name by address (WEBHOOK_DENIED_NETWORKS); the default list when absent. */
  webhookDenylist?: NetworkDenylist;
}

/** Builds the api without listening, so tests can inject requests or listen on port 0. */
export async function buildApi(deps: ApiDeps): Promise<ApiInstance> {
  const app: ApiInstance = Fastify({
    loggerInstance: deps.logger as FastifyBaseLogger,
    // Per-request lines would dominate the log at thousands of requests a second; requests
    // are counted in metrics, errors are logged by the problem handler.
    logController: new LogController({ disableRequestLogging: true }),
    bodyLimit: 64 * 1024,
    trustProxy: true,
    // Answered by installProblemHandlers instead, so a closing replica's 503 is problem+json too.
    return503OnClosing: false,
    ajv: {
      customOptions: { removeAdditional: false, coerceTypes: 'array', allErrors: false },
      plugins: [addIpFormat],
    },
  }).withTypeProvider<TypeBoxTypeProvider>();

  installProblemHandlers(app);
  registerStrictBodyValidation(app);
  registerProblemResponses(app);
  await registerSecurityHeaders(app, { publicUrl: deps.publicUrl });
  await registerRequestLimits(app, {
    limits: deps.limits?.rates ?? DEFAULT_RATE_LIMITS,
    redis: deps.limits?.redis,
    keyPrefix: deps.limits?.keyPrefix,
  });
  installHttpMetrics(app, deps.metrics);
  // Request spans; their trace context travels on in the headers of the events published.
  await app.register(
    new FastifyOtelInstrumentation({
      instrumentHooks: false,
      instrumentHandler: false,
      ignorePaths: ({ url }) => ['/healthz', '/readyz', '/metrics'].includes(url),
    }).plugin(),
  );
  await app.register(swagger, {
    openapi: {
      info: {
        title: 'twofold',
        version: '1',
        description: 'One second factor for every app behind one sign-on',
      },
      servers: [{ url: deps.publicUrl }],
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer' } } },
      security: [{ bearer: [] }],
    },
  });
  await app.register(swaggerUi, { routePrefix: '/docs', staticCSP: true, transformStaticCSP: docsCsp });
  await app.register(healthRoute({ readiness: deps.readiness, metrics: deps.metrics }));
  await app.register(loginEventsRoute({ auth: deps.auth, producer: deps.producer, waiter: deps.waiter }));
  await app.register(
    adminAppsRoute({
      auth: deps.auth,
      apps: deps.apps,
      producer: deps.producer,
      webhookDenylist: deps.webhookDenylist,
    }),
  );
  if (deps.pool) await app.register(adminAuditRoute({ auth: deps.auth, pool: deps.pool }));
  await app.register(
    challengesRoute({ auth: deps.auth, verifier: deps.codeVerifier, challenges: deps.challenges }),
  );
  await app.register(
    enrollmentsRoute({ auth: deps.auth, enrollment: deps.enrollment, publicUrl: deps.publicUrl }),
  );
  await app.register(
    adminPolicyRoute({
      auth: deps.auth,
      policies: deps.policies,
      snapshot: deps.policySnapshot,
      producer: deps.producer,
    }),
  );
  await app.register(adminUsersRoute({ auth: deps.auth, enrollment: deps.enrollment }));
  if (deps.lockouts)
    await app.register(adminLockoutsRoute({ auth: deps.auth, producer: deps.producer, ...deps.lockouts }));
  await app.register(
    hostedPagesRoute({
      challenges: deps.challenges,
      verifier: deps.codeVerifier,
      enrollment: deps.enrollment,
      apps: deps.apps,
      publicUrl: deps.publicUrl,
    }),
  );
  if (deps.sessions) {
    await app.register(sessionsRoute({ auth: deps.auth, ...deps.sessions }));
    await app.register(sessionEventsRoute({ auth: deps.auth, feed: deps.sessions.feed }));
    await app.register(
      adminWebhooksRoute({
        auth: deps.auth,
        apps: deps.apps,
        deadLetters: deps.sessions.deadLetters,
        producer: deps.producer,
      }),
    );
  }
  return app;
}
