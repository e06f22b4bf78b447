// The audit sink as a child process for crash tests. With TEST_CRASH_AFTER_EFFECT=1 it
// kills itself with SIGKILL right after its first insert committed and before the Kafka
// offset commit: the window in which a crash could lose or duplicate a row.
import { loadCommonConfig } from '@twofold/config';
import { topicCatalog } from '@twofold/contracts';
import { createEventProducer, createKafka } from '@twofold/kafka';
import { createAuditRepository, createPool } from '@twofold/store';
import { createLogger, createServiceMetrics } from '@twofold/telemetry';
import { buildAuditSink } from '../../services/audit-sink/src/audit-sink.js';

const config = loadCommonConfig('audit-sink');
const logger = createLogger({ service: 'audit-sink-test', level: 'warn' });
const kafka = createKafka({ ...config.kafka, clientId: 'audit-sink-test', logger });
const producer = createEventProducer(kafka, { topics: topicCatalog(config.kafka.topicPrefix), logger });
const pool = createPool({ url: config.database.url, schema: config.database.schema, max: 2 });
const audit = createAuditRepository(pool);
const crash = process.env['TEST_CRASH_AFTER_EFFECT'] === '1';

const sink = buildAuditSink({
  kafka,
  producer,
  pool,
  audit: {
    async insertMany(rows) {
      const inserted = await audit.insertMany(rows);
      if (crash && rows.length > 0) process.kill(process.pid, 'SIGKILL');
      return inserted;
    },
  },
  logger,
  metrics: createServiceMetrics('audit-sink-test'),
  groupId: `${config.kafka.groupPrefix}audit-sink`,
  sessionTimeoutMs: 6_000,
});
await producer.connect();
await sink.start();
process.stdout.write('started\n');
process.once('SIGTERM', () => {
  void sink
    .stop()
    .then(() => producer.disconnect())
    .then(() => pool.end())
    .then(() => process.exit(0));
});
