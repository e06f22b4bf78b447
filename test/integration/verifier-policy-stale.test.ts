// A verifier cut off from Postgres while the rest of the system is not (issue 3: a policy
// change is seen by every replica within a second; security decisions fail closed). Its
// Postgres connections go through a TCP proxy the test cuts, never the shared server. Past
// POLICY_MAX_STALENESS_MS its old copy of the policy (kim: exempt) no longer decides: logins
// are challenged (state_unavailable), not skipped, while the admin has meanwhile required a
// second factor of kim through the api. Once the proxy lets it through again, its next
// refresh reads the new policy.
import { randomUUID } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { connect, createServer, type Server, type Socket } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashSessionToken } from '@twofold/contracts';
import { apiClient, startServices, type RunningServices } from '../support/services.js';
import { eventually, isolated, REPO_ROOT, type Isolated } from '../support/stack.js';

const MAX_STALENESS_MS = 5_000;

/** Forwards TCP to `target`; `cut()` drops every connection and refuses new ones until `mend()`. */
class CuttableProxy {
  private readonly sockets = new Set<Socket>();
  private cutOff = false;
  private readonly server: Server;
  port = 0;

  constructor(private readonly target: { host: string; port: number }) {
    this.server = createServer((client) => {
      if (this.cutOff) return void client.destroy();
      const upstream = connect(this.target.port, this.target.host);
      for (const [a, b] of [
        [client, upstream],
        [upstream, client],
      ] as const) {
        this.sockets.add(a);
        a.pipe(b);
        a.on('error', () => b.destroy());
        a.on('close', () => {
          this.sockets.delete(a);
          b.destroy();
        });
      }
    });
  }

  async listen(): Promise<void> {
    await new Promise<void>((resolve) => this.server.listen(0, '127.0.0.1', resolve));
    const address = this.server.address();
    this.port = typeof address === 'object' && address ? address.port : 0;
  }

  cut(): void {
    this.cutOff = true;
    for (const socket of this.sockets) socket.destroy();
  }

  mend(): void {
    this.cutOff = false;
  }

  async close(): Promise<void> {
    this.cut();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }
}

type Decision = { decision: string; reason: string; challengeId?: string };

let world: Isolated;
let proxy: CuttableProxy;
let api: RunningServices;
let verifier: RunningServices;
let jira: ReturnType<typeof apiClient>;
const admin = () => apiClient(api.apiUrl, world.env['TWOFOLD_ADMIN_KEY']);

beforeAll(async () => {
  world = await isolated('verifier-policy-stale', { database: true });
  const database = new URL(world.config.database.url);
  proxy = new CuttableProxy({ host: database.hostname, port: Number(database.port || 5432) });
  await proxy.listen();
  const proxied = new URL(database.href);
  proxied.hostname = '127.0.0.1';
  proxied.port = String(proxy.port);
  // The api (and with it every other replica) reaches Postgres directly; the verifier only
  // through the proxy.
  api = await startServices(world, ['api']);
  verifier = await startServices(world, ['verifier'], {
    DATABASE_URL: proxied.href,
    POLICY_MAX_STALENESS_MS: String(MAX_STALENESS_MS),
  });
  const app = await admin()<{ key: string }>('POST', '/v1/admin/apps', { appId: 'jira' });
  expect(app.status).toBe(201);
  jira = apiClient(api.apiUrl, app.body.key);
}, 120_000);

afterAll(async () => {
  proxy?.mend();
  const codes = new Map([...((await verifier?.stop()) ?? []), ...((await api?.stop()) ?? [])]);
  await proxy?.close();
  await world?.cleanup();
  for (const [name, code] of codes) expect(code, `${name} exit code after SIGTERM`).toBe(0);
});

async function loginOfKim(): Promise<Decision> {
  const res = await jira<Decision>('POST', '/v1/login-events?wait=decision&timeoutMs=10000', {
    type: 'twofold.login.succeeded',
    subject: 'kim',
    data: { appId: 'jira', session: hashSessionToken(randomUUID()), method: 'password', ip: '203.0.113.30' },
  });
  expect(res.status, JSON.stringify(res.body)).toBe(200);
  return res.body;
}

const setKim = async (mode: 'exempt' | 'require') =>
  expect((await admin()('PUT', '/v1/admin/policy/users/kim', { mode })).status).toBe(200);

const until = (want: string) => async () => {
  const d = await loginOfKim();
  return `${d.decision}/${d.reason}` === want ? d : undefined;
};

describe('a verifier that cannot reach Postgres', () => {
  it('stops deciding by its old policy after POLICY_MAX_STALENESS_MS, and follows the new one once back', async () => {
    await setKim('exempt');
    await eventually(until('skip/exempt'), 15_000, 'kim exempt at the verifier');

    proxy.cut();
    const cutAt = Date.now();
    // Every other replica would follow this within a second; the cut-off one cannot.
    await setKim('require');

    const first = await eventually(until('challenge/state_unavailable'), 20_000, 'fail-closed decision');
    expect(Date.now() - cutAt).toBeLessThan(MAX_STALENESS_MS + 8_000);
    expect(first.challengeId).toEqual(expect.any(String));
    // Past the bound, nothing skips: every login is challenged.
    for (let i = 0; i < 3; i++)
      expect(await loginOfKim()).toMatchObject({ decision: 'challenge', reason: 'state_unavailable' });

    proxy.mend();
    // The new policy (require; kim has no authenticator): enroll.
    await eventually(until('enroll/not_enrolled'), 20_000, 'the new policy at the verifier');

    // One line for going stale and one for recovering, not one per refresh.
    const log = `${REPO_ROOT}.twofold/logs/tests/${world.id}-verifier.log`;
    const count = (what: string) => readFileSync(log, 'utf8').split(what).length - 1;
    await eventually(async () => (count('policy copy current again') > 0 ? true : undefined), 5_000);
    expect(count('policy copy could not be confirmed current in time')).toBe(1);
    expect(count('policy copy current again')).toBe(1);
  }, 90_000);
});
