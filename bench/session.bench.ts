// Propagation latency of a verified second factor: from `twofold.2fa.verified` produced to
// (a) the session readable as verified through GET /v1/sessions/current, (b) a webhook
// received by an app, (c) an SSE event received by an app — at a steady 500 verifications/s.
//
// Processes, as deployed: the session broadcaster (its real main.ts, as a consuming and a
// webhook-delivering process), the api (its real main.ts), the three apps' webhook
// receivers (this file with --receivers), and this
// process: the load (a verifier's producer), three SSE subscribers and the state pollers.
// All in an isolated world of the local stack (own topics, Redis prefix, Postgres schema).
// Timestamps across processes are wall-clock with sub-millisecond resolution
// (performance.timeOrigin + performance.now()).
//
// Run: `node --conditions=twofold-source --import tsx bench/session.bench.ts [--quick]`.
// BENCH_SESSION_RATE (default 500), BENCH_SESSION_WEBHOOKS=off (state and SSE only).
import { fork, spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { createServer as createHttpServer } from 'node:http';
import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { subscribeSessionEvents, type SessionEventsSubscription } from '@twofold/client';
import { createEvent, hashSessionToken } from '@twofold/contracts';
import { createEventProducer } from '@twofold/kafka';
import { createSessionWorld, percentile } from '../test/integration/session-world.js';
import { REPO_ROOT } from '../test/support/stack.js';
import { serviceArgs } from './lib/services.js';

const APPS = ['jira', 'confluence', 'bitbucket'] as const;
const TICK_MS = 10;
const STATE_SAMPLE_EVERY = 20;
/** Polls every 2 ms at first, then less often (a tenth of the time waited), so slow answers do not flood the api. */
const pollDelay = (waitedMs: number) => Math.min(20, 2 + waitedMs / 10);
const SOURCE_ARGS = ['--conditions=twofold-source', '--import', 'tsx'];

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
function cpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / 100;
  } catch {
    return Number.NaN;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
/** Wall-clock milliseconds with sub-millisecond resolution, comparable across processes. */
const clock = () => performance.timeOrigin + performance.now();

async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

async function waitFor(url: string, child: ChildProcess, what: string, timeoutMs = 90_000): Promise<void> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    if (child.exitCode !== null) throw new Error(`${what} exited with ${child.exitCode}`);
    try {
      if ((await fetch(url)).status === 200) return;
    } catch {
      // not listening yet
    }
    await sleep(200);
  }
  throw new Error(`${what} did not become ready`);
}

function stopChild(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve();
  return new Promise((resolve) => {
    const force = setTimeout(() => child.kill('SIGKILL'), 15_000);
    child.once('exit', () => {
      clearTimeout(force);
      resolve();
    });
    child.kill('SIGTERM');
  });
}

interface Arrival {
  appId: string;
  session: string;
  at: number;
}

/** Child mode: one HTTP server per app, recording when each session.validated webhook arrived. */
async function runReceivers(appIds: readonly string[]): Promise<void> {
  const arrivals: Arrival[] = [];
  const urls: Record<string, string> = {};
  for (const appId of appIds) {
    const server = createHttpServer((req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        const at = clock();
        const event = JSON.parse(Buffer.concat(chunks).toString('utf8')) as {
          type: string;
          data: { session: string };
        };
        if (event.type === 'twofold.session.validated')
          arrivals.push({ appId, session: event.data.session, at });
        res.writeHead(204).end();
      });
    });
    server.keepAliveTimeout = 60_000;
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
    const address = server.address();
    urls[appId] = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}/webhooks`;
  }
  process.on('message', (message: { report?: boolean }) => {
    if (message.report) process.send!({ arrivals });
  });
  process.send!({ urls });
}

export async function runSessionBench(opts: { quick: boolean }): Promise<Record<string, number>> {
  const seconds = opts.quick ? 4 : 20;
  const rate = Number(process.env['BENCH_SESSION_RATE'] ?? 500);
  const webhooksOn = process.env['BENCH_SESSION_WEBHOOKS'] !== 'off';
  const w = await createSessionWorld('bench-session', {
    appIds: APPS,
    webhooks: { attempts: 10, backoffMs: 1_000, timeoutMs: 5_000, concurrency: 64, refreshMs: 5_000 },
    broadcaster: false,
    webhooksOff: true,
  });
  const children: ChildProcess[] = [];
  const load = createEventProducer(w.world.kafka, { topics: w.world.topics, logger: w.world.logger });
  const subscriptions: SessionEventsSubscription[] = [];
  try {
    // The apps' webhook endpoints, in a process of their own.
    const receivers = fork(fileURLToPath(import.meta.url), ['--receivers', APPS.join(',')], {
      execArgv: SOURCE_ARGS,
      stdio: ['ignore', 'ignore', 'inherit', 'ipc'],
    });
    children.push(receivers);
    const urls = await new Promise<Record<string, string>>((resolve) =>
      receivers.once('message', (m: { urls: Record<string, string> }) => resolve(m.urls)),
    );
    if (webhooksOn) {
      for (const appId of APPS) {
        await w.pool.query('UPDATE apps SET webhook_url = $1 WHERE app_id = $2', [urls[appId], appId]);
      }
    }

    const env = { ...w.world.env, DATABASE_SCHEMA: w.schema, LOG_LEVEL: 'warn' };
    // The broadcaster as two processes of the same image: one consumes (state, topic, SSE,
    // webhook jobs), one delivers webhooks, so webhook traffic cannot slow state propagation.
    const broadcasterPort = await freePort();
    const delivererPort = await freePort();
    const broadcasterArgs = [
      ...(process.env['BENCH_BROADCASTER_NODE_ARGS']?.split(' ').filter(Boolean) ?? []),
      ...serviceArgs('session-broadcaster'),
    ];
    const logLevel = process.env['BENCH_LOG'] ?? 'warn';
    const broadcaster = spawn(process.execPath, broadcasterArgs, {
      cwd: REPO_ROOT,
      env: {
        ...env,
        METRICS_PORT: String(broadcasterPort),
        LOG_LEVEL: logLevel,
        TWOFOLD_SESSION_ROLES: 'consume',
      },
      stdio: ['ignore', process.env['BENCH_LOG'] ? 'inherit' : 'ignore', 'inherit'],
    });
    children.push(broadcaster);
    const deliverer = spawn(process.execPath, broadcasterArgs, {
      cwd: REPO_ROOT,
      env: {
        ...env,
        METRICS_PORT: String(delivererPort),
        LOG_LEVEL: logLevel,
        TWOFOLD_SESSION_ROLES: 'deliver',
      },
      stdio: ['ignore', process.env['BENCH_LOG'] ? 'inherit' : 'ignore', 'inherit'],
    });
    children.push(deliverer);
    const apiPort = await freePort();
    const api = spawn(process.execPath, serviceArgs('api'), {
      cwd: REPO_ROOT,
      env: {
        ...env,
        API_PORT: String(apiPort),
        API_HOST: '127.0.0.1',
        METRICS_PORT: String(await freePort()),
      },
      stdio: ['ignore', 'ignore', 'inherit'],
    });
    children.push(api);
    const apiUrl = `http://127.0.0.1:${apiPort}`;
    await load.connect();
    await waitFor(`http://127.0.0.1:${broadcasterPort}/readyz`, broadcaster, 'the broadcaster');
    await waitFor(`http://127.0.0.1:${delivererPort}/readyz`, deliverer, 'the webhook deliverer');
    await waitFor(`${apiUrl}/healthz`, api, 'the api');

    const producedAt = new Map<string, number>();
    const sseMs: number[] = [];
    const stateMs: number[] = [];
    let measuring = false;
    const record = (into: number[], session: string, at: number) => {
      const t0 = producedAt.get(session);
      if (measuring && t0 !== undefined) into.push(at - t0);
    };
    for (const appId of APPS) {
      await new Promise<void>((resolve) =>
        subscriptions.push(
          subscribeSessionEvents({
            baseUrl: apiUrl,
            appKey: w.keys[appId]!,
            onOpen: resolve,
            onEvent: (event) => {
              if (event.type === 'twofold.session.validated') record(sseMs, event.data.session, clock());
            },
          }),
        ),
      );
    }

    const pollers: Promise<void>[] = [];
    const pollState = async (token: string, session: string) => {
      const from = performance.now();
      while (performance.now() - from < 10_000) {
        const res = await fetch(`${apiUrl}/v1/sessions/current`, {
          headers: { authorization: `Bearer ${w.keys['jira']}`, 'x-twofold-session': token },
        });
        const body = (await res.json()) as { verified?: boolean };
        if (body.verified) return record(stateMs, session, clock());
        await sleep(pollDelay(performance.now() - from));
      }
    };

    let sent = 0;
    const publishing: Promise<void>[] = [];
    const drive = async (perSecond: number, durationS: number) => {
      const perTick = (perSecond * TICK_MS) / 1000;
      const start = performance.now();
      const total = Math.round(perSecond * durationS);
      let due = 0;
      for (let tick = 0; due < total; tick++) {
        const target = Math.min(total, Math.round((tick + 1) * perTick));
        const batch: { token: string; session: string }[] = [];
        const events = [];
        while (due < target) {
          const token = `bench-${randomUUID()}`;
          const session = hashSessionToken(token);
          batch.push({ token, session });
          events.push(
            createEvent('twofold.2fa.verified', 'service/verifier', `user${sent + events.length}`, {
              appId: 'jira',
              session,
              method: 'totp',
            }),
          );
          due++;
        }
        const t0 = clock();
        for (const e of batch) producedAt.set(e.session, t0);
        // Not awaited: a verifier does not wait for one send before the next verification.
        publishing.push(load.publish('secondFactor', events));
        for (const [i, e] of batch.entries()) {
          if ((sent + i) % STATE_SAMPLE_EVERY === 0) pollers.push(pollState(e.token, e.session));
        }
        sent += batch.length;
        const wait = start + (tick + 1) * TICK_MS - performance.now();
        if (wait > 0) await sleep(wait);
      }
      await Promise.all(publishing);
      publishing.length = 0;
      return (sent * 1000) / (performance.now() - start);
    };

    // Warm-up at the measured rate: connections, JIT, consumer fetch sessions; not measured.
    // (Stepping from 100/s to 500/s, the first second's state reads had p50 111 ms and the
    // rest p50 8–25 ms: with 25 samples a second, that one second was the p99.)
    await drive(rate, 3);
    await sleep(3_000);
    await Promise.all(pollers);
    sent = 0;
    pollers.length = 0;
    producedAt.clear();
    const report = () =>
      new Promise<Arrival[]>((resolve) => {
        receivers.once('message', (m: { arrivals: Arrival[] }) => resolve(m.arrivals));
        receivers.send({ report: true });
      });
    const before = new Set((await report()).map((a) => `${a.appId} ${a.session}`));

    measuring = true;
    const loopDelay = monitorEventLoopDelay({ resolution: 5 });
    loopDelay.enable();
    const started = performance.now();
    const processes = { consumer: broadcaster, deliverer, api, receivers };
    const cpuBefore = Object.fromEntries(Object.entries(processes).map(([k, p]) => [k, cpuMs(p.pid)]));
    const selfBefore = process.cpuUsage();
    const achieved = await drive(rate, seconds);
    const expected = producedAt.size * APPS.length;
    let webhookMs: number[] = [];
    const deadline = performance.now() + 30_000;
    for (;;) {
      const arrivals = webhooksOn ? await report() : [];
      webhookMs = arrivals.flatMap((a) => {
        const t0 = producedAt.get(a.session);
        return t0 === undefined || before.has(`${a.appId} ${a.session}`) ? [] : [a.at - t0];
      });
      if (
        ((!webhooksOn || webhookMs.length >= expected) && sseMs.length >= expected) ||
        performance.now() > deadline
      ) {
        break;
      }
      await sleep(250);
    }
    await Promise.all(pollers);
    loopDelay.disable();
    const perVerification = (ms: number) => Math.round((ms / producedAt.size) * 1000) / 1000;
    const cpu: Record<string, number> = {};
    for (const [name, child] of Object.entries(processes)) {
      cpu[`cpu_ms_per_verification_${name}`] = perVerification(cpuMs(child.pid) - cpuBefore[name]!);
    }
    const self = process.cpuUsage(selfBefore);
    cpu['cpu_ms_per_verification_bench_clients'] = perVerification((self.user + self.system) / 1000);
    const loadAverage = readFileSync('/proc/loadavg', 'utf8').split(' ').map(Number);
    const round = (x: number) => Math.round(x * 10) / 10;
    return {
      verifications: producedAt.size,
      target_rate_per_s: rate,
      achieved_rate_per_s: round(achieved),
      seconds: round((performance.now() - started) / 1000),
      a_state_api_p50_ms: round(percentile(stateMs, 50)),
      a_state_api_p99_ms: round(percentile(stateMs, 99)),
      a_state_samples: stateMs.length,
      b_webhook_p50_ms: round(percentile(webhookMs, 50)),
      b_webhook_p99_ms: round(percentile(webhookMs, 99)),
      b_webhook_deliveries: webhookMs.length,
      c_sse_p50_ms: round(percentile(sseMs, 50)),
      c_sse_p99_ms: round(percentile(sseMs, 99)),
      c_sse_events: sseMs.length,
      bench_process_event_loop_delay_p99_ms: round(loopDelay.percentile(99) / 1e6),
      ...cpu,
      machine_load_average_1m: loadAverage[0] ?? Number.NaN,
    };
  } finally {
    for (const s of subscriptions) await s.close();
    await load.disconnect().catch(() => undefined);
    for (const child of children.reverse()) await stopChild(child);
    await w.close();
  }
}

const invoked = process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href;
if (invoked && process.argv.includes('--receivers')) {
  await runReceivers(process.argv[process.argv.indexOf('--receivers') + 1]!.split(','));
} else if (invoked) {
  const result = await runSessionBench({ quick: process.argv.includes('--quick') });
  process.stdout.write(`${JSON.stringify(result, null, 2)}\n`);
  process.exit(0);
}
