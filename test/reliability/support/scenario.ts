// A deterministic load for reliability tests: logins, failures that lock exactly known
// (user, IP) pairs, sessions verified, never verified, or verified then logged out — the
// same events (same ids) every time it is built with the same seed, so a run with faults
// can be compared with a run without.
import { createEvent, hashSessionToken, type AnyTwofoldEvent, type TopicRole } from '@twofold/contracts';
import type { EventProducer } from '@twofold/kafka';

export interface ScenarioEvent {
  role: TopicRole;
  event: AnyTwofoldEvent;
}

export interface Scenario {
  events: ScenarioEvent[];
  /** Raw SSO tokens whose session ends verified / not verified. */
  verifiedTokens: string[];
  unverifiedTokens: string[];
  /** (user, IP) pairs that get exactly the threshold of failures, so exactly one lock each. */
  lockedPairs: { user: string; ip: string }[];
  /** Every lock the events impose (`scope:key`, sorted): one per locked pair, and the IP the
   * 40 failed codes come from (40 distinct users failing from one IP: the source rule). */
  lockouts: string[];
}

const CODE_FAILURE_IP = '203.0.113.5';

const id = (seed: string, kind: string, i: number) =>
  `${seed}-${kind}-${String(i).padStart(6, '0')}-0000-4000-8000-000000000000`.slice(0, 64);

/**
 * `fillerLogins` successful logins (a fifth local, the rest through the IdP) carry the load;
 * `pairs` (user, IP) pairs fail 5 times (one lock each), 40 more fail 3 times (none);
 * 40 sessions are verified, 40 only fail a code, 20 are verified and then logged out.
 */
export function buildScenario(seed: string, options: { fillerLogins: number; pairs?: number }): Scenario {
  const pairs = options.pairs ?? 30;
  const at = (i: number) => ({ id: id(seed, 'e', i), time: new Date(Date.UTC(2026, 0, 1) + i) });
  let n = 0;
  const timeless = <T extends AnyTwofoldEvent>(e: T): T => ({ ...e, time: new Date().toISOString() });
  // Events get their time when published (time-window rules need real time); ids are fixed.
  const ev = (role: TopicRole, make: (o: { id: string }) => AnyTwofoldEvent): ScenarioEvent => ({
    role,
    event: timeless(make({ id: at(n++).id })),
  });

  const early: ScenarioEvent[] = [];
  const late: ScenarioEvent[] = [];
  const spread: ScenarioEvent[] = [];
  const lockedPairs = Array.from({ length: pairs }, (_, i) => ({
    user: `brute-${seed}-${i}`,
    ip: `198.18.${i}.1`,
  }));
  for (const { user, ip } of lockedPairs)
    for (let k = 0; k < 5; k++)
      spread.push(
        ev('login', (o) =>
          createEvent(
            'twofold.login.failed',
            'app/jira',
            user,
            { appId: 'jira', ip, reason: 'bad_password' },
            o,
          ),
        ),
      );
  for (let i = 0; i < 40; i++)
    for (let k = 0; k < 3; k++)
      spread.push(
        ev('login', (o) =>
          createEvent(
            'twofold.login.failed',
            'app/jira',
            `noise-${seed}-${i}`,
            { appId: 'jira', ip: `198.19.${i}.1`, reason: 'bad_password' },
            o,
          ),
        ),
      );
  const verifiedTokens: string[] = [];
  const unverifiedTokens: string[] = [];
  for (let i = 0; i < 100; i++) {
    const token = `sso-${seed}-${i}`;
    const user = `member-${seed}-${i}`;
    const session = hashSessionToken(token);
    early.push(
      ev('login', (o) =>
        createEvent(
          'twofold.login.succeeded',
          'app/jira',
          user,
          { appId: 'jira', session, method: 'password', ip: '203.0.113.5' },
          o,
        ),
      ),
    );
    if (i < 60) {
      early.push(
        ev('secondFactor', (o) =>
          createEvent(
            'twofold.2fa.verified',
            'service/api',
            user,
            { appId: 'jira', session, method: 'totp' },
            o,
          ),
        ),
      );
      if (i < 40) verifiedTokens.push(token);
      else {
        late.push(
          ev('login', (o) => createEvent('twofold.logout', 'app/jira', user, { appId: 'jira', session }, o)),
        );
        unverifiedTokens.push(token);
      }
    } else {
      early.push(
        ev('secondFactor', (o) =>
          createEvent(
            'twofold.2fa.failed',
            'service/api',
            user,
            { appId: 'jira', session, ip: CODE_FAILURE_IP, reason: 'bad_code' },
            o,
          ),
        ),
      );
      unverifiedTokens.push(token);
    }
  }
  const filler: ScenarioEvent[] = [];
  for (let i = 0; i < options.fillerLogins; i++) {
    const local = i % 5 === 0;
    filler.push(
      ev('login', (o) =>
        createEvent(
          'twofold.login.succeeded',
          'app/confluence',
          local ? `worker-${seed}-${i % 500}` : `idp-${seed}-${i}`,
          {
            appId: 'confluence',
            session: hashSessionToken(`filler-${seed}-${i}`),
            method: local ? 'password' : 'sso',
            ip: `203.0.113.${(i % 200) + 1}`,
          },
          o,
        ),
      ),
    );
  }
  // Early events first, the failures spread evenly through the filler, logouts at the end.
  const events: ScenarioEvent[] = [...early];
  const every = Math.max(1, Math.floor(filler.length / Math.max(1, spread.length)));
  let s = 0;
  filler.forEach((f, i) => {
    events.push(f);
    if (i % every === 0 && s < spread.length) events.push(spread[s++]!);
  });
  events.push(...spread.slice(s), ...late);
  const lockouts = [...lockedPairs.map((p) => `user_ip:${p.user}|${p.ip}`), `ip:${CODE_FAILURE_IP}`].sort();
  return { events, verifiedTokens, unverifiedTokens, lockedPairs, lockouts };
}

/**
 * Publishes the scenario at a steady rate (events/s), stamping each event's time as it goes;
 * calls `at(seconds)` every tick so a test can act at given moments (kill a service…).
 */
export async function publishScenario(
  producer: EventProducer,
  scenario: Scenario,
  rate: number,
  at: (elapsedSeconds: number) => void = () => undefined,
): Promise<void> {
  const tickMs = 100;
  const perTick = Math.max(1, Math.round((rate * tickMs) / 1000));
  const started = Date.now();
  for (let i = 0; i < scenario.events.length; i += perTick) {
    const chunk = scenario.events.slice(i, i + perTick);
    const now = new Date().toISOString();
    const byRole = new Map<TopicRole, AnyTwofoldEvent[]>();
    for (const { role, event } of chunk)
      byRole.set(role, [...(byRole.get(role) ?? []), { ...event, time: now }]);
    // Retried until the broker takes it (a broker restart is one of the faults); the same
    // ids again if a try did land, which every consumer de-duplicates.
    for (const giveUp = Date.now() + 180_000; ;) {
      try {
        await producer.publishMany([...byRole].map(([role, events]) => ({ role, events })));
        break;
      } catch (err) {
        if (Date.now() > giveUp) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }
    at((Date.now() - started) / 1000);
    const due = started + ((i + perTick) / rate) * 1000;
    await new Promise((r) => setTimeout(r, Math.max(0, due - Date.now())));
  }
}

/** Every event id the scenario publishes. */
export const scenarioIds = (scenario: Scenario) => scenario.events.map((e) => e.event.id);
