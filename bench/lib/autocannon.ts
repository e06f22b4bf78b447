import { createRequire } from 'node:module';

// autocannon ships no types: the part of its API the benchmarks use.
export interface AutocannonRequest {
  method?: string;
  path?: string;
  headers?: Record<string, string>;
  body?: string;
  setupRequest?: (request: AutocannonRequest) => AutocannonRequest;
  onResponse?: (status: number, body: string) => void;
}
export interface AutocannonResult {
  /** Seconds. With `amount`, rounded up to autocannon's next one-second tick: see {@link sendRequests}. */
  duration: number;
  errors: number;
  timeouts: number;
  non2xx: number;
  requests: { total: number };
  latency: { p50: number; p99: number };
}
export interface AutocannonOptions {
  url: string;
  duration?: number;
  amount?: number;
  connections: number;
  headers?: Record<string, string>;
  requests?: AutocannonRequest[];
}

export const autocannon = createRequire(import.meta.url)('autocannon') as (
  options: AutocannonOptions,
) => Promise<AutocannonResult>;

/**
 * Sends `amount` requests and times them from the start to the last response. autocannon
 * notices that a fixed amount is done only at its next one-second tick, so its own
 * `duration` is a whole number of seconds (plus a few ms): 14,000 requests answered in
 * 7.1 s read as 14,000 / 8.02 = 1,746/s, and rates could only take the values N / k.
 */
export async function sendRequests(
  options: AutocannonOptions & { amount: number },
): Promise<AutocannonResult & { seconds: number; perSecond: number }> {
  let last = 0;
  const requests = (options.requests ?? [{}]).map((request) => ({
    ...request,
    onResponse: (status: number, body: string) => {
      last = performance.now();
      request.onResponse?.(status, body);
    },
  }));
  const start = performance.now();
  const result = await autocannon({ ...options, requests });
  const seconds = ((last || performance.now()) - start) / 1000;
  return { ...result, seconds, perSecond: result.requests.total / seconds };
}
