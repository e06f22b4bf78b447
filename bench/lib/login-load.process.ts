// The simulated apps of the end-to-end benchmark, in a process of their own (so producing
// does not stall the measuring process): publishes the login mix to twofold.login.v1 at a
// steady rate when the parent asks, and answers with what it produced, by type.
//
// Parent → child: { rate, seconds, seed } ; child → parent: LoadReport.
import { loadCommonConfig } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createLogger } from '@twofold/telemetry';
import { loginMix } from './login-mix.js';

export interface LoadRequest {
  rate: number;
  seconds: number;
  seed: number;
  enrolledUsers: number;
  verifiedSessions: number;
}
export interface LoadReport {
  produced: number;
  byType: Record<string, number>;
  seconds: number;
  /** Most a tick started late (ms): the generator's own limit. */
  maxLagMs: number;
  error?: string;
}

const TICK_MS = 20;
const config = loadCommonConfig('bench-load');
const logger = createLogger({ service: 'bench-load', level: 'error' });
const kafka = createKafka({ ...config.kafka, clientId: 'bench-load', logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
await producer.connect();

async function produce(request: LoadRequest): Promise<LoadReport> {
  const next = loginMix(request, request.seed);
  const byType: Record<string, number> = {};
  const total = Math.round(request.rate * request.seconds);
  const start = performance.now();
  let produced = 0;
  let maxLagMs = 0;
  const inFlight: Promise<void>[] = [];
  while (produced < total) {
    const now = performance.now();
    const due = Math.min(total, Math.floor(((now - start) / 1000) * request.rate) + 1);
    maxLagMs = Math.max(maxLagMs, now - (start + (produced / request.rate) * 1000));
    if (due > produced) {
      const events = Array.from({ length: due - produced }, next);
      for (const e of events) byType[e.type] = (byType[e.type] ?? 0) + 1;
      inFlight.push(producer.publish('login', events));
      produced = due;
      // A few requests in flight at most: the producer's pace is part of the measure.
      while (inFlight.length > 4) await inFlight.shift();
    }
    await new Promise((r) => setTimeout(r, TICK_MS));
  }
  await Promise.all(inFlight);
  return { produced, byType, seconds: (performance.now() - start) / 1000, maxLagMs };
}

process.on('message', (message: LoadRequest | 'stop') => {
  if (message === 'stop') {
    void producer.disconnect().finally(() => process.exit(0));
    return;
  }
  produce(message).then(
    (report) => process.send!(report),
    (err: unknown) =>
      process.send!({
        produced: 0,
        byType: {},
        seconds: 0,
        maxLagMs: 0,
        error: String(err),
      } satisfies LoadReport),
  );
});
process.send!('ready');
