// The simulator from the command line: users of Jira, Confluence and Bitbucket signing in
// (locally and through an IdP) and attackers, against the running stack. Prints what
// twofold decided and how fast.
//
//   node --conditions=twofold-source --import tsx tools/simulator/main.ts [--users 20] [--rounds 3] [--idp 0.3] [--attackers 1]
import { randomBytes, randomInt } from 'node:crypto';
import { pathToFileURL } from 'node:url';
import { Command, InvalidArgumentError } from 'commander';
import { loadCliEnv, requireEnv } from '../cli/settings.js';
import {
  ATLASSIAN_APPS,
  createAttacker,
  createSimulatedUser,
  newSsoToken,
  registerApps,
} from './simulator.js';

export interface SimulationOptions {
  users: number;
  rounds: number;
  /** Share of sign-ins through the IdP (0..1). */
  idp: number;
  attackers: number;
}

export interface SimulationReport {
  signIns: number;
  decisions: Record<string, number>;
  codesTyped: number;
  codesRefused: number;
  /** The decision of a sign-in (POST /v1/login-events?wait=decision), as the app waits for it. */
  decideP50Ms: number;
  decideP99Ms: number;
  /** Checking a typed code (POST /v1/challenges/{id}/verify). */
  verifyP50Ms: number;
  verifyP99Ms: number;
  attackerCodeGuesses: number;
  attackerCodesAccepted: number;
  attackersStopped: number;
}

const percentile = (sorted: number[], p: number) =>
  sorted.length ? sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))]! : 0;

/**
 * Runs the simulation against an api: registers the three apps, enrolls `users` users, then
 * for each round every user opens a new SSO session and signs in to each app in a random
 * order (the first asks for a code, the others skip), a share of them through the IdP.
 */
export async function simulate(
  target: { baseUrl: string; adminKey: string },
  options: SimulationOptions,
): Promise<SimulationReport> {
  const clients = await registerApps(target, ATLASSIAN_APPS);
  const run = randomBytes(3).toString('hex');
  const users = await Promise.all(
    Array.from({ length: options.users }, async (_, i) => {
      const user = createSimulatedUser(clients, `sim-${run}-${i}`);
      await user.enroll('jira');
      return user;
    }),
  );
  const report: SimulationReport = {
    signIns: 0,
    decisions: {},
    codesTyped: 0,
    codesRefused: 0,
    decideP50Ms: 0,
    decideP99Ms: 0,
    verifyP50Ms: 0,
    verifyP99Ms: 0,
    attackerCodeGuesses: 0,
    attackerCodesAccepted: 0,
    attackersStopped: 0,
  };
  const decideMs: number[] = [];
  const verifyMs: number[] = [];
  for (let round = 0; round < options.rounds; round++) {
    await Promise.all(
      users.map(async (user) => {
        user.ssoToken = newSsoToken();
        const viaIdp = Math.random() < options.idp;
        const apps = ATLASSIAN_APPS.map((a) => a.appId).sort(() => randomInt(3) - 1);
        for (const app of apps) {
          const result = await user.signIn(app, viaIdp ? { method: 'sso', idp: 'okta' } : {});
          decideMs.push(result.timings.decideMs);
          if (result.timings.verifyMs !== undefined) verifyMs.push(result.timings.verifyMs);
          report.signIns++;
          const key = `${result.decision.decision}${'reason' in result.decision ? `/${result.decision.reason}` : ''}`;
          report.decisions[key] = (report.decisions[key] ?? 0) + 1;
          if (result.code) {
            report.codesTyped++;
            if (!result.code.verified) report.codesRefused++;
          }
        }
      }),
    );
  }
  for (let i = 0; i < options.attackers; i++) {
    const attacker = createAttacker(clients);
    const victim = users[randomInt(users.length)]!;
    const guesses = await attacker.guessCodes('jira', victim.username, 2);
    report.attackerCodeGuesses += guesses.codeGuesses;
    report.attackerCodesAccepted += guesses.codesAccepted;
    if (guesses.lastDecision?.startsWith('deny')) report.attackersStopped++;
  }
  for (const list of [decideMs, verifyMs]) list.sort((a, b) => a - b);
  report.decideP50Ms = Math.round(percentile(decideMs, 50));
  report.decideP99Ms = Math.round(percentile(decideMs, 99));
  report.verifyP50Ms = Math.round(percentile(verifyMs, 50));
  report.verifyP99Ms = Math.round(percentile(verifyMs, 99));
  return report;
}

function positive(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('give a whole number');
  return n;
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const program = new Command('simulate')
    .description('simulated Jira, Confluence and Bitbucket users and attackers against the running stack')
    .option('--users <n>', 'users, each enrolled once', positive, 20)
    .option('--rounds <n>', 'SSO sessions per user, each signing in to all three apps', positive, 3)
    .option('--idp <share>', 'share of sessions that sign in through the IdP (0..1)', parseFloat, 0.3)
    .option('--attackers <n>', 'attackers with a stolen password guessing codes', positive, 1)
    .action(async (options: SimulationOptions) => {
      const env = requireEnv(loadCliEnv(), ['TWOFOLD_API_URL', 'TWOFOLD_ADMIN_KEY']);
      const report = await simulate(
        { baseUrl: env.TWOFOLD_API_URL, adminKey: env.TWOFOLD_ADMIN_KEY },
        options,
      );
      process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    });
  await program.parseAsync();
}
