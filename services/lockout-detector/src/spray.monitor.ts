import type { EventProducer } from '@twofold/kafka';
import { GLOBAL_SUBJECT, assessSpray, attackDetectedEvent, type LockoutRules } from '@twofold/lockout';
import type { LockoutStore } from '@twofold/state';
import type { Logger } from '@twofold/telemetry';
import type { LockoutMetrics } from './lockout.metrics.js';

/**
 * Password spraying is a property of the whole stream, not of one event: every
 * `spray.evaluateEverySeconds` the global window (HyperLogLogs in Redis, shared by every
 * replica) is assessed, and a spray is announced once per `spray.cooldownSeconds` across
 * replicas (`attack.detected/password_spraying`, key `global`, with the evidence).
 */
export function createSprayMonitor(deps: {
  store: LockoutStore;
  producer: EventProducer;
  /** The rules in force (read at each assessment). */
  rules: () => LockoutRules;
  metrics: LockoutMetrics;
  logger: Logger;
  clock: () => number;
}) {
  const log = deps.logger.child({ component: 'spray-monitor' });
  let timer: NodeJS.Timeout | undefined;
  let running: Promise<void> | undefined;

  async function evaluate(): Promise<void> {
    const now = deps.clock();
    const window = await deps.store.sprayWindow(now);
    const spray = deps.rules().spray;
    const assessment = assessSpray(spray, window);
    if (!assessment.detected) return;
    if (!(await deps.store.claimSprayAnnouncement(spray.cooldownSeconds * 1000))) return;
    try {
      await deps.producer.publish('security', [
        attackDetectedEvent('password_spraying', GLOBAL_SUBJECT, assessment.evidence, {
          time: new Date(now),
          idParts: [GLOBAL_SUBJECT, String(now)],
        }),
      ]);
    } catch (err) {
      await deps.store.releaseSprayAnnouncement().catch(() => undefined);
      throw err;
    }
    deps.metrics.attacks.inc({ kind: 'password_spraying' });
    log.warn({ evidence: assessment.evidence }, 'password spraying detected');
  }

  return {
    start(): void {
      // A chain of timeouts, so a change of evaluateEverySeconds applies from the next tick.
      const tick = () => {
        timer = setTimeout(() => {
          running = evaluate()
            .catch((err: unknown) => log.warn({ err }, 'spray assessment failed; retrying next tick'))
            .finally(() => {
              running = undefined;
              if (timer) tick();
            });
        }, deps.rules().spray.evaluateEverySeconds * 1000);
      };
      if (!timer) tick();
    },
    /** One assessment now (tests, and the last one at shutdown is not needed). */
    evaluate,
    async stop(): Promise<void> {
      const pending = timer;
      timer = undefined;
      if (pending) clearTimeout(pending);
      await running;
    },
  };
}
