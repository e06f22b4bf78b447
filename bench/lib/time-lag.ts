// Consumer lag in seconds, for any consumer group, from offsets alone: how long ago the
// oldest event a group has not yet committed was produced. Sampling the topics' end offsets
// keeps a history of when each offset appeared; a group's committed offset is then placed
// on that history (interpolated between two samples), per partition, and the worst
// partition is the group's lag. Commits follow the effect (decision published, failure
// counted, row stored), so this is the lag of the effect, as an SRE's lag alert sees it.
// It overstates by up to the consumers' commit interval (250 ms) and one sampling period.
import type { Kafka } from '@twofold/kafka';
import { percentile, round } from './stats.js';

export interface LaggingGroup {
  name: string;
  id: string;
  topics: readonly string[];
}

type Admin = ReturnType<Kafka['admin']>;

/** History of one partition's end offset: when each value was first and last seen. */
interface Seen {
  at: number;
  lastAt: number;
  high: number;
}

export interface TimeLagTracker {
  /** Takes one sample (end offsets, then every group's committed offsets). */
  sample(): Promise<void>;
  /** Samples every `periodMs` until the returned stop() is called. */
  start(periodMs?: number): { stop(): Promise<void> };
  /** Per group, the lag (ms) of each sample since the last reset, and whether it is at the end. */
  window(): Record<string, { samples: number[]; caughtUp: boolean }>;
  /** Starts a new window of samples (the offset history is kept). */
  reset(): void;
  close(): Promise<void>;
}

export async function createTimeLagTracker(
  kafka: Kafka,
  groups: readonly LaggingGroup[],
): Promise<TimeLagTracker> {
  const admin: Admin = kafka.admin();
  await admin.connect();
  const topics = [...new Set(groups.flatMap((g) => g.topics))];
  const history = new Map<string, Seen[]>(); // `${topic}:${partition}`
  let window = new Map<string, number[]>(groups.map((g) => [g.name, []]));
  const caughtUp = new Map<string, boolean>();

  /** When the event at `offset` was produced (ms, performance clock), from the history. */
  const producedAt = (seen: Seen[], offset: number): number => {
    const i = seen.findIndex((s) => s.high > offset);
    if (i <= 0) return seen[Math.max(0, i)]!.at; // there before the first sample: a lower bound
    // Produced after the previous value was last seen and by the time this one was first seen.
    const prev = seen[i - 1]!;
    const next = seen[i]!;
    return prev.lastAt + ((offset - prev.high + 1) / (next.high - prev.high)) * (next.at - prev.lastAt);
  };

  async function sample(): Promise<void> {
    const committed = await Promise.all(
      groups.map((g) => admin.fetchOffsets({ groupId: g.id, topics: [...g.topics] })),
    );
    const ends = await Promise.all(topics.map((t) => admin.fetchTopicOffsets(t)));
    const now = performance.now();
    const high = new Map<string, number>();
    ends.forEach((partitions, i) => {
      for (const p of partitions) {
        const key = `${topics[i]}:${p.partition}`;
        const value = Number(p.high);
        high.set(key, value);
        const seen = history.get(key) ?? [];
        const last = seen.at(-1);
        if (last?.high === value) last.lastAt = now;
        else seen.push({ at: now, lastAt: now, high: value });
        history.set(key, seen);
      }
    });
    groups.forEach((g, i) => {
      let worst = 0;
      for (const { topic, partitions } of committed[i]!) {
        for (const p of partitions) {
          const key = `${topic}:${p.partition}`;
          const end = high.get(key) ?? 0;
          const offset = Math.max(0, Number(p.offset)); // -1: nothing committed yet
          if (offset >= end) continue;
          worst = Math.max(worst, now - producedAt(history.get(key)!, offset));
        }
      }
      window.get(g.name)!.push(worst);
      caughtUp.set(g.name, worst === 0);
    });
  }

  return {
    sample,
    start(periodMs = 250) {
      let running = true;
      const loop = (async () => {
        while (running) {
          const t0 = performance.now();
          await sample().catch(() => undefined);
          await new Promise((r) => setTimeout(r, Math.max(0, periodMs - (performance.now() - t0))));
        }
      })();
      return {
        async stop() {
          running = false;
          await loop;
        },
      };
    },
    window() {
      return Object.fromEntries(
        groups.map((g) => [
          g.name,
          { samples: window.get(g.name)!, caughtUp: caughtUp.get(g.name) ?? false },
        ]),
      );
    },
    reset() {
      window = new Map(groups.map((g) => [g.name, []]));
    },
    close: () => admin.disconnect(),
  };
}

/** Max and p99 (ms) of a window's samples. */
export function summarizeLag(samples: readonly number[]): { maxMs: number; p99Ms: number } {
  return {
    maxMs: samples.length ? round(Math.max(...samples), 0) : Number.NaN,
    p99Ms: round(percentile(samples, 99), 0),
  };
}
