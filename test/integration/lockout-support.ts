// Shared by the lockout integration tests.
import { groupLag } from '@twofold/kafka';
import { eventually, type Isolated } from '../support/stack.js';

/** Waits until the detector's group has committed every login and 2fa event produced so far. */
export async function detectorCaughtUp(world: Isolated, groupId: string, timeoutMs = 60_000): Promise<void> {
  await eventually(
    async () =>
      (await groupLag(world.kafka, groupId, [world.topics.login, world.topics.secondFactor])) === 0
        ? true
        : undefined,
    timeoutMs,
    'the detector to catch up',
  );
}
