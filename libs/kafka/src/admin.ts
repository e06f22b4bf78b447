import type { Admin, Kafka } from 'kafkajs';
import { DEFAULT_PARTITIONS, type TopicCatalog } from '@twofold/contracts';

/** Creates the catalog's topics that do not exist yet (idempotent). */
export async function ensureTopics(
  kafka: Kafka,
  topics: TopicCatalog,
  options: { partitions?: number; replicationFactor?: number } = {},
): Promise<string[]> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const missing = Object.values(topics).filter((name) => !existing.has(name));
    if (missing.length > 0) {
      await admin.createTopics({
        waitForLeaders: true,
        topics: missing.map((topic) => ({
          topic,
          numPartitions: options.partitions ?? DEFAULT_PARTITIONS,
          replicationFactor: options.replicationFactor ?? 1,
        })),
      });
    }
    return missing;
  } finally {
    await admin.disconnect();
  }
}

export async function deleteTopics(kafka: Kafka, names: readonly string[]): Promise<void> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const existing = new Set(await admin.listTopics());
    const present = names.filter((n) => existing.has(n));
    if (present.length > 0) await admin.deleteTopics({ topics: present, timeout: 10_000 });
  } finally {
    await admin.disconnect();
  }
}

/**
 * The readiness check for Kafka: whether the cluster answers a metadata request. One admin
 * connection is kept between checks (a probe every few seconds used to open one each time),
 * and dropped after a failure so the next check starts afresh. A check answers within
 * `timeoutMs` (a probe must not wait out the client's retries), and checks that overlap
 * share one request, so slow probes do not pile up.
 */
export function createKafkaPing(kafka: Kafka, options: { timeoutMs?: number } = {}) {
  const timeoutMs = options.timeoutMs ?? 2_000;
  let admin: Admin | undefined;
  let inFlight: Promise<boolean> | undefined;

  async function check(): Promise<boolean> {
    const current = (admin ??= kafka.admin({ retry: { retries: 0 } }));
    try {
      await current.connect();
      await current.describeCluster();
      return true;
    } catch {
      if (admin === current) admin = undefined;
      await current.disconnect().catch(() => undefined);
      return false;
    }
  }

  return {
    ping(): Promise<boolean> {
      inFlight ??= check().finally(() => (inFlight = undefined));
      let timer: NodeJS.Timeout | undefined;
      const late = new Promise<boolean>((resolve) => (timer = setTimeout(() => resolve(false), timeoutMs)));
      return Promise.race([inFlight, late]).finally(() => clearTimeout(timer));
    },
    /** Disconnects, waiting at most a second: a check stuck on a silent broker must not hold up shutdown. */
    async close(): Promise<void> {
      const current = admin;
      admin = undefined;
      if (!current) return;
      let timer: NodeJS.Timeout | undefined;
      await Promise.race([
        current.disconnect().catch(() => undefined),
        new Promise<void>((resolve) => (timer = setTimeout(resolve, 1_000))),
      ]).finally(() => clearTimeout(timer));
    },
  };
}
export type KafkaPing = ReturnType<typeof createKafkaPing>;

/**
 * One check on a connection of its own, for scripts that wait for Kafka to come up (a cold
 * broker may take seconds to answer its first metadata request: 10 s by default).
 */
export async function pingKafka(kafka: Kafka, options: { timeoutMs?: number } = {}): Promise<boolean> {
  const ping = createKafkaPing(kafka, { timeoutMs: options.timeoutMs ?? 10_000 });
  try {
    return await ping.ping();
  } finally {
    await ping.close();
  }
}

export interface PartitionLag {
  readonly topic: string;
  readonly partition: number;
  /** End offset − committed offset; from the earliest offset kept when nothing is committed yet. */
  readonly lag: number;
}

/** The group's lag on every partition of the topics, from its committed offsets (a connected admin). */
export async function partitionLags(
  admin: Admin,
  groupId: string,
  topicNames: readonly string[],
): Promise<PartitionLag[]> {
  const lags: PartitionLag[] = [];
  const committed = await admin.fetchOffsets({ groupId, topics: [...topicNames] });
  for (const { topic, partitions } of committed) {
    const ends = await admin.fetchTopicOffsets(topic);
    for (const { partition, offset } of partitions) {
      const end = ends.find((e) => e.partition === partition);
      const high = Number(end?.high ?? 0);
      // Nothing committed (-1): a new group starts at the earliest offset (fromBeginning).
      const from = Number(offset) >= 0 ? Number(offset) : Number(end?.low ?? 0);
      lags.push({ topic, partition, lag: Math.max(0, high - from) });
    }
  }
  return lags;
}

/** Total lag (end offset − committed offset) of a group over the given topics. */
export async function groupLag(
  kafka: Kafka,
  groupId: string,
  topicNames: readonly string[],
): Promise<number> {
  const admin = kafka.admin();
  await admin.connect();
  try {
    const lags = await partitionLags(admin, groupId, topicNames);
    return lags.reduce((sum, p) => sum + p.lag, 0);
  } finally {
    await admin.disconnect();
  }
}
