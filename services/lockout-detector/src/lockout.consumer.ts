import type { AnyTwofoldEvent } from '@twofold/contracts';
import type { BatchOutcome, ConsumedEvent, EventProducer } from '@twofold/kafka';
import {
  attackDetectedEvent,
  backoffSchedule,
  decideFailureResponses,
  decideRedeliveredFailureResponses,
  lockoutImposedEvent,
  userIpKey,
  type FailureResponse,
  type LockoutRules,
} from '@twofold/lockout';
import type {
  ImposedLockout,
  LockoutImposition,
  LockoutStore,
  LockoutUserSignal,
  NetworkFailure,
  NetworkFailureCounts,
  SprayFailure,
  UserFailureCounts,
} from '@twofold/state';
import type { Logger } from '@twofold/telemetry';
import type { LockoutMetrics } from './lockout.metrics.js';
import type { LiftScheduler } from './lockout-lift.worker.js';
import { lockoutSignalOf, type LockoutSignal } from './lockout-signal.js';

type Failure = Extract<LockoutSignal, { kind: 'failure' }>;

/** Backoff schedules of each lockout kind, computed once from the rules. */
function schedulesOf(rules: LockoutRules) {
  return {
    user_ip: backoffSchedule(rules.userIp.lockSeconds, rules.userIp.maxLockSeconds),
    user: backoffSchedule(rules.hardLock.lockSeconds, rules.hardLock.maxLockSeconds),
    source: backoffSchedule(rules.source.blockSeconds, rules.source.maxBlockSeconds),
    force: [rules.user.forceSecondFactorSeconds * 1000],
  };
}

/** The imposition a response calls for. */
function impositionOf(
  response: FailureResponse,
  failure: Failure,
  rules: LockoutRules,
  schedules: ReturnType<typeof schedulesOf>,
): { imposition: LockoutImposition; evidence?: Readonly<Record<string, number>> } {
  const base = { causeId: failure.id, rule: response.rule, failures: response.failures };
  const permanentAfter = rules.permanent.afterLocks;
  switch (response.kind) {
    case 'user_ip':
      return {
        imposition: {
          ...base,
          target: { kind: 'user_ip', username: failure.username, ip: failure.ip },
          scope: 'user_ip',
          key: userIpKey(failure.username, failure.ip),
          mode: 'deny',
          schedule: schedules.user_ip,
          levelMemoryMs: rules.userIp.levelMemorySeconds * 1000,
          permanentAfter,
        },
      };
    case 'force_second_factor':
      return {
        imposition: {
          ...base,
          target: { kind: 'force', username: failure.username },
          scope: 'user',
          key: failure.username,
          mode: 'force_second_factor',
          schedule: schedules.force,
          levelMemoryMs: 0,
          permanentAfter: 0,
        },
        evidence: response.evidence,
      };
    case 'user':
    case 'user_widen':
      return {
        imposition: {
          ...base,
          target: { kind: 'user', username: failure.username },
          scope: 'user',
          key: failure.username,
          mode: 'deny',
          schedule: schedules.user,
          levelMemoryMs: rules.hardLock.levelMemorySeconds * 1000,
          permanentAfter,
          ...(response.kind === 'user'
            ? { sparesKnownNetworks: response.sparesKnownNetworks }
            : { widen: true }),
        },
      };
    case 'ip':
      return {
        imposition: {
          ...base,
          target: { kind: 'ip', ip: failure.ip, network: failure.network },
          scope: 'ip',
          key: failure.ip,
          mode: 'deny',
          schedule: schedules.source,
          levelMemoryMs: rules.source.levelMemorySeconds * 1000,
          permanentAfter,
        },
        evidence: response.evidence,
      };
    case 'network':
      return {
        imposition: {
          ...base,
          target: { kind: 'network', network: failure.network },
          scope: 'ip',
          key: failure.network,
          mode: 'deny',
          schedule: schedules.source,
          levelMemoryMs: rules.source.levelMemorySeconds * 1000,
          permanentAfter,
        },
        evidence: response.evidence,
      };
  }
}

/** One key per lockout record, so a batch asks for each lockout once. */
function recordKeyOf(imposition: LockoutImposition): string {
  const t = imposition.target;
  switch (t.kind) {
    case 'user':
    case 'force':
      return `${t.kind}\n${t.username}`;
    case 'user_ip':
      return `user_ip\n${t.username}\n${t.ip}`;
    case 'ip':
      return `ip\n${t.ip}`;
    case 'network':
      return `network\n${t.network}`;
  }
}

/**
 * The batch handler of the lockout detector. Per batch: one Redis round trip counts every
 * signal (idempotent by event id), the pure rules decide, a second round trip (only when a
 * rule fires) imposes what is absent, then the lift jobs are scheduled and the security
 * events published. A failure anywhere fails the batch and the runner retries it: counts
 * do not change on the retry, lockouts this batch imposed (widened) are found again
 * ("existing", "widened") and announced with the same event ids and times.
 */
export function createLockoutHandler(deps: {
  store: LockoutStore;
  producer: EventProducer;
  lifts: LiftScheduler;
  /** The rules, or a function giving the rules in force (read once per chunk). */
  rules: LockoutRules | (() => LockoutRules);
  metrics: LockoutMetrics;
  logger: Logger;
  clock: () => number;
  /** Events per round of count, decide, impose (default 500). */
  chunkSize?: number;
}) {
  const { store, metrics } = deps;
  const rulesNow = typeof deps.rules === 'function' ? deps.rules : () => deps.rules as LockoutRules;
  let schedules = { rules: undefined as LockoutRules | undefined, of: schedulesOf(rulesNow()) };
  const schedulesFor = (rules: LockoutRules) => {
    if (schedules.rules !== rules) schedules = { rules, of: schedulesOf(rules) };
    return schedules.of;
  };

  const chunkSize = deps.chunkSize ?? 500;

  /**
   * A batch is handled in chunks, in order: a lockout crossed early in a large batch is in
   * force (and announced) without waiting for the rest of the batch.
   */
  return async function handle(batch: readonly ConsumedEvent[]): Promise<BatchOutcome> {
    const rejected: { item: ConsumedEvent; reason: string }[] = [];
    // Each chunk's lift jobs and announcements go on while the next chunk is counted; the
    // batch is done (and committed) only once all of them are. Each settles to its error,
    // so none is an unhandled rejection while later chunks run.
    const announcing: Promise<unknown>[] = [];
    for (let i = 0; i < batch.length; i += chunkSize) {
      await handleChunk(batch.slice(i, i + chunkSize), rejected, (work) =>
        announcing.push(
          work().then(
            () => undefined,
            (err: unknown) => ({ failed: err }),
          ),
        ),
      );
    }
    for (const outcome of await Promise.all(announcing)) {
      if (outcome) throw (outcome as { failed: unknown }).failed;
    }
    return { rejected };
  };

  async function handleChunk(
    batch: readonly ConsumedEvent[],
    rejected: { item: ConsumedEvent; reason: string }[],
    announce: (work: () => Promise<void>) => void,
  ) {
    const now = deps.clock();
    const rules = rulesNow();
    const users = new Map<string, LockoutUserSignal[]>();
    const networks = new Map<string, NetworkFailure[]>();
    const spray: SprayFailure[] = [];
    // Where each failure's replies will be: [user group position, network group position].
    const failures: { failure: Failure; item: ConsumedEvent; userAt: number; networkAt: number }[] = [];
    const push = <T>(map: Map<string, T[]>, key: string, value: T) => {
      const list = map.get(key) ?? [];
      list.push(value);
      map.set(key, list);
      return list.length - 1;
    };

    for (const item of batch) {
      const signal = lockoutSignalOf(item.event as AnyTwofoldEvent, item.timestamp, now, rules);
      switch (signal.kind) {
        case 'failure': {
          if (signal.adjusted !== 'none') {
            metrics.timeAdjusted.inc({ adjustment: signal.adjusted });
            deps.logger.warn(
              { eventId: signal.id, time: item.event.time, adjustment: signal.adjusted },
              'absurd event time; counted at the broker time',
            );
          }
          const userAt = push(users, signal.username, {
            kind: 'failure',
            id: signal.id,
            at: signal.at,
            ip: signal.ip,
            network: signal.network,
            unknownUser: signal.unknownUser,
          });
          const networkAt = push(networks, signal.network, {
            id: signal.id,
            at: signal.at,
            ip: signal.ip,
            username: signal.username,
          });
          spray.push({ id: signal.id, at: signal.at, username: signal.username, ip: signal.ip });
          failures.push({ failure: signal, item, userAt, networkAt });
          break;
        }
        case 'login':
          push(users, signal.username, {
            kind: 'login',
            id: signal.id,
            at: signal.at,
            network: signal.network,
            session: signal.session,
          });
          break;
        case 'complete':
          push(users, signal.username, {
            kind: 'complete',
            id: signal.id,
            at: signal.at,
            session: signal.session,
          });
          break;
        case 'reset':
          push(users, signal.username, { kind: 'reset', id: signal.id, at: signal.at });
          break;
        case 'rejected':
          rejected.push({ item, reason: signal.reason });
          break;
        case 'ignored':
          break;
      }
    }
    if (users.size === 0) return;

    let mark = performance.now();
    const lap = (step: string) => {
      const at = performance.now();
      metrics.steps.observe({ step }, (at - mark) / 1000);
      mark = at;
    };
    const counts = await store.countBatch({ users, networks, spray, now });
    lap('count');

    const wanted = new Map<
      string,
      {
        imposition: LockoutImposition;
        evidence?: Readonly<Record<string, number>>;
        item: ConsumedEvent;
        redelivered: boolean;
      }
    >();
    // Counted once per chunk: a labelled inc per failure is measurable at 20,000 failures/s.
    const read = new Map<string, number>();
    for (const { failure, item, userAt, networkAt } of failures) {
      const user = counts.users.get(failure.username)![userAt] as UserFailureCounts;
      const network = counts.networks.get(failure.network)![networkAt] as NetworkFailureCounts;
      const label = `${failure.topic}|${user.duplicate ? 'duplicate' : 'counted'}`;
      read.set(label, (read.get(label) ?? 0) + 1);
      const facts = {
        knownNetwork: user.knownNetwork,
        streak: user.streak,
        streakFromKnownNetworks: user.streakFromKnownNetworks,
        pairFailures: user.pairFailures,
        userSources: user.userSources,
        ipUsers: network.ipUsers,
        networkUsers: network.networkUsers,
      };
      // A redelivered failure may have imposed (widened) a lockout that was never announced
      // (a crash in between): the store answers "existing" ("widened") for what this very
      // event did, to announce again.
      const responses = user.duplicate
        ? decideRedeliveredFailureResponses(rules, facts, user.userLock)
        : decideFailureResponses(rules, {
            ...facts,
            existing: {
              userLock: user.userLock,
              forceSecondFactor: user.forceSecondFactor,
              userIpLock: user.userIpLock,
              ipBlock: network.ipBlock,
              networkBlock: network.networkBlock,
            },
          });
      for (const response of responses) {
        const planned = impositionOf(response, failure, rules, schedulesFor(rules));
        // A redelivered failure stamped within a lockout of the key that has ended since was
        // judged under it: the store skips it (a fresh failure is judged now, by the rules).
        if (user.duplicate) planned.imposition = { ...planned.imposition, causeAt: failure.at };
        // Fresh failures ask once per lockout (the first to cross wins). Redelivered ones
        // see today's counts, not those they saw then, so each asks with its own id (to
        // impose and to widen apart): the one that caused it finds it and announces it again.
        const key =
          recordKeyOf(planned.imposition) +
          (user.duplicate ? `\n${failure.id}${planned.imposition.widen ? '\nwiden' : ''}` : '');
        if (!wanted.has(key)) wanted.set(key, { ...planned, item, redelivered: user.duplicate });
      }
    }
    for (const [label, n] of read) {
      const [topic, outcome] = label.split('|') as [string, string];
      metrics.failures.inc({ topic, outcome }, n);
    }
    lap('decide');
    if (wanted.size === 0) return;

    const plans = [...wanted.values()];
    const results = await store.impose(
      plans.map((p) => p.imposition),
      now,
    );
    lap('impose');
    const events: ReturnType<typeof lockoutImposedEvent | typeof attackDetectedEvent>[] = [];
    const toSchedule: ImposedLockout[] = [];
    results.forEach((result, i) => {
      if (!result) return;
      const plan = plans[i]!;
      const { record } = result;
      // A lockout found again ("existing", or "widened" for a redelivery) is announced as it
      // was first: same id and same time (the audit's unique key holds the time; a new one
      // would be a new row).
      const time = new Date(result.status === 'widened' ? (result.widenedAt ?? now) : record.imposedAt);
      events.push(lockoutImposedEvent(record, { time, widened: result.status === 'widened' }));
      if (result.status !== 'widened' && plan.evidence) {
        const kind = record.mode === 'force_second_factor' ? 'brute_force' : 'credential_stuffing';
        events.push(
          attackDetectedEvent(
            kind,
            record.key,
            { ...plan.evidence, rule: record.rule, lockId: record.lockId },
            { time, idParts: [record.lockId] },
          ),
        );
        if (result.status === 'imposed') metrics.attacks.inc({ kind });
      }
      // A redelivered failure widens only a lock it widened before (it asks when the lock
      // covers every network already): an announcement again, not a new lockout.
      if (result.status === 'imposed' || (result.status === 'widened' && !plan.redelivered)) {
        metrics.imposed.inc({ scope: record.scope, rule: record.rule });
        metrics.detection.observe({ scope: record.scope }, Math.max(0, now - plan.item.timestamp) / 1000);
      }
      if (result.status !== 'widened' && record.until !== null) toSchedule.push(result);
    });
    announce(async () => {
      let at = performance.now();
      const step = (name: string) => {
        const end = performance.now();
        metrics.steps.observe({ step: name }, (end - at) / 1000);
        at = end;
      };
      await deps.lifts.schedule(toSchedule, now);
      step('schedule');
      if (events.length > 0) await deps.producer.publish('security', events);
      step('publish');
    });
  }
}
