// Trace context travels with the work: a traceparent sent to the api arrives on the login
// event, and the verifier's decision event continues the same trace.
import { randomBytes, randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

let world: Isolated;
let services: RunningServices;
beforeAll(async () => {
  world = await isolated('tracing', { database: true });
  services = await startServices(world, ['api', 'verifier']);
});
afterAll(async () => {
  await services.stop();
  await world.cleanup();
});

describe('trace context through Kafka', () => {
  it('api request → login event → decision event share one trace id', async () => {
    const traceId = randomBytes(16).toString('hex');
    const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
    const { body } = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
    const logins = await readTopic(world.kafka, world.topics.login);
    const decisions = await readTopic(world.kafka, world.topics.secondFactor);
    const id = randomUUID();
    const res = await apiClient(services.apiUrl, body.key)(
      'POST',
      '/v1/login-events',
      {
        id,
        type: 'twofold.login.succeeded',
        subject: 'tracy',
        data: { appId: 'jira', session: hashSessionToken(id), method: 'sso', ip: '192.0.2.8' },
      },
      { traceparent: `00-${traceId}-${randomBytes(8).toString('hex')}-01` },
    );
    expect(res.status).toBe(202);
    const login = await eventually(
      async () => logins.messages.find((m) => m.value?.toString().includes(id)),
      20_000,
      'login',
    );
    expect(login.headers['traceparent']).toMatch(new RegExp(`^00-${traceId}-`));
    const decided = await eventually(
      async () => decisions.messages.find((m) => m.value?.toString().includes(`decided-${id}`)),
      20_000,
      'decision',
    );
    expect(decided.headers['traceparent']).toMatch(new RegExp(`^00-${traceId}-`));
    await Promise.all([logins.stop(), decisions.stop()]);
  });
});
