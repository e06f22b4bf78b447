// Background refreshes of the copies every service keeps of what admins change in Postgres
// (the policy, the lockout rules, the session lifetime, the app keys): a cheap version check
// (a trigger moves the version on every change), a full read only when it moved.

/**
 * How long a background refresh waits for Postgres (the policy copies every service keeps):
 * a query on a connection that went silent (a failover without a reset, a dropped route)
 * may not settle until TCP gives up, many minutes later, and a loop that waited for it would
 * refresh nothing meanwhile, also after Postgres answers again.
 */
export const REFRESH_DEADLINE_MS = 5_000;

/**
 * `work`'s answer, or a rejection naming `what` once `ms` passed without it. The work goes on
 * unwatched: a caller applies only what it got in time, so a late answer changes nothing.
 */
export function answerWithin<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer from Postgres for ${what} within ${ms} ms`)), ms);
  });
  work.catch(() => undefined); // settled after the deadline: nobody waits for it any more
  return Promise.race([work, expired]).finally(() => clearTimeout(timer));
}

/** What a copy is refreshed from: the version, and the whole stored value (which carries it). */
export interface VersionedSource<T> {
  version(): Promise<string>;
  load(): Promise<T>;
}

/**
 * The stored value when its version is not `known` (or nothing is known yet), else
 * undefined; rejected when Postgres has not answered within `deadlineMs` (answerWithin).
 */
export function loadIfMoved<T>(
  source: VersionedSource<T>,
  known: string | undefined,
  deadlineMs: number,
  what: string,
): Promise<T | undefined> {
  const read = async () =>
    known !== undefined && (await source.version()) === known ? undefined : source.load();
  return answerWithin(read(), deadlineMs, what);
}

/**
 * Runs `refresh` every `everyMs` on an unref'd timer, never two at once (a tick while one
 * runs starts nothing; `onTick` runs on every tick all the same). `now()` runs it at once,
 * or joins the one running; `stop()` ends the ticks and gives the one running, if any.
 */
export function refreshEvery(
  refresh: () => Promise<void>,
  everyMs: number,
  onTick?: () => void,
): { now(): Promise<void>; stop(): Promise<void> } {
  let running: Promise<void> | undefined;
  const now = () => (running ??= refresh().finally(() => (running = undefined)));
  const timer = setInterval(() => {
    onTick?.();
    void now();
  }, everyMs);
  timer.unref();
  return {
    now,
    stop() {
      clearInterval(timer);
      return running ?? Promise.resolve();
    },
  };
}
