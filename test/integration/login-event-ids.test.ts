// Login event ids are the apps' own. A decision is kept under its login's id (10 minutes), so
// another login sent with an id used already must never get that decision: the api answers
// 409 and the verifier sends the login to the DLQ with the reason, announcing nothing for it.
// The same login sent again (a retry) still gets its decision.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DLQ_HEADERS, hashSessionToken } from '@twofold/contracts';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, type Isolated } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';

let world: Isolated;
let services: RunningServices;
const keys: Record<string, string> = {};
const as = (appId: string) => apiClient(services.apiUrl, keys[appId]);

beforeAll(async () => {
  world = await isolated('login-event-ids', { database: true });
  services = await startServices(world, ['api', 'verifier']);
  const admin = apiClient(services.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);
  for (const appId of ['jira', 'wiki']) {
    const res = await admin<{ key: string }>('POST', '/v1/admin/apps', { appId });
    expect(res.status).toBe(201);
    keys[appId] = res.body.key;
  }
});

afterAll(async () => {
  await services?.stop();
  await world.cleanup();
});

describe('login event ids', () => {
  it("never answer a login with another login's decision", async () => {
    const dlq = await readTopic(world.kafka, world.topics.dlq);
    const decided = await readTopic(world.kafka, world.topics.secondFactor);
    const id = randomUUID();
    const wikiLogin = {
      id,
      type: 'twofold.login.succeeded',
      subject: 'mallory',
      data: { appId: 'wiki', session: hashSessionToken(randomUUID()), method: 'sso', ip: '203.0.113.9' },
    };
    const first = await as('wiki')<{ decision: string; appId: string }>(
      'POST',
      '/v1/login-events?wait=decision&timeoutMs=15000',
      wikiLogin,
    );
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    expect(first.body.appId).toBe('wiki');

    const collision = await as('jira')<{ status: number; detail: string }>(
      'POST',
      '/v1/login-events?wait=decision&timeoutMs=15000',
      {
        id,
        type: 'twofold.login.succeeded',
        subject: 'alice',
        data: {
          appId: 'jira',
          session: hashSessionToken(randomUUID()),
          method: 'password',
          ip: '203.0.113.10',
        },
      },
    );
    expect(collision.status, JSON.stringify(collision.body)).toBe(409);
    expect(collision.headers.get('content-type')).toMatch(/^application\/problem\+json/);
    expect(collision.body.detail).toMatch(/used already by another login/);

    const dead = await eventually(
      async () => dlq.messages.find((m) => m.key === 'alice'),
      30_000,
      "alice's login in the DLQ",
    );
    expect(dead.headers[DLQ_HEADERS.error]).toMatch(/used already by another login \(app wiki\)/);

    // The retry of the first login is the same login: its decision again.
    const retry = await as('wiki')<{ decision: string; appId: string }>(
      'POST',
      '/v1/login-events?wait=decision&timeoutMs=15000',
      wikiLogin,
    );
    expect(retry.status).toBe(200);
    expect(retry.body).toEqual(first.body);

    // Only the first login was announced decided, never alice's.
    const forId = decided
      .json<{ type: string; subject: string; data: { loginEventId: string } }>()
      .filter((e) => e.type === 'twofold.2fa.decided' && e.data.loginEventId === id);
    expect(forId.length).toBeGreaterThan(0);
    expect(forId.every((e) => e.subject === 'mallory')).toBe(true);
    await Promise.all([dlq.stop(), decided.stop()]);
  });
});
