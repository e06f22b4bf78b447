import { createServer, type Server } from 'node:http';
import type { LookupAddress } from 'node:dns';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Pool } from 'undici';
import {
  createNetworkDenylist,
  DEFAULT_WEBHOOK_DENIED_NETWORKS,
  DEFAULT_WEBHOOK_DENYLIST,
} from '@twofold/config';
import {
  guardedConnector,
  guardedLookup,
  WebhookAddressDeniedError,
  type ResolveAll,
} from './webhook-address-guard.js';

/** A resolver answering from a table, and counting the lookups of each name. */
function fakeDns(table: Record<string, LookupAddress[] | (() => LookupAddress[])>) {
  const lookups: string[] = [];
  const resolve: ResolveAll = (hostname, _options, callback) => {
    lookups.push(hostname);
    const entry = table[hostname];
    const answer = typeof entry === 'function' ? entry() : entry;
    setImmediate(() =>
      answer
        ? callback(null, answer)
        : callback(Object.assign(new Error(`getaddrinfo ENOTFOUND ${hostname}`), { code: 'ENOTFOUND' }), []),
    );
  };
  return { resolve, lookups };
}

const v4 = (address: string): LookupAddress => ({ address, family: 4 });
const v6 = (address: string): LookupAddress => ({ address, family: 6 });

/** Calls a LookupFunction and collects what it answers. */
function runLookup(lookup: ReturnType<typeof guardedLookup>, hostname: string, all: boolean) {
  return new Promise<{ err: Error | null; address: unknown; family?: number }>((resolve) =>
    lookup(hostname, { all }, (err, address, family) => resolve({ err, address, family })),
  );
}

describe('guardedLookup', () => {
  const { resolve } = fakeDns({
    'jira.internal': [v4('10.0.0.7'), v6('fd12::7')],
    'metadata.evil.example': [v4('169.254.169.254')],
    'mixed.evil.example': [v4('10.0.0.8'), v6('fe80::1')],
    'mapped.evil.example': [v6('::ffff:169.254.169.254')],
  });
  const lookup = guardedLookup(DEFAULT_WEBHOOK_DENYLIST, resolve);

  it('answers every address of an allowed name when asked for all (happy eyeballs), else the first', async () => {
    expect(await runLookup(lookup, 'jira.internal', true)).toEqual({
      err: null,
      address: [v4('10.0.0.7'), v6('fd12::7')],
      family: undefined,
    });
    expect(await runLookup(lookup, 'jira.internal', false)).toEqual({
      err: null,
      address: '10.0.0.7',
      family: 4,
    });
  });

  it.each([
    ['metadata.evil.example', '169.254.169.254', '169.254.0.0/16'],
    // One denied address among allowed ones refuses the name: a fallback could reach it.
    ['mixed.evil.example', 'fe80::1', 'fe80::/10'],
    ['mapped.evil.example', '::ffff:169.254.169.254', '169.254.0.0/16'],
  ])('refuses %s (%s in %s), whichever form is asked for', async (hostname, address, network) => {
    for (const all of [true, false]) {
      const { err } = await runLookup(lookup, hostname, all);
      expect(err).toBeInstanceOf(WebhookAddressDeniedError);
      expect(err).toMatchObject({ host: hostname, address, network, retriable: false });
      expect(err!.message).toBe(
        `${hostname} resolves to ${address}, which is in ${network}, a network webhooks are never sent to ` +
          '(WEBHOOK_DENIED_NETWORKS); not sent, not retried',
      );
    }
  });

  it('passes resolver errors on as they are', async () => {
    const { err } = await runLookup(lookup, 'nowhere.example', false);
    expect(err).toMatchObject({ code: 'ENOTFOUND' });
    expect(err).not.toBeInstanceOf(WebhookAddressDeniedError);
  });
});

describe('guardedConnector with undici', () => {
  let server: Server;
  let port = 0;
  let requests = 0;
  let connections = 0;

  beforeAll(async () => {
    server = createServer((req, res) => {
      requests++;
      req.resume();
      // A new connection per request: each goes through the connector (and its lookup) again.
      req.on('end', () => res.writeHead(204, { connection: 'close' }).end());
    });
    server.on('connection', () => connections++);
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  afterAll(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  async function post(origin: string, connect: ReturnType<typeof guardedConnector>) {
    const pool = new Pool(origin, { connect });
    try {
      const res = await pool.request({ method: 'POST', path: '/hook', body: '{}' });
      await res.body.dump();
      return res.statusCode;
    } finally {
      await pool.destroy();
    }
  }

  it('connects to an allowed address, by IP or by name', async () => {
    const { resolve } = fakeDns({ 'jira.internal': [v4('127.0.0.1')] });
    const connect = guardedConnector({ denylist: DEFAULT_WEBHOOK_DENYLIST, timeoutMs: 2_000, resolve });
    const before = requests;
    expect(await post(`http://127.0.0.1:${port}`, connect)).toBe(204);
    expect(await post(`http://jira.internal:${port}`, connect)).toBe(204);
    expect(requests - before).toBe(2);
  });

  it('never connects to a denied IP literal, nor to a name that resolves into a denied network', async () => {
    const strict = createNetworkDenylist([...DEFAULT_WEBHOOK_DENIED_NETWORKS, '127.0.0.0/8']);
    const { resolve, lookups } = fakeDns({ 'jira.internal': [v4('127.0.0.1')] });
    const connect = guardedConnector({ denylist: strict, timeoutMs: 2_000, resolve });
    const before = connections;
    for (const [origin, message] of [
      [`http://127.0.0.1:${port}`, '127.0.0.1 is in 127.0.0.0/8'],
      [`http://[::ffff:127.0.0.1]:${port}`, '::ffff:7f00:1 is in 127.0.0.0/8'],
      [`http://jira.internal:${port}`, 'jira.internal resolves to 127.0.0.1, which is in 127.0.0.0/8'],
    ] as const) {
      const refused = post(origin, connect);
      await expect(refused).rejects.toBeInstanceOf(WebhookAddressDeniedError);
      await expect(refused).rejects.toThrow(message);
    }
    expect(lookups).toEqual(['jira.internal']);
    expect(connections - before).toBe(0);
  });

  it('checks the address of each new connection, so a name that changes its answer is caught (DNS rebinding)', async () => {
    const denylist = createNetworkDenylist(['127.0.0.2/32']);
    let answers = 0;
    const { resolve } = fakeDns({
      'rebind.example': () => [v4(answers++ === 0 ? '127.0.0.1' : '127.0.0.2')],
    });
    const connect = guardedConnector({ denylist, timeoutMs: 2_000, resolve });
    const pool = new Pool(`http://rebind.example:${port}`, { connect });
    try {
      const first = await pool.request({ method: 'POST', path: '/hook', body: '{}' });
      await first.body.dump();
      expect(first.statusCode).toBe(204);
      const second = pool.request({ method: 'POST', path: '/hook', body: '{}' });
      await expect(second).rejects.toThrow('rebind.example resolves to 127.0.0.2, which is in 127.0.0.2/32');
    } finally {
      await pool.destroy();
    }
    expect(answers).toBe(2);
  });

  it('leaves redirects to the caller: undici answers the 3xx and sends nothing to its Location', async () => {
    let redirected = 0;
    const target = createServer((req, res) => {
      redirected++;
      req.resume();
      res.writeHead(204).end();
    });
    await new Promise<void>((resolve) => target.listen(0, '127.0.0.1', resolve));
    const location = `http://127.0.0.1:${(target.address() as AddressInfo).port}/elsewhere`;
    const redirecting = createServer((req, res) => {
      req.resume();
      req.on('end', () => res.writeHead(307, { location }).end());
    });
    await new Promise<void>((resolve) => redirecting.listen(0, '127.0.0.1', resolve));
    try {
      const origin = `http://127.0.0.1:${(redirecting.address() as AddressInfo).port}`;
      const status = await post(
        origin,
        guardedConnector({ denylist: DEFAULT_WEBHOOK_DENYLIST, timeoutMs: 2_000 }),
      );
      expect(status).toBe(307);
      expect(redirected).toBe(0);
    } finally {
      await new Promise((resolve) => redirecting.close(resolve));
      await new Promise((resolve) => target.close(resolve));
    }
  });
});
