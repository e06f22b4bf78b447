import type { FastifyRequest } from 'fastify';
import { describe, expect, it } from 'vitest';
import type { AppRecord, AppsRepository } from '@twofold/store';
import { createAuthenticator } from './auth.js';

const jira: AppRecord = {
  appId: 'jira',
  name: 'jira',
  webhookUrl: null,
  origins: [],
  createdAt: new Date(0),
};
const request = (key: string) => ({ headers: { authorization: `Bearer ${key}` } }) as FastifyRequest;

/** An apps repository that knows one key, counts lookups, and can hold a lookup open. */
function fakeApps() {
  const state = {
    valid: true,
    version: '1',
    lookups: 0,
    hold: undefined as Promise<void> | undefined,
    versionFails: false,
    /** A connection gone silent: version checks never answer. */
    versionHangs: false,
  };
  const apps = {
    async findByKeyHash() {
      state.lookups++;
      const valid = state.valid; // read before the hold: the row as it was
      if (state.hold) await state.hold;
      return valid ? jira : undefined;
    },
    async version() {
      if (state.versionHangs) return new Promise<string>(() => undefined);
      if (state.versionFails) throw new Error('relation "apps_version" does not exist');
      return state.version;
    },
  } as unknown as AppsRepository;
  return { apps, state };
}

/** The status the authenticator answers a key with (200: accepted). */
const statusOf = (auth: ReturnType<typeof createAuthenticator>, key: string) =>
  auth.requireApp(request(key)).then(
    () => 200,
    (err: { status: number }) => err.status,
  );

describe('app key cache', () => {
  it('keeps a key until the apps version moves, then looks it up again', async () => {
    const { apps, state } = fakeApps();
    const auth = createAuthenticator({ apps, adminKey: 'admin', refreshMs: 10 });
    await auth.start();
    try {
      await auth.requireApp(request('k'));
      await auth.requireApp(request('k'));
      expect(state.lookups).toBe(1);
      // Rotated elsewhere: the version moves, the kept key goes.
      state.valid = false;
      state.version = '2';
      const deadline = Date.now() + 2_000;
      while ((await statusOf(auth, 'k')) === 200 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      expect(await statusOf(auth, 'k')).toBe(401);
      expect(state.lookups).toBe(2);
    } finally {
      auth.stop();
    }
  });

  it('gives a hung version check up at its deadline, so a rotation is seen once Postgres answers', async () => {
    const { apps, state } = fakeApps();
    const auth = createAuthenticator({ apps, adminKey: 'admin', refreshMs: 10, refreshDeadlineMs: 50 });
    await auth.start();
    try {
      expect(await statusOf(auth, 'k')).toBe(200);
      state.versionHangs = true;
      await new Promise((r) => setTimeout(r, 30));
      state.versionHangs = false;
      state.valid = false;
      state.version = '2';
      const deadline = Date.now() + 2_000;
      while ((await statusOf(auth, 'k')) === 200 && Date.now() < deadline)
        await new Promise((r) => setTimeout(r, 5));
      expect(await statusOf(auth, 'k')).toBe(401);
    } finally {
      auth.stop();
    }
  });

  it('does not keep the answer of a lookup that started before the cache was dropped', async () => {
    const { apps, state } = fakeApps();
    const auth = createAuthenticator({ apps, adminKey: 'admin' });
    let release: () => void = () => undefined;
    state.hold = new Promise<void>((resolve) => (release = resolve));
    const inFlight = auth.requireApp(request('k')); // reads the row before the rotation
    state.valid = false;
    auth.forget(); // the rotation committed
    state.hold = undefined;
    release();
    await inFlight;
    expect(await statusOf(auth, 'k')).toBe(401);
    expect(state.lookups).toBe(2);
  });

  it('keeps working, TTL-bound, when the version cannot be read', async () => {
    const { apps, state } = fakeApps();
    state.versionFails = true;
    const errors: unknown[] = [];
    const auth = createAuthenticator({
      apps,
      adminKey: 'admin',
      refreshMs: 5,
      onRefreshError: (err) => errors.push(err),
    });
    await auth.start();
    try {
      await new Promise((r) => setTimeout(r, 50));
      expect(await statusOf(auth, 'k')).toBe(200);
      expect(errors).toHaveLength(1); // reported once, not every poll
    } finally {
      auth.stop();
    }
  });
});
