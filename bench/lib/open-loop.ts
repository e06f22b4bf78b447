// An open-loop HTTP load: requests leave at a fixed rate whether or not earlier ones have
// answered, and each latency is measured from the moment its request was due (not when it
// could be sent), so a stall shows up in the percentiles instead of slowing the load down
// (no coordinated omission).
import { Agent, request as httpRequest } from 'node:http';

export interface PlannedRequest {
  method: string;
  path: string;
  headers?: Record<string, string>;
  body?: string;
}

export interface OpenLoopOptions {
  baseUrl: string;
  /** Requests per second. */
  rate: number;
  durationMs: number;
  /** The i-th request. */
  request: (i: number) => PlannedRequest;
  /** Called with each answer (status, body text, latency in ms from when it was due). */
  onResponse?: (i: number, status: number, body: string, latencyMs: number) => void;
  /** Gives up on answers still missing this long after the last request was due. */
  drainTimeoutMs?: number;
  /** Connections kept alive at most (in-flight requests beyond this wait for a socket, and that wait counts). */
  maxSockets?: number;
}

export interface OpenLoopResult {
  sent: number;
  answered: number;
  failed: number;
  /** Latency (ms) of every answered request, from when it was due. */
  latencies: number[];
  statuses: Record<string, number>;
  /** Seconds from the first due time to the last answer. */
  seconds: number;
  /** How far behind schedule the sender fell at worst (ms): the load generator's own limit. */
  maxSendDelayMs: number;
}

export async function runOpenLoop(options: OpenLoopOptions): Promise<OpenLoopResult> {
  const url = new URL(options.baseUrl);
  const agent = new Agent({ keepAlive: true, maxSockets: options.maxSockets ?? 256 });
  const latencies: number[] = [];
  const statuses: Record<string, number> = {};
  let sent = 0;
  let answered = 0;
  let failed = 0;
  let maxSendDelayMs = 0;
  let lastAnswer = 0;
  const interval = 1000 / options.rate;
  const total = Math.floor((options.rate * options.durationMs) / 1000);
  const start = performance.now();
  const pending = new Set<Promise<void>>();

  const send = (i: number, dueAt: number) => {
    const planned = options.request(i);
    const done = new Promise<void>((resolve) => {
      const req = httpRequest(
        {
          agent,
          host: url.hostname,
          port: url.port,
          method: planned.method,
          path: planned.path,
          headers: {
            ...(planned.body !== undefined
              ? { 'content-type': 'application/json', 'content-length': Buffer.byteLength(planned.body) }
              : {}),
            ...planned.headers,
          },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const now = performance.now();
            const latency = now - dueAt;
            lastAnswer = now;
            answered++;
            latencies.push(latency);
            const status = String(res.statusCode ?? 0);
            statuses[status] = (statuses[status] ?? 0) + 1;
            options.onResponse?.(i, res.statusCode ?? 0, Buffer.concat(chunks).toString('utf8'), latency);
            resolve();
          });
          res.on('error', () => {
            failed++;
            resolve();
          });
        },
      );
      req.on('error', () => {
        failed++;
        resolve();
      });
      if (planned.body !== undefined) req.write(planned.body);
      req.end();
    });
    pending.add(done);
    void done.then(() => pending.delete(done));
  };

  while (sent < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor((now - start) / interval) + 1);
    while (sent < due) {
      const dueAt = start + sent * interval;
      maxSendDelayMs = Math.max(maxSendDelayMs, now - dueAt);
      send(sent, dueAt);
      sent++;
    }
    const nextDue = start + sent * interval;
    await new Promise((r) => setTimeout(r, Math.max(0, Math.min(5, nextDue - performance.now()))));
  }
  const drainUntil = performance.now() + (options.drainTimeoutMs ?? 30_000);
  while (pending.size > 0 && performance.now() < drainUntil) {
    await Promise.race([...pending, new Promise((r) => setTimeout(r, 100))]);
  }
  agent.destroy();
  // A snapshot: answers still arriving after the deadline (counted as failed here) must not
  // change the figures once returned.
  return {
    sent,
    answered,
    failed: failed + pending.size,
    latencies: [...latencies],
    statuses: { ...statuses },
    seconds: ((lastAnswer || performance.now()) - start) / 1000,
    maxSendDelayMs,
  };
}
