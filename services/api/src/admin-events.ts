import { createEvent } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';
import { problems } from './problem.js';

/**
 * Publishes the admin event of a change as a `beforeCommit` of its transaction: when Kafka
 * refuses it, the change is rolled back and the admin gets 503 "nothing was changed".
 */
export async function publishAdminEvent(
  producer: EventProducer,
  type: `twofold.admin.${string}`,
  subject: string,
  data: Record<string, unknown>,
): Promise<void> {
  try {
    await producer.publish('admin', [createEvent(type, 'service/api', subject, { actor: 'admin', ...data })]);
  } catch {
    throw problems.unavailable('the change could not be audited (Kafka); nothing was changed: try again');
  }
}
