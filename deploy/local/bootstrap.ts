// Creates the topics of CONTRACT.md and applies database migrations; run by stack.sh up.
import { loadCommonConfig } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createKafka, ensureTopics, pingKafka } from '@twofold/kafka';
import { runMigrations } from '@twofold/store';
import { createLogger } from '@twofold/telemetry';

const config = loadCommonConfig('bootstrap');
const logger = createLogger({ service: 'bootstrap', level: 'warn' });
const kafka = createKafka({ ...config.kafka, logger });

let up = false;
for (let attempt = 0; attempt < 60 && !up; attempt++) {
  up = await pingKafka(kafka);
  if (!up) await new Promise((r) => setTimeout(r, 1_000));
}
if (!up) {
  console.error(
    `[stack] FAILED: ${config.kafka.brokers.join(',')} is open but does not answer as a Kafka broker`,
  );
  process.exit(1);
}
const created = await ensureTopics(kafka, topicCatalog(config.kafka.topicPrefix));
console.log(`[stack] kafka: ${created.length ? `created topics ${created.join(', ')}` : 'topics present'}`);

try {
  const applied = await runMigrations({ databaseUrl: config.database.url, schema: config.database.schema });
  console.log(`[stack] postgres: ${applied.length ? `applied ${applied.join(', ')}` : 'schema up to date'}`);
} catch (err) {
  console.error(`[stack] FAILED: database migrations: ${(err as Error).message}`);
  process.exit(1);
}
