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

/** Whether the cluster answers a metadata request: the readiness signal for Kafka. */
export async function pingKafka(kafka: Kafka): Promise<boolean> {
  const admin = kafka.admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
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
