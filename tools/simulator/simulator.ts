/**
 * The simulator: Jira, Confluence and Bitbucket users signing in (locally, or through an
 * IdP), typing codes from their one shared secret, and attackers guessing passwords and
 * codes. Everything goes through the app SDK, as a real app's server would. Used by the
 * demo (tools/demo.ts), the benchmarks and by hand (tools/simulator/main.ts).
 */
import { randomBytes, randomUUID } from 'node:crypto';
import {
  createTwofoldClient,
  type CodeVerification,
  type SecondFactorDecision,
  type TwofoldClient,
  type UndecidedLogin,
} from '@twofold/client';
import { generateTotp, timeStepAt } from '@twofold/otp';

export interface AppSpec {
  appId: string;
  name: string;
  /** Where the app lives: the hosted pages may return there. */
  origin: string;
}

/** The three apps of the story. */
export const ATLASSIAN_APPS: readonly AppSpec[] = Object.freeze([
  { appId: 'jira', name: 'Jira', origin: 'http://jira.localhost:8090' },
  { appId: 'confluence', name: 'Confluence', origin: 'http://confluence.localhost:8090' },
  { appId: 'bitbucket', name: 'Bitbucket', origin: 'http://bitbucket.localhost:8090' },
]);

export interface SimulatorTarget {
  /** The api, e.g. http://127.0.0.1:8080. */
  baseUrl: string;
  adminKey: string;
  publicUrl?: string;
}

export type AppClients = Record<string, TwofoldClient>;

async function adminCall<T>(
  target: SimulatorTarget,
  method: string,
  path: string,
  body?: unknown,
): Promise<T> {
  const res = await fetch(`${target.baseUrl.replace(/\/+$/, '')}${path}`, {
    method,
    headers: {
      authorization: `Bearer ${target.adminKey}`,
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
    },
    ...(body !== undefined ? { body: JSON.stringify(body) } : {}),
  });
  const parsed = (await res.json().catch(() => ({}))) as T & { detail?: string };
  if (!res.ok) throw new Error(`${method} ${path}: HTTP ${res.status} ${parsed.detail ?? ''}`);
  return parsed;
}

/**
 * Registers the apps (a fresh key each time: registering rotates it) and returns one SDK
 * client per app. `extraOrigins` adds origins every app may return to (a test's server).
 */
export async function registerApps(
  target: SimulatorTarget,
  apps: readonly AppSpec[] = ATLASSIAN_APPS,
  extraOrigins: readonly string[] = [],
): Promise<AppClients> {
  const clients: AppClients = {};
  for (const app of apps) {
    const { key } = await adminCall<{ key: string }>(target, 'POST', '/v1/admin/apps', {
      appId: app.appId,
      name: app.name,
      origins: [app.origin, ...extraOrigins],
    });
    clients[app.appId] = createTwofoldClient({
      baseUrl: target.baseUrl,
      appKey: key,
      appId: app.appId,
      ...(target.publicUrl ? { publicUrl: target.publicUrl } : {}),
    });
  }
  return clients;
}

/** Removes a user's authenticator (ignored when there is none), so a scenario can run again. */
export async function resetUser(target: SimulatorTarget, username: string): Promise<boolean> {
  const res = await fetch(
    `${target.baseUrl.replace(/\/+$/, '')}/v1/admin/users/${encodeURIComponent(username)}/enrollment`,
    { method: 'DELETE', headers: { authorization: `Bearer ${target.adminKey}` } },
  );
  return res.status === 204;
}

/** A new SSO session: the raw token an SSO server (Crowd, an IdP) would hand to the browser. */
export function newSsoToken(): string {
  return randomBytes(24).toString('base64url');
}

export interface SignInResult {
  app: string;
  decision: SecondFactorDecision | UndecidedLogin;
  /** Set when the user was asked for a code and typed it. */
  code?: CodeVerification;
  /** How long the api took to decide, and to check the code (not the wait for the phone). */
  timings: { decideMs: number; verifyMs?: number };
}

export interface SimulatedUser {
  readonly username: string;
  readonly ip: string;
  /** The base32 secret, once enrolled (the user's phone). */
  readonly secret: string | undefined;
  readonly backupCodes: readonly string[];
  /** The SSO session the browser holds now; a new sign-in to the SSO replaces it. */
  ssoToken: string;
  /** Scans the QR code (reads the secret from the otpauth URI) and confirms with a code. */
  enroll(app: string): Promise<{ backupCodes: string[] }>;
  /** The code the phone shows now, never one of a time step this user already typed. */
  currentCode(): Promise<string>;
  /** A successful primary login in `app`; when challenged, types the current code. */
  signIn(
    app: string,
    options?: { method?: 'password' | 'sso'; idp?: string; amr?: string[]; typeCode?: boolean },
  ): Promise<SignInResult>;
  /** A wrong password in `app`. */
  failPassword(app: string): Promise<void>;
  logout(app: string): Promise<void>;
}

/**
 * A user with a phone (the shared TOTP secret) and a browser (an SSO token). A code is
 * typed at most once per 30 s step, as the replay guard requires: a second code in the
 * same step takes the next one (the verifier accepts one step of clock drift ahead).
 */
export function createSimulatedUser(
  clients: AppClients,
  username: string,
  options: { ip?: string; now?: () => number } = {},
): SimulatedUser {
  const now = options.now ?? Date.now;
  const client = (app: string) => {
    const found = clients[app];
    if (!found) throw new Error(`no client for app ${app}; register it first`);
    return found;
  };
  let secret: string | undefined;
  let backupCodes: string[] = [];
  let lastStep = -Infinity;

  const user: SimulatedUser = {
    username,
    ip: options.ip ?? `198.51.100.${1 + (randomBytes(1)[0]! % 250)}`,
    get secret() {
      return secret;
    },
    get backupCodes() {
      return backupCodes;
    },
    ssoToken: newSsoToken(),

    async enroll(app) {
      const started = await client(app).startEnrollment(username);
      secret = new URL(started.otpauthUri).searchParams.get('secret') ?? undefined;
      if (!secret) throw new Error('the otpauth URI carries no secret');
      // The previous step's code: still inside the window, and it leaves the current step
      // free for the first sign-in.
      const step = timeStepAt(now()) - 1;
      const done = await client(app).confirmEnrollment(
        started.enrollmentId,
        await generateTotp(secret, { now: step * 30_000 }),
      );
      if (!done) throw new Error(`the enrollment code of ${username} was refused`);
      lastStep = step;
      backupCodes = done.backupCodes;
      return { backupCodes: done.backupCodes };
    },

    async currentCode() {
      if (!secret) throw new Error(`${username} has no authenticator; enroll first`);
      let step = Math.max(timeStepAt(now()), lastStep + 1);
      while (step > timeStepAt(now()) + 1) {
        // Two steps ahead would be refused: wait for the clock.
        await new Promise((r) => setTimeout(r, 1_000));
        step = Math.max(timeStepAt(now()), lastStep + 1);
      }
      lastStep = step;
      return generateTotp(secret, { now: step * 30_000 });
    },

    async signIn(app, signInOptions = {}) {
      const started = performance.now();
      const decision = await client(app).decide(
        {
          username,
          ssoToken: user.ssoToken,
          ip: user.ip,
          method: signInOptions.method ?? 'password',
          ...(signInOptions.idp ? { idp: signInOptions.idp } : {}),
          ...(signInOptions.amr ? { amr: signInOptions.amr } : {}),
        },
        { timeoutMs: 10_000 },
      );
      const decideMs = performance.now() - started;
      if (decision.decision !== 'challenge' || signInOptions.typeCode === false) {
        return { app, decision, timings: { decideMs } };
      }
      const typed = await user.currentCode();
      const verifying = performance.now();
      const code = await client(app).verifyCode(decision.challengeId!, typed);
      return { app, decision, code, timings: { decideMs, verifyMs: performance.now() - verifying } };
    },

    async failPassword(app) {
      await client(app).loginFailed({ username, ip: user.ip, reason: 'bad_password' });
    },

    async logout(app) {
      await client(app).logout({ username, ssoToken: user.ssoToken });
    },
  };
  return user;
}

export interface AttackReport {
  /** Password guesses sent as failed logins. */
  passwordGuesses: number;
  /** Codes guessed against challenges the attacker got with a stolen password. */
  codeGuesses: number;
  /** Guessed codes that were accepted (must be 0). */
  codesAccepted: number;
  /** How the last sign-in with the stolen password was decided. */
  lastDecision?: string;
  /** Why the last guessed code was refused. */
  lastRefusal?: string;
}

/**
 * An attacker from one IP. `guessPasswords` is brute force or credential stuffing (failed
 * logins); `guessCodes` has the victim's password (a successful primary login) and guesses
 * 6-digit codes until the challenge is spent, `rounds` times.
 */
export function createAttacker(clients: AppClients, options: { ip?: string } = {}) {
  const ip = options.ip ?? `203.0.113.${1 + (randomBytes(1)[0]! % 250)}`;
  const client = (app: string) => clients[app] ?? Object.values(clients)[0]!;
  const guess = () => String(randomBytes(4).readUInt32BE() % 1_000_000).padStart(6, '0');
  return {
    ip,
    async guessPasswords(app: string, usernames: readonly string[], perUser: number): Promise<AttackReport> {
      let passwordGuesses = 0;
      for (let i = 0; i < perUser; i++) {
        for (const username of usernames) {
          await client(app).loginFailed({ username, ip, reason: 'bad_password' });
          passwordGuesses++;
        }
      }
      return { passwordGuesses, codeGuesses: 0, codesAccepted: 0 };
    },
    async guessCodes(app: string, username: string, rounds = 1): Promise<AttackReport> {
      const report: AttackReport = { passwordGuesses: 0, codeGuesses: 0, codesAccepted: 0 };
      for (let round = 0; round < rounds; round++) {
        const decision = await client(app).decide(
          { username, ssoToken: newSsoToken(), ip, method: 'password', eventId: randomUUID() },
          { timeoutMs: 10_000 },
        );
        report.lastDecision = `${decision.decision}${'reason' in decision ? `/${decision.reason}` : ''}`;
        if (decision.decision !== 'challenge') break;
        for (;;) {
          const result = await client(app)
            .verifyCode(decision.challengeId!, guess())
            .catch(() => undefined);
          if (!result) break; // spent (404) or refused
          report.codeGuesses++;
          if (result.verified) {
            report.codesAccepted++;
            break;
          }
          report.lastRefusal = result.reason;
          if (result.reason !== 'bad_code') break;
        }
      }
      return report;
    },
  };
}
