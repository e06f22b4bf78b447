// The Kafka broker restarted in the middle of the load (issue 9): a private single-node
// broker (support/private-kafka.ts), never the shared stack's, stopped and started again on
// the same ports and data. Nobody restarts a service or reconnects a client: producers and
// consumers must recover by themselves, and nothing may be lost or counted twice.
import { afterAll, beforeAll, describe, it } from 'vitest';
import { expectNothingLost, loadScenario, print, recoveredUnaided } from './support/checks.js';
import { runUnderLoad, summary } from './support/load-run.js';
import { PrivateKafka } from './support/private-kafka.js';

const { scenario, rate, seconds } = loadScenario('kr');
const kafka = new PrivateKafka();

beforeAll(async () => {
  await kafka.create();
  await kafka.start();
});
afterAll(() => kafka.destroy());

describe('Kafka broker restarted under load', () => {
  it('recovers every producer and consumer without help, loses nothing, counts nothing twice', async () => {
    const outcome = await runUnderLoad('kafka-restart', {
      scenario,
      rate,
      env: { KAFKA_BROKERS: kafka.brokers },
      faults: [
        {
          atSecond: seconds / 3,
          async run() {
            const stopping = Date.now();
            await kafka.stop('SIGTERM');
            const stopped = Date.now();
            // Down for a few seconds while apps keep trying to publish.
            await new Promise((r) => setTimeout(r, 5_000));
            await kafka.start();
            return { stopMs: stopped - stopping, downMs: Date.now() - stopped };
          },
        },
      ],
      // Nobody restarted a service: each recovers by itself.
      afterLoad: recoveredUnaided,
    });
    print('kafka restart', {
      events: scenario.events.length,
      rate,
      broker: outcome.faults[0],
      ...summary(outcome),
    });
    expectNothingLost(outcome, scenario);
  });
});
