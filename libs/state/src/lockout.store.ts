import { createHash } from 'node:crypto';
import type { Redis } from '@twofold/redis';
import { defineScripts, type ScriptPipeline } from './scripts.js';
import {
  lockoutKeys,
  lockoutLocation,
  RECORD_FIELDS,
  recordFrom,
  type LockoutRecord,
  type LockoutTarget,
} from './lockout-keys.js';
import {
  LOCKOUT_IMPOSE_SCRIPT,
  LOCKOUT_LIFT_EXPIRED_SCRIPT,
  LOCKOUT_NETWORK_COUNT_SCRIPT,
  LOCKOUT_SPRAY_ADD_SCRIPT,
  LOCKOUT_SPRAY_WINDOW_SCRIPT,
  LOCKOUT_USER_COUNT_SCRIPT,
} from './lockout.scripts.js';

// The write side of lockout state, used by the lockout detector. Readers (verifier, api)
// use lockout.state.ts.

/** Window lengths and bounds of the lockout store, in ms (from the detector's rules). */
export interface LockoutStoreSettings {
  /** (user, IP) failure window. */
  readonly pairWindowMs: number;
  /** Window of distinct sources failing for one user. */
  readonly userSourcesWindowMs: number;
  /** Window of distinct users per IP / network. */
  readonly sourceWindowMs: number;
  /** Most entries a window keeps (counts saturate there, far above any threshold). */
  readonly windowCap: number;
  readonly streakTtlMs: number;
  /** Failure ids a streak keeps at most (its count saturates there; far above the NIST bound). */
  readonly streakCap: number;
  readonly pendingTtlMs: number;
  readonly knownMax: number;
  readonly knownTtlMs: number;
  readonly spray: { readonly windowMs: number; readonly bucketMs: number; readonly baselineWindows: number };
  /** How long "who lifted this lockout" is remembered. */
  readonly claimTtlMs: number;
  /**
   * Counts from which lock flags are worth reading (the rules' thresholds): below them the
   * flags read as "none", which no rule looks at. 0 reads them always.
   */
  readonly gates: {
    readonly streak: number;
    readonly sources: number;
    readonly pair: number;
    readonly ipUsers: number;
    readonly networkUsers: number;
  };
  /** Bases (users or networks) per script call: 1 on Redis Cluster, more on a single Redis. */
  readonly basesPerCall: number;
  /** Events per script call at most (a call blocks Redis while it runs). */
  readonly eventsPerCall: number;
}

/**
 * A signal about a user: a failure, a primary login, a completed sign-in (resets the streak,
 * makes the login's network known-good), or a streak reset alone.
 */
export type LockoutUserSignal =
  | {
      readonly kind: 'failure';
      readonly id: string;
      readonly at: number;
      readonly ip: string;
      readonly network: string;
      /**
       * The app has no account of that name: it counts in the user's streak only (not in
       * the (user, IP) or sources windows, which reply 0), kept for the short windows;
       * source and spray counting is the same as for any failure.
       */
      readonly unknownUser?: boolean;
    }
  | {
      readonly kind: 'login';
      readonly id: string;
      readonly at: number;
      readonly network: string;
      readonly session: string;
    }
  | { readonly kind: 'complete'; readonly id: string; readonly at: number; readonly session: string }
  | { readonly kind: 'reset'; readonly id: string; readonly at: number };

export interface UserFailureCounts {
  readonly duplicate: boolean;
  readonly knownNetwork: boolean;
  readonly streak: number;
  readonly streakFromKnownNetworks: number;
  readonly pairFailures: number;
  readonly userSources: number;
  readonly userLock: 'none' | 'spares_known_networks' | 'every_network';
  readonly forceSecondFactor: boolean;
  readonly userIpLock: boolean;
}
export type UserSignalReply = UserFailureCounts | { readonly duplicate: false };

export interface NetworkFailure {
  readonly id: string;
  readonly at: number;
  readonly ip: string;
  readonly username: string;
}
export interface NetworkFailureCounts {
  readonly ipUsers: number;
  readonly networkUsers: number;
  readonly ipBlock: boolean;
  readonly networkBlock: boolean;
}

export interface SprayFailure {
  readonly id: string;
  readonly at: number;
  readonly username: string;
  readonly ip: string;
}

/** A lockout to impose if absent. */
export interface LockoutImposition {
  readonly target: LockoutTarget;
  /** The event that called for it; with the target it makes the lockout id. */
  readonly causeId: string;
  /**
   * Its event time (ms), given for a redelivered cause only: with no lockout of the key in
   * force, one at or before the end of the key's last lockout (one that expired) imposes
   * nothing, as it was judged while that one was in force. Absent (a failure never seen
   * before): judged now, whatever its time.
   */
  readonly causeAt?: number;
  readonly scope: LockoutRecord['scope'];
  readonly key: string;
  readonly mode: LockoutRecord['mode'];
  readonly rule: string;
  readonly failures: number;
  readonly sparesKnownNetworks?: boolean;
  /** Widen an existing user lock that spares known networks, rather than impose. */
  readonly widen?: boolean;
  /** Durations (ms) by level; the last repeats. */
  readonly schedule: readonly number[];
  readonly levelMemoryMs: number;
  /** The lock after this many in a row is permanent; 0 never. */
  readonly permanentAfter: number;
}

/** Where a lockout lives: what a lift job needs to find it again. */
export interface LockoutRef {
  readonly base: string;
  readonly lockSub: string;
  readonly lockId: string;
}

export interface ImposedLockout {
  readonly status: 'imposed' | 'existing' | 'widened';
  readonly record: LockoutRecord;
  readonly ref: LockoutRef;
  /** ISO time a user lock was widened (set once widened): the time of its announcement. */
  readonly widenedAt?: string;
}

export type LiftAtExpiry =
  | {
      readonly status: 'lift';
      /** It ended and a newer lockout of the same key is in force (the index entry is that one's). */
      readonly superseded?: true;
    }
  | { readonly status: 'early'; readonly untilMs: number }
  | { readonly status: 'permanent' }
  | { readonly status: 'lifted'; readonly by: string };

const SCRIPTS = {
  twofoldLockoutUserCount: LOCKOUT_USER_COUNT_SCRIPT,
  twofoldLockoutNetworkCount: LOCKOUT_NETWORK_COUNT_SCRIPT,
  twofoldLockoutImpose: LOCKOUT_IMPOSE_SCRIPT,
  twofoldLockoutLiftExpired: LOCKOUT_LIFT_EXPIRED_SCRIPT,
  twofoldLockoutSprayAdd: LOCKOUT_SPRAY_ADD_SCRIPT,
  twofoldLockoutSprayWindow: LOCKOUT_SPRAY_WINDOW_SCRIPT,
} as const;

/** Stable id of a lockout: its record key and the event that caused it. */
export function lockoutIdOf(recordKey: string, causeId: string): string {
  return createHash('sha256').update(`${recordKey}\n${causeId}`).digest('hex').slice(0, 32);
}

/** Splits groups into calls of at most `bases` groups and about `events` events. */
function chunk<T>(groups: readonly [string, readonly T[]][], bases: number, events: number) {
  const calls: [string, readonly T[]][][] = [];
  let current: [string, readonly T[]][] = [];
  let size = 0;
  for (const group of groups) {
    if (current.length > 0 && (current.length >= bases || size + group[1].length > events)) {
      calls.push(current);
      current = [];
      size = 0;
    }
    current.push(group);
    size += group[1].length;
  }
  if (current.length > 0) calls.push(current);
  return calls;
}

const USER_LOCK = ['none', 'spares_known_networks', 'every_network'] as const;

/**
 * The lockout detector's side of lockout state: counting in sliding windows, imposing
 * lockouts if absent, lifting them at expiry, the global spray figures. Every count is
 * idempotent by event id: a redelivered event changes nothing and gets the current counts.
 */
export function createLockoutStore(
  redis: Redis,
  prefix: string,
  /** Fixed settings, or a function read at each call (rules that change at run time). */
  settings: LockoutStoreSettings | (() => LockoutStoreSettings),
) {
  const settingsNow = typeof settings === 'function' ? settings : () => settings;
  const client = defineScripts(redis, SCRIPTS);
  const globalBase = lockoutKeys.global(prefix);

  return {
    /**
     * Counts one batch in one round trip: user signals grouped by username, failures
     * grouped by network, and the spray figures. Replies follow the input order. Every
     * count is idempotent: a redelivered failure is `duplicate` and changes nothing.
     */
    async countBatch(input: {
      users: ReadonlyMap<string, readonly LockoutUserSignal[]>;
      networks: ReadonlyMap<string, readonly NetworkFailure[]>;
      spray: readonly SprayFailure[];
      now: number;
    }): Promise<{
      users: Map<string, UserSignalReply[]>;
      networks: Map<string, NetworkFailureCounts[]>;
    }> {
      const pipeline = client.pipeline() as ScriptPipeline<keyof typeof SCRIPTS>;
      const s = settingsNow();
      const userCalls = chunk([...input.users], s.basesPerCall, s.eventsPerCall);
      const networkCalls = chunk([...input.networks], s.basesPerCall, s.eventsPerCall);
      for (const call of userCalls) {
        const args: (string | number)[] = [
          input.now,
          s.pairWindowMs,
          s.userSourcesWindowMs,
          s.windowCap,
          s.streakTtlMs,
          s.streakCap,
          s.pendingTtlMs,
          s.knownMax,
          s.knownTtlMs,
          s.gates.streak,
          s.gates.sources,
          s.gates.pair,
        ];
        for (const [, signals] of call) {
          args.push(signals.length);
          for (const signal of signals) {
            if (signal.kind === 'failure')
              args.push(signal.unknownUser ? 'u' : 'f', signal.id, signal.at, signal.ip, signal.network, '');
            else if (signal.kind === 'login')
              args.push('s', signal.id, signal.at, '', signal.network, signal.session);
            else if (signal.kind === 'complete') args.push('c', signal.id, signal.at, '', '', signal.session);
            else args.push('r', signal.id, signal.at, '', '', '');
          }
        }
        void pipeline.twofoldLockoutUserCount(
          call.length,
          ...call.map(([username]) => lockoutKeys.user(prefix, username)),
          ...args,
        );
      }
      for (const call of networkCalls) {
        const args: (string | number)[] = [
          input.now,
          s.sourceWindowMs,
          s.windowCap,
          s.gates.ipUsers,
          s.gates.networkUsers,
        ];
        for (const [, failures] of call) {
          args.push(failures.length);
          for (const f of failures) args.push(f.id, f.at, f.ip, f.username);
        }
        void pipeline.twofoldLockoutNetworkCount(
          call.length,
          ...call.map(([network]) => lockoutKeys.network(prefix, network)),
          ...args,
        );
      }
      if (input.spray.length > 0) {
        const args: (string | number)[] = [
          input.now,
          s.spray.bucketMs,
          s.spray.windowMs,
          s.spray.baselineWindows,
        ];
        for (const f of input.spray) args.push(f.at, f.id, f.username, f.ip);
        void pipeline.twofoldLockoutSprayAdd(1, globalBase, ...args);
      }
      const results = (await pipeline.exec()) ?? [];
      for (const [err] of results) if (err) throw err;

      const users = new Map<string, UserSignalReply[]>();
      let r = 0;
      for (const call of userCalls) {
        const reply = results[r++]![1] as number[][][];
        call.forEach(([username], g) => {
          users.set(
            username,
            reply[g]!.map((v) =>
              v.length === 1
                ? { duplicate: false as const }
                : {
                    duplicate: v[0] === 1,
                    knownNetwork: v[1] === 1,
                    streak: v[2]!,
                    streakFromKnownNetworks: v[3]!,
                    pairFailures: v[4]!,
                    userSources: v[5]!,
                    userLock: USER_LOCK[v[6]!] ?? 'none',
                    forceSecondFactor: v[7] === 1,
                    userIpLock: v[8] === 1,
                  },
            ),
          );
        });
      }
      const networks = new Map<string, NetworkFailureCounts[]>();
      for (const call of networkCalls) {
        const reply = results[r++]![1] as number[][][];
        call.forEach(([network], g) => {
          networks.set(
            network,
            reply[g]!.map((v) => ({
              ipUsers: v[0]!,
              networkUsers: v[1]!,
              ipBlock: v[2] === 1,
              networkBlock: v[3] === 1,
            })),
          );
        });
      }
      return { users, networks };
    },

    /**
     * Imposes lockouts that are absent (atomically per key) and indexes them for the
     * admin list. Replies per imposition: what was imposed (or found already imposed by
     * this cause, to announce again), or undefined when another lockout is in force.
     */
    async impose(
      impositions: readonly LockoutImposition[],
      now: number,
    ): Promise<(ImposedLockout | undefined)[]> {
      if (impositions.length === 0) return [];
      const located = impositions.map((imposition) => {
        const location = lockoutLocation(prefix, imposition.target);
        const recordKey = `${location.base}:${location.lockSub}`;
        return { imposition, location, lockId: lockoutIdOf(recordKey, imposition.causeId) };
      });
      const byBase = new Map<string, typeof located>();
      for (const item of located) {
        const list = byBase.get(item.location.base) ?? [];
        list.push(item);
        byBase.set(item.location.base, list);
      }
      const s = settingsNow();
      const calls = chunk([...byBase], s.basesPerCall, s.eventsPerCall);
      const pipeline = client.pipeline() as ScriptPipeline<keyof typeof SCRIPTS>;
      for (const call of calls) {
        const args: (string | number)[] = [now, s.claimTtlMs];
        for (const [, items] of call) {
          args.push(items.length);
          for (const { imposition: i, location, lockId } of items) {
            args.push(
              location.lockSub,
              location.levelSub,
              lockId,
              i.scope,
              i.key,
              i.mode,
              i.rule,
              i.failures,
              i.sparesKnownNetworks === undefined ? '' : i.sparesKnownNetworks ? '1' : '0',
              i.levelMemoryMs,
              i.permanentAfter,
              i.schedule.join(','),
              i.widen ? '1' : '0',
              i.causeAt ?? '',
            );
          }
        }
        void pipeline.twofoldLockoutImpose(call.length, ...call.map(([base]) => base), ...args);
      }
      const results = (await pipeline.exec()) ?? [];
      for (const [err] of results) if (err) throw err;

      const outcome = new Map<(typeof located)[number], ImposedLockout | undefined>();
      calls.forEach((call, c) => {
        const reply = results[c]![1] as string[][][];
        call.forEach(([, items], g) => {
          items.forEach((item, i) => {
            const [status, ...fields] = reply[g]![i]!;
            const record = status === 'skipped' ? undefined : recordFrom(fields);
            const widenedAt = fields[RECORD_FIELDS.length];
            outcome.set(
              item,
              record
                ? {
                    status: status as ImposedLockout['status'],
                    record,
                    ref: { base: item.location.base, lockSub: item.location.lockSub, lockId: record.lockId },
                    ...(widenedAt ? { widenedAt: new Date(Number(widenedAt)).toISOString() } : {}),
                  }
                : undefined,
            );
          });
        });
      });
      const imposed = located.map((item) => outcome.get(item));
      const index: (string | number)[] = [];
      for (const done of imposed) {
        if (!done) continue;
        index.push(
          done.record.until === null ? '+inf' : Date.parse(done.record.until),
          `${done.ref.base}:${done.ref.lockSub}`,
        );
      }
      if (index.length > 0) await client.zadd(lockoutKeys.index(prefix), ...index);
      return imposed;
    },

    /** Lifts a lockout whose time is up, unless an admin did first. */
    async liftAtExpiry(ref: LockoutRef, now: number): Promise<LiftAtExpiry> {
      const reply = (await client.twofoldLockoutLiftExpired(
        1,
        ref.base,
        ref.lockSub,
        ref.lockId,
        now,
        settingsNow().claimTtlMs,
      )) as string[];
      const [status, detail] = reply;
      if (status === 'early') return { status, untilMs: Number(detail) };
      if (status === 'lifted') return { status, by: detail ?? '' };
      if (status === 'permanent') return { status };
      if (status === 'lift') {
        // Superseded: the record key, and so its index entry, is the newer lockout's now.
        if (detail === 'superseded') return { status, superseded: true };
        await client.zrem(lockoutKeys.index(prefix), `${ref.base}:${ref.lockSub}`);
        return { status };
      }
      throw new Error(`unexpected lift reply ${String(status)}`);
    },

    /** The global spray figures of the window ending at `now`. */
    async sprayWindow(now: number): Promise<{
      failures: number;
      distinctUsers: number;
      distinctIps: number;
      distinctPairs: number;
      baselineFailures: number;
    }> {
      const { windowMs, bucketMs, baselineWindows } = settingsNow().spray;
      const [failures, users, ips, pairs, baseline] = (await client.twofoldLockoutSprayWindow(
        1,
        globalBase,
        now,
        bucketMs,
        windowMs,
        baselineWindows,
      )) as number[];
      return {
        failures: failures!,
        distinctUsers: users!,
        distinctIps: ips!,
        distinctPairs: pairs!,
        baselineFailures: baseline! / baselineWindows,
      };
    },

    /** True for the one caller that may announce a spray now (then quiet for `cooldownMs`). */
    async claimSprayAnnouncement(cooldownMs: number): Promise<boolean> {
      return (await client.set(`${globalBase}:spray`, '1', 'PX', cooldownMs, 'NX')) === 'OK';
    },
    async releaseSprayAnnouncement(): Promise<void> {
      await client.del(`${globalBase}:spray`);
    },
  };
}
export type LockoutStore = ReturnType<typeof createLockoutStore>;
