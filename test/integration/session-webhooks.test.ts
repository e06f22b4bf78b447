// Session webhooks when apps misbehave: an app that never answers holds only its own lane;
// deliveries that use every attempt become dead letters that an admin lists and replays.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { verifyWebhookSignature } from '@twofold/client';
import { eventually } from '../support/stack.js';
import { createSessionWorld, type SessionWorld } from './session-world.js';

const APPS = ['jira', 'confluence', 'bitbucket'] as const;
let w: SessionWorld;

beforeAll(async () => {
  w = await createSessionWorld('session-webhooks', {
    appIds: APPS,
    // Small numbers so the dead-letter path runs in seconds: 3 attempts, 100 ms then 200 ms apart.
    webhooks: { attempts: 3, backoffMs: 100, timeoutMs: 500, concurrency: 4, refreshMs: 500 },
  });
});
afterAll(async () => w?.close());

const admin = (path: string, init: RequestInit = {}) =>
  fetch(`${w.apiUrl}${path}`, {
    ...init,
    headers: { authorization: `Bearer ${w.adminKey}`, 'content-type': 'application/json', ...init.headers },
  });

interface DeadLetterView {
  appId: string;
  eventId: string;
  type: string;
  session: string;
  attempts: number;
  failedReason: string;
}
const deadLetters = async (appId: string) =>
  (
    (await (await admin(`/v1/admin/webhooks/dead-letters?appId=${appId}`)).json()) as {
      deadLetters: DeadLetterView[];
    }
  ).deadLetters;

describe('one slow or dead app never delays the others', () => {
  it('confluence never answers: jira hears every session promptly; confluence’s deliveries are dead-lettered, then replayed to it', async () => {
    const confluence = w.receivers['confluence']!;
    const jira = w.receivers['jira']!;
    confluence.hanging = true;
    // Twice confluence's lane (4 in flight × 500 ms timeout) in a second.
    const produced = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const at = performance.now();
      const { session } = await w.verify({
        username: `kim${i}`,
        appId: 'jira',
        token: `crowd-${randomUUID()}`,
      });
      produced.set(session, at);
      await new Promise((r) => setTimeout(r, 25));
    }
    const latencies = await eventually(
      async () => {
        const ms = [...produced].map(([session, at]) => {
          const d = jira.deliveries.find((x) => x.event.data.session === session);
          return d ? d.receivedAt - at : undefined;
        });
        return ms.every((x) => x !== undefined) ? (ms as number[]) : undefined;
      },
      10_000,
      'jira hearing all twenty',
    );
    // Not delayed by confluence: jira had all twenty before confluence's first delivery used
    // up its attempts (3 × 500 ms timeouts plus backoff), a causal bound rather than a
    // wall-clock one that a loaded machine could break.
    expect(await deadLetters('confluence')).toEqual([]);
    expect(latencies).toHaveLength(20);

    const dead = await eventually(
      async () => {
        const list = await deadLetters('confluence');
        return list.length === produced.size ? list : undefined;
      },
      20_000,
      'confluence’s twenty dead letters',
    );
    for (const letter of dead) {
      expect(letter).toMatchObject({ appId: 'confluence', type: 'twofold.session.validated', attempts: 3 });
      expect(letter.failedReason).toContain('no answer within 500 ms');
      expect(produced.has(letter.session)).toBe(true);
    }
    expect(await deadLetters('jira')).toEqual([]);

    confluence.hanging = false;
    const replay = await admin('/v1/admin/webhooks/dead-letters/replay', {
      method: 'POST',
      body: JSON.stringify({ appId: 'confluence' }),
    });
    expect(replay.status).toBe(202);
    expect(((await replay.json()) as { replayed: string[] }).replayed).toHaveLength(20);
    await eventually(
      async () =>
        [...produced.keys()].every((s) => confluence.deliveries.some((d) => d.event.data.session === s))
          ? true
          : undefined,
      10_000,
      'the replayed deliveries',
    );
    for (const delivery of confluence.deliveries) {
      expect(
        verifyWebhookSignature({
          secret: w.secrets['confluence']!,
          headers: delivery.headers,
          body: delivery.body,
        }).type,
      ).toBe('twofold.session.validated');
    }
    expect(await deadLetters('confluence')).toEqual([]);
  });

  it('replays only the dead letters named, and only for admins', async () => {
    const bitbucket = w.receivers['bitbucket']!;
    await bitbucket.down();
    const sessions: string[] = [];
    for (let i = 0; i < 3; i++) {
      sessions.push(
        (await w.verify({ username: `lee${i}`, appId: 'jira', token: `crowd-${randomUUID()}` })).session,
      );
    }
    const dead = await eventually(
      async () => {
        const list = (await deadLetters('bitbucket')).filter((d) => sessions.includes(d.session));
        return list.length === 3 ? list : undefined;
      },
      15_000,
      'bitbucket’s three dead letters',
    );
    expect(dead[0]!.failedReason).toMatch(/ECONNREFUSED/);

    const asApp = await fetch(`${w.apiUrl}/v1/admin/webhooks/dead-letters`, {
      headers: { authorization: `Bearer ${w.keys['bitbucket']}` },
    });
    expect(asApp.status).toBe(403);

    await bitbucket.up();
    const chosen = dead[0]!;
    const replay = await admin('/v1/admin/webhooks/dead-letters/replay', {
      method: 'POST',
      body: JSON.stringify({ appId: 'bitbucket', eventIds: [chosen.eventId, 'not-a-dead-letter'] }),
    });
    expect(((await replay.json()) as { replayed: string[] }).replayed).toEqual([chosen.eventId]);
    await eventually(
      async () => bitbucket.deliveries.find((d) => d.event.id === chosen.eventId),
      10_000,
      'the one replayed delivery',
    );
    expect((await deadLetters('bitbucket')).filter((d) => sessions.includes(d.session))).toHaveLength(2);
  });

  it('gives each app its own signing secret, to admins only', async () => {
    const secret = await admin('/v1/admin/apps/jira/webhook-secret');
    expect(secret.status).toBe(200);
    expect(((await secret.json()) as { secret: string }).secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(new Set(Object.values(w.secrets)).size).toBe(3);
    expect((await admin('/v1/admin/apps/nope/webhook-secret')).status).toBe(404);
    const asApp = await fetch(`${w.apiUrl}/v1/admin/apps/jira/webhook-secret`, {
      headers: { authorization: `Bearer ${w.keys['jira']}` },
    });
    expect(asApp.status).toBe(403);
  });
});

describe('rotating an app’s webhook secret', () => {
  const rotate = (appId: string, body?: Record<string, unknown>) =>
    body
      ? admin(`/v1/admin/apps/${appId}/webhook-secret/rotate`, { method: 'POST', body: JSON.stringify(body) })
      : // No body and no content type, as `curl -X POST` sends it.
        fetch(`${w.apiUrl}/v1/admin/apps/${appId}/webhook-secret/rotate`, {
          method: 'POST',
          headers: { authorization: `Bearer ${w.adminKey}` },
        });
  /** Verifies a new session in jira and answers jira's webhook for it. */
  const deliveredToJira = async (username: string) => {
    const { session } = await w.verify({ username, appId: 'jira', token: `crowd-${randomUUID()}` });
    return eventually(
      async () => w.receivers['jira']!.deliveries.find((d) => d.event.data.session === session),
      15_000,
      `jira's webhook for ${username}`,
    );
  };
  const verify = (secret: string | string[], d: { headers: Record<string, unknown>; body: string }) =>
    verifyWebhookSignature({ secret, headers: d.headers as Record<string, string>, body: d.body });

  it('answers the new secret once; the old one still signs deliveries for the grace period, the SDK takes either', async () => {
    const old = w.secrets['jira']!;
    const res = await rotate('jira', { graceSeconds: 3_600 });
    expect(res.status).toBe(200);
    expect(res.headers.get('cache-control')).toBe('no-store');
    const rotated = (await res.json()) as { appId: string; secret: string; previousSecretValidUntil: string };
    expect(rotated.appId).toBe('jira');
    expect(rotated.secret).toMatch(/^whsec_[A-Za-z0-9+/]{43}=$/);
    expect(rotated.secret).not.toBe(old);
    const until = Date.parse(rotated.previousSecretValidUntil);
    expect(until).toBeGreaterThan(Date.now() + 3_500_000);
    expect(until).toBeLessThan(Date.now() + 3_700_000);
    const shown = (await (await admin('/v1/admin/apps/jira/webhook-secret')).json()) as { secret: string };
    expect(shown.secret).toBe(rotated.secret);

    await w.webhooks.refresh();
    const delivery = await deliveredToJira('otto');
    const signatures = String(delivery.headers['webhook-signature']).split(' ');
    expect(signatures).toHaveLength(2);
    expect(verify(rotated.secret, delivery).id).toBe(delivery.event.id);
    expect(verify(old, delivery).id).toBe(delivery.event.id);
    expect(verify([rotated.secret, old], delivery).id).toBe(delivery.event.id);
    // Other apps keep their own single secret.
    const other = await eventually(
      async () => w.receivers['bitbucket']!.deliveries.find((d) => d.event.id === delivery.event.id),
      15_000,
      'bitbucket’s copy',
    );
    expect(String(other.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verify(w.secrets['bitbucket']!, other).id).toBe(delivery.event.id);

    // A rotation without grace: the replaced secret stops signing at once.
    const now = (await (await rotate('jira', { graceSeconds: 0 })).json()) as {
      secret: string;
      previousSecretValidUntil: string | null;
    };
    expect(now.previousSecretValidUntil).toBeNull();
    await w.webhooks.refresh();
    const after = await deliveredToJira('pia');
    expect(String(after.headers['webhook-signature']).split(' ')).toHaveLength(1);
    expect(verify(now.secret, after).id).toBe(after.event.id);
    for (const stale of [rotated.secret, old]) {
      expect(() => verify(stale, after)).toThrow(/no webhook-signature matches/);
    }
    w.secrets['jira'] = now.secret;
  });

  it('defaults to a day of grace without a body, and refuses bad input, unknown apps and non-admins', async () => {
    const res = await rotate('jira');
    expect(res.status).toBe(200);
    const body = (await res.json()) as { secret: string; previousSecretValidUntil: string };
    expect(Date.parse(body.previousSecretValidUntil)).toBeGreaterThan(Date.now() + 86_000_000);
    w.secrets['jira'] = body.secret;

    const bad = await rotate('jira', { graceSeconds: -1 });
    expect(bad.status).toBe(400);
    expect(bad.headers.get('content-type')).toContain('application/problem+json');
    expect((await rotate('jira', { graceSeconds: 60, extra: true })).status).toBe(400);
    expect((await rotate('nope')).status).toBe(404);
    const asApp = await fetch(`${w.apiUrl}/v1/admin/apps/jira/webhook-secret/rotate`, {
      method: 'POST',
      headers: { authorization: `Bearer ${w.keys['jira']}` },
    });
    expect(asApp.status).toBe(403);
    // The secret did not change through any refused call.
    const shown = (await (await admin('/v1/admin/apps/jira/webhook-secret')).json()) as { secret: string };
    expect(shown.secret).toBe(body.secret);
  });

  it('is in the OpenAPI document', async () => {
    const doc = (await (await fetch(`${w.apiUrl}/docs/json`)).json()) as {
      paths: Record<string, Record<string, { requestBody?: unknown; responses: Record<string, unknown> }>>;
    };
    const route = doc.paths['/v1/admin/apps/{appId}/webhook-secret/rotate']?.['post'];
    expect(route).toBeDefined();
    expect(route!.responses['200']).toBeDefined();
    expect(JSON.stringify(route!.requestBody)).toContain('graceSeconds');
  });
});
