// The session broadcaster through real Kafka, Redis and Postgres, with three apps (jira,
// confluence, bitbucket) as local webhook receivers and SSE subscribers, and the api built
// in-process: verify once, and every app knows; end the session, and every app hears it.
import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  signWebhook,
  subscribeSessionEvents,
  verifyWebhookSignature,
  WebhookVerificationError,
  type SessionEvent,
  type SessionEventsSubscription,
} from '@twofold/client';
import { createEvent, hashSessionToken } from '@twofold/contracts';
import { groupLag } from '@twofold/kafka';
import { trimSessionEvents } from '@twofold/state';
import { buildSessionBroadcaster } from '../../services/session-broadcaster/src/session-broadcaster.js';
import { eventually } from '../support/stack.js';
import { readTopic } from '../support/topic-reader.js';
import { createSessionWorld, type Delivery, type SessionWorld } from './session-world.js';

const APPS = ['jira', 'confluence', 'bitbucket'] as const;
type AppId = (typeof APPS)[number];
type Kind = 'twofold.session.validated' | 'twofold.session.revoked';

let w: SessionWorld;
let topic: Awaited<ReturnType<typeof readTopic>>;
const streams = {} as Record<
  AppId,
  { events: { id: string; event: SessionEvent }[]; sub: SessionEventsSubscription }
>;
/** Every session the tests touched, with the state it must end in. */
const expected = new Map<string, boolean>();

const sessionOf = (e: { data: { session: string } }) => e.data.session;
const onKafka = (session: string, type: Kind) =>
  topic.json<SessionEvent>().filter((e) => e.type === type && sessionOf(e) === session);
const onWebhook = (appId: AppId, session: string, type: Kind) =>
  w.receivers[appId]!.deliveries.filter((d) => d.event.type === type && sessionOf(d.event) === session);
const onSse = (appId: AppId, session: string, type: Kind) =>
  streams[appId].events.filter((e) => e.event.type === type && sessionOf(e.event) === session);

/** Waits until `appId` heard `type` for `session` on the topic, by webhook and by SSE. */
async function heardEveryWay(appId: AppId, session: string, type: Kind, timeoutMs = 15_000) {
  return eventually(
    async () => {
      const kafka = onKafka(session, type)[0];
      const webhook = onWebhook(appId, session, type)[0];
      const sse = onSse(appId, session, type)[0];
      return kafka && webhook && sse ? { kafka, webhook, sse } : undefined;
    },
    timeoutMs,
    `${appId} hearing ${type} for ${session.slice(0, 8)} by Kafka, webhook and SSE`,
  );
}

beforeAll(async () => {
  w = await createSessionWorld('session', {
    appIds: APPS,
    // "Down for a minute" shortened: retries start at 100 ms and double, 12 attempts (~7 min).
    webhooks: { attempts: 12, backoffMs: 100, timeoutMs: 1_000, concurrency: 8, refreshMs: 500 },
  });
  topic = await readTopic(w.world.kafka, w.world.topics.session);
  await Promise.all(
    APPS.map(
      (appId) =>
        new Promise<void>((resolve) => {
          const events: { id: string; event: SessionEvent }[] = [];
          streams[appId] = {
            events,
            sub: subscribeSessionEvents({
              baseUrl: w.apiUrl,
              appKey: w.keys[appId]!,
              onEvent: (event, { id }) => void events.push({ id, event }),
              onOpen: resolve,
              reconnectDelayMs: 100,
            }),
          };
        }),
    ),
  );
});

afterAll(async () => {
  for (const { sub } of Object.values(streams)) await sub?.close();
  await topic?.stop();
  await w?.close();
});

describe('verify once, every app knows', () => {
  it('verify in jira → confluence and bitbucket hear session.validated by Kafka, webhook and SSE, and the api says verified', async () => {
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username: ' Alice ', appId: 'jira', token });
    expected.set(token, true);
    for (const appId of ['confluence', 'bitbucket'] as const) {
      const ways = await heardEveryWay(appId, session, 'twofold.session.validated');
      const event = verifyWebhookSignature({
        secret: w.secrets[appId]!,
        headers: ways.webhook.headers,
        body: ways.webhook.body,
      });
      expect(event.data).toMatchObject({ session, username: 'alice', appId: 'jira' });
      // The same event, byte for byte the same id, on every channel.
      expect(ways.sse.event.id).toBe(event.id);
      expect(ways.kafka.id).toBe(event.id);
    }
    const message = topic.messages.find((m) => m.value?.toString().includes(session));
    expect(message?.key).toBe(session);

    const answer = await w.current('bitbucket', token);
    expect(answer.status).toBe(200);
    expect(answer.body).toMatchObject({ verified: true, username: 'alice', appId: 'jira' });
    const { verifiedAt, expiresAt } = answer.body as { verifiedAt: string; expiresAt: string };
    expect(Date.parse(expiresAt) - Date.parse(verifiedAt)).toBe(28_800_000);

    expect((await w.current('confluence', `crowd-${randomUUID()}`)).body).toEqual({ verified: false });
  });

  it('GET /v1/sessions/current refuses callers without an app key and requests without the session header', async () => {
    const anonymous = await fetch(`${w.apiUrl}/v1/sessions/current`, {
      headers: { 'x-twofold-session': 'x' },
    });
    expect(anonymous.status).toBe(401);
    const noHeader = await fetch(`${w.apiUrl}/v1/sessions/current`, {
      headers: { authorization: `Bearer ${w.keys['jira']}` },
    });
    expect(noHeader.status).toBe(400);
    expect(noHeader.headers.get('content-type')).toContain('application/problem+json');
    expect(((await noHeader.json()) as { detail: string }).detail).toContain('x-twofold-session');
  });

  it('logout in bitbucket → every app hears session.revoked every way, and the api says not verified', async () => {
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username: 'dave', appId: 'jira', token });
    await heardEveryWay('bitbucket', session, 'twofold.session.validated');
    await w.logout({ username: 'dave', appId: 'bitbucket', token });
    expected.set(token, false);
    for (const appId of APPS) {
      const ways = await heardEveryWay(appId, session, 'twofold.session.revoked');
      expect(ways.kafka.data).toMatchObject({ session, reason: 'logout' });
    }
    expect((await w.current('jira', token)).body).toEqual({ verified: false });
  });

  it('a user lockout revokes all that user’s sessions, an admin action too, and nobody else’s', async () => {
    const bob = [`crowd-${randomUUID()}`, `crowd-${randomUUID()}`];
    const carol = `crowd-${randomUUID()}`;
    const bobSessions = [];
    for (const token of bob)
      bobSessions.push((await w.verify({ username: 'bob', appId: 'confluence', token })).session);
    const carolSession = (await w.verify({ username: 'carol', appId: 'jira', token: carol })).session;
    for (const s of [...bobSessions, carolSession])
      await heardEveryWay('jira', s, 'twofold.session.validated');

    await w.world.producer.publish('security', [
      createEvent('twofold.lockout.imposed', 'service/lockout-detector', 'bob', {
        scope: 'user',
        key: 'bob',
        until: null,
        failures: 10,
        rule: 'user-failures',
      }),
    ]);
    for (const s of bobSessions) {
      const ways = await heardEveryWay('confluence', s, 'twofold.session.revoked');
      expect(ways.webhook.event.data.reason).toBe('lockout');
    }
    for (const token of bob) expect((await w.current('jira', token)).body.verified).toBe(false);
    expect((await w.current('jira', carol)).body.verified).toBe(true);

    await w.world.producer.publish('admin', [
      createEvent('twofold.admin.sessions_revoked', 'app/admin', 'carol', { by: 'root' }),
    ]);
    const ways = await heardEveryWay('bitbucket', carolSession, 'twofold.session.revoked');
    expect(ways.sse.event.data).toMatchObject({ reason: 'admin' });
    expect((await w.current('jira', carol)).body.verified).toBe(false);
    for (const token of [...bob, carol]) expected.set(token, false);
  });
});

describe('order per session', () => {
  /** Publishes a validation for a marker session of the same user and waits for it: everything before it on that partition is done. */
  async function drained(username: string) {
    const { session } = await w.verify({ username, appId: 'jira', token: `marker-${randomUUID()}` });
    await eventually(async () => onKafka(session, 'twofold.session.validated')[0], 15_000, 'the marker');
  }

  it('a revoke that follows a validation stays revoked when the validation is redelivered', async () => {
    for (const revoke of ['logout', 'lockout'] as const) {
      const username = `erin-${revoke}`;
      const token = `crowd-${randomUUID()}`;
      const session = hashSessionToken(token);
      const validation = createEvent('twofold.2fa.verified', 'service/verifier', username, {
        appId: 'jira',
        session,
        method: 'totp',
      });
      await w.world.producer.publish('secondFactor', [validation]);
      await heardEveryWay('jira', session, 'twofold.session.validated');
      if (revoke === 'logout') await w.logout({ username, appId: 'confluence', token });
      else
        await w.world.producer.publish('security', [
          createEvent('twofold.lockout.imposed', 'service/lockout-detector', username, {
            scope: 'user',
            key: username,
            until: null,
            failures: 10,
            rule: 'user-failures',
          }),
        ]);
      await heardEveryWay('jira', session, 'twofold.session.revoked');

      // Redelivery: the very message of the validation comes again (a consumer crash before
      // its commit looks exactly like this), twice, and an older validation too.
      const older = createEvent('twofold.2fa.verified', 'service/verifier', username, validation.data, {
        time: new Date(Date.parse(validation.time) - 60_000),
      });
      await w.world.producer.publish('secondFactor', [validation, validation, older]);
      await drained(username);

      expect((await w.current('bitbucket', token)).body).toEqual({ verified: false });
      expect(onKafka(session, 'twofold.session.validated')).toHaveLength(1);
      expect(onKafka(session, 'twofold.session.revoked')).toHaveLength(1);
      expected.set(token, false);
    }
  });

  it('after a lockout, a newer verification of the same session counts again; after a logout it never does', async () => {
    const username = 'frank';
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username, appId: 'jira', token });
    await heardEveryWay('jira', session, 'twofold.session.validated');
    await w.world.producer.publish('admin', [
      createEvent('twofold.admin.sessions_revoked', 'app/admin', username, {}),
    ]);
    await heardEveryWay('jira', session, 'twofold.session.revoked');
    await w.verify({ username, appId: 'confluence', token, time: new Date(Date.now() + 1_000) });
    await eventually(async () =>
      onKafka(session, 'twofold.session.validated').length === 2 ? true : undefined,
    );
    expect((await w.current('jira', token)).body).toMatchObject({ verified: true, appId: 'confluence' });

    await w.logout({ username, appId: 'jira', token });
    await eventually(async () =>
      onKafka(session, 'twofold.session.revoked').length === 2 ? true : undefined,
    );
    await w.verify({ username, appId: 'jira', token, time: new Date(Date.now() + 5_000) });
    await drained(username);
    expect((await w.current('jira', token)).body).toEqual({ verified: false });
    expected.set(token, false);
  });
});

describe('webhooks', () => {
  it('bitbucket’s webhook down for a while → its deliveries arrive when it is back; jira’s are not delayed', async () => {
    const bitbucket = w.receivers['bitbucket']!;
    const jira = w.receivers['jira']!;
    await bitbucket.down();
    const sessions: { session: string; producedAt: number }[] = [];
    for (let i = 0; i < 5; i++) {
      const producedAt = performance.now();
      const { session } = await w.verify({
        username: `gina${i}`,
        appId: 'confluence',
        token: `crowd-${randomUUID()}`,
      });
      sessions.push({ session, producedAt });
      await new Promise((r) => setTimeout(r, 200));
    }
    const jiraLatencies = await eventually(
      async () => {
        const got = sessions.map(({ session, producedAt }) => {
          const d = jira.deliveries.find((x) => sessionOf(x.event) === session);
          return d ? d.receivedAt - producedAt : undefined;
        });
        return got.every((ms) => ms !== undefined) ? (got as number[]) : undefined;
      },
      10_000,
      'jira receiving every validation',
    );
    // Jira hears each within a second while bitbucket refuses connections.
    expect(Math.max(...jiraLatencies)).toBeLessThan(1_000);
    expect(
      bitbucket.deliveries.filter((d) => sessions.some((s) => s.session === sessionOf(d.event))),
    ).toEqual([]);

    await new Promise((r) => setTimeout(r, 6_000)); // "a minute", shortened
    const backAt = performance.now();
    await bitbucket.up();
    const late = await eventually(
      async () => {
        const got = sessions.map(({ session }) =>
          bitbucket.deliveries.find((x) => sessionOf(x.event) === session),
        );
        return got.every(Boolean) ? (got as Delivery[]) : undefined;
      },
      30_000,
      'bitbucket receiving the deliveries it missed',
    );
    for (const delivery of late) {
      expect(delivery.receivedAt).toBeGreaterThan(backAt);
      // Signed at the attempt that succeeded: fresh, so the SDK accepts it.
      expect(() =>
        verifyWebhookSignature({
          secret: w.secrets['bitbucket']!,
          headers: delivery.headers,
          body: delivery.body,
        }),
      ).not.toThrow();
    }
  }, 60_000);

  it('the SDK rejects forged and stale webhooks and accepts the real ones', async () => {
    const token = `crowd-${randomUUID()}`;
    const { session } = await w.verify({ username: 'hank', appId: 'jira', token });
    const real = (await heardEveryWay('confluence', session, 'twofold.session.validated')).webhook;
    const secret = w.secrets['confluence']!;
    expect(verifyWebhookSignature({ secret, headers: real.headers, body: real.body }).data.session).toBe(
      session,
    );

    const reject = (input: Parameters<typeof verifyWebhookSignature>[0]) => {
      try {
        verifyWebhookSignature(input);
      } catch (err) {
        expect(err).toBeInstanceOf(WebhookVerificationError);
        return (err as WebhookVerificationError).code;
      }
      return 'accepted';
    };
    // Another app's secret, a tampered body, a signature made up by an attacker.
    expect(reject({ secret: w.secrets['jira']!, headers: real.headers, body: real.body })).toBe(
      'bad_signature',
    );
    const tampered = real.body.replace('"hank"', '"mallory"');
    expect(reject({ secret, headers: real.headers, body: tampered })).toBe('bad_signature');
    const forgedSecret = 'whsec_' + Buffer.alloc(32, 1).toString('base64');
    const timestamp = Math.floor(Date.now() / 1000);
    const forged = {
      ...real.headers,
      'webhook-signature': signWebhook({
        secret: forgedSecret,
        id: real.event.id,
        timestamp,
        body: tampered,
      }),
      'webhook-timestamp': String(timestamp),
    };
    expect(reject({ secret, headers: forged, body: tampered })).toBe('bad_signature');
    // The real delivery replayed ten minutes later.
    expect(reject({ secret, headers: real.headers, body: real.body, now: Date.now() + 600_000 })).toBe(
      'stale',
    );
    expect(
      reject({ secret, headers: { ...real.headers, 'webhook-signature': undefined }, body: real.body }),
    ).toBe('missing_header');
    expected.set(token, true);
  });
});

describe('server-sent events', () => {
  it('an SSE client that reconnects with Last-Event-ID misses nothing (api restart, and a later resume)', async () => {
    const received: { id: string; event: SessionEvent }[] = [];
    let opened = 0;
    const sub = subscribeSessionEvents({
      baseUrl: w.apiUrl,
      appKey: w.keys['confluence']!,
      onEvent: (event, { id }) => void received.push({ id, event }),
      onOpen: () => void opened++,
      reconnectDelayMs: 100,
    });
    await eventually(async () => (opened > 0 ? true : undefined), 5_000, 'the stream to open');

    const sessions: string[] = [];
    const verifySome = async (n: number) => {
      for (let i = 0; i < n; i++) {
        sessions.push(
          (
            await w.verify({
              username: `ivy${sessions.length}`,
              appId: 'jira',
              token: `crowd-${randomUUID()}`,
            })
          ).session,
        );
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const seen = () => new Set(received.map((r) => sessionOf(r.event)));
    await verifySome(5);
    await eventually(
      async () => (sessions.every((s) => seen().has(s)) ? true : undefined),
      10_000,
      'first five',
    );

    // The api goes away (every stream breaks) while sessions keep being verified.
    const restarting = w.restartApi(1_500);
    await verifySome(10);
    await restarting;
    await verifySome(5);
    await eventually(
      async () => (sessions.every((s) => seen().has(s)) ? true : undefined),
      15_000,
      'all twenty',
    );
    expect(opened).toBeGreaterThan(1);
    // Each once, in stream order.
    const ids = received.map((r) => r.id);
    expect(new Set(ids).size).toBe(ids.length);
    expect([...ids].sort(compareIds)).toEqual(ids);

    // An app that stored its position resumes from it after a restart of its own.
    const position = sub.lastEventId!;
    await sub.close();
    const missed: string[] = [];
    for (let i = 0; i < 4; i++)
      missed.push(
        (await w.verify({ username: `jack${i}`, appId: 'jira', token: `crowd-${randomUUID()}` })).session,
      );
    await eventually(async () =>
      missed.every((s) => onKafka(s, 'twofold.session.validated')[0]) ? true : undefined,
    );
    const resumed: SessionEvent[] = [];
    const again = subscribeSessionEvents({
      baseUrl: w.apiUrl,
      appKey: w.keys['confluence']!,
      lastEventId: position,
      onEvent: (event) => void resumed.push(event),
    });
    try {
      await eventually(
        async () => (missed.every((s) => resumed.some((e) => sessionOf(e) === s)) ? true : undefined),
        10_000,
        'the four events sent while away',
      );
      // Nothing from before the stored position comes again.
      expect(resumed.filter((e) => sessions.includes(sessionOf(e)))).toEqual([]);
    } finally {
      await again.close();
    }
  }, 60_000);

  it('tells a client that resumes from a trimmed position about the gap, then goes on', async () => {
    const { session: first } = await w.verify({
      username: 'kate',
      appId: 'jira',
      token: `crowd-${randomUUID()}`,
    });
    await heardEveryWay('jira', first, 'twofold.session.validated');
    const position = onSse('jira', first, 'twofold.session.validated')[0]!.id;
    const later: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { session } = await w.verify({
        username: `kate${i}`,
        appId: 'jira',
        token: `crowd-${randomUUID()}`,
      });
      await heardEveryWay('jira', session, 'twofold.session.validated');
      later.push(session);
    }
    // The replay buffer keeps only the newest entry now (as MAXLEN trimming does under load).
    expect(await trimSessionEvents(w.redis, w.world.config.redis.keyPrefix, 1)).toBeGreaterThan(2);
    let gaps = 0;
    const resumed: SessionEvent[] = [];
    const sub = subscribeSessionEvents({
      baseUrl: w.apiUrl,
      appKey: w.keys['jira']!,
      lastEventId: position,
      onGap: () => void gaps++,
      onEvent: (event) => void resumed.push(event),
    });
    try {
      await eventually(async () => (resumed.some((e) => sessionOf(e) === later[2]) ? true : undefined));
      expect(gaps).toBe(1);
      expect(resumed.map(sessionOf)).toEqual([later[2]]);
    } finally {
      await sub.close();
    }
  });

  it('refuses a stream without a valid app key, or with a malformed Last-Event-ID', async () => {
    expect((await fetch(`${w.apiUrl}/v1/session-events`)).status).toBe(401);
    const bad = await fetch(`${w.apiUrl}/v1/session-events`, {
      headers: { authorization: `Bearer ${w.keys['jira']}`, 'last-event-id': 'yesterday' },
    });
    expect(bad.status).toBe(400);
  });
});

describe('replay', () => {
  it('replaying every topic from the beginning (a new consumer group) leaves every session as it was', async () => {
    const replayGroup = `${w.world.config.kafka.groupPrefix}session-broadcaster-replay`;
    const replayer = buildSessionBroadcaster({
      kafka: w.world.kafka,
      producer: w.world.producer,
      redis: w.redis,
      logger: w.world.logger,
      metrics: w.world.metrics,
      groupId: replayGroup,
      keyPrefix: w.world.config.redis.keyPrefix,
      sessionTtlSeconds: () => 28_800,
    });
    await replayer.start();
    try {
      const topics = [
        w.world.topics.login,
        w.world.topics.secondFactor,
        w.world.topics.security,
        w.world.topics.admin,
      ];
      await eventually(
        async () => ((await groupLag(w.world.kafka, replayGroup, topics)) === 0 ? true : undefined),
        30_000,
        'the replay to catch up',
      );
    } finally {
      await replayer.stop();
    }
    expect(expected.size).toBeGreaterThan(5);
    for (const [token, verified] of expected) {
      expect((await w.current('jira', token)).body.verified, token).toBe(verified);
    }
  }, 60_000);
});

function compareIds(a: string, b: string): number {
  const [am, as] = a.split('-').map(BigInt) as [bigint, bigint];
  const [bm, bs] = b.split('-').map(BigInt) as [bigint, bigint];
  return am === bm ? Number(as - bs) : am < bm ? -1 : 1;
}
