// `npm run demo` (deploy/local/demo.sh brings the stack up first): the story of twofold in a
// few lines, against the running local stack, through the app SDK as real apps would call it.
// Every run uses fresh usernames, so it can run again and again.
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { createPool } from '@twofold/store';
import { loadCliEnv, requireEnv } from './cli/settings.js';
import {
  ATLASSIAN_APPS,
  createAttacker,
  createSimulatedUser,
  newSsoToken,
  registerApps,
  type SignInResult,
} from './simulator/simulator.js';

const tty = process.stdout.isTTY;
const paint = (code: number) => (text: string) => (tty ? `\u001b[${code}m${text}\u001b[0m` : text);
const bold = paint(1);
const dim = paint(2);
const green = paint(32);
const red = paint(31);
const yellow = paint(33);
const say = (text = '') => process.stdout.write(`${text}\n`);
const ok = (text: string) => say(`   ${green('✓')} ${text}`);
const no = (text: string) => say(`   ${red('✗')} ${text}`);
const note = (text: string) => say(`   ${yellow('!')} ${text}`);

const decided = (r: SignInResult) =>
  `${r.decision.decision}${'reason' in r.decision ? ` (${r.decision.reason})` : ''}`;

async function until<T>(check: () => Promise<T | undefined>, timeoutMs: number): Promise<T | undefined> {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    const value = await check().catch(() => undefined);
    if (value !== undefined) return value;
    await sleep(100);
  }
  return undefined;
}

const env = loadCliEnv();
const settings = requireEnv(env, ['TWOFOLD_API_URL', 'TWOFOLD_ADMIN_KEY', 'DATABASE_URL']);
const publicUrl = (env['TWOFOLD_PUBLIC_URL'] ?? settings.TWOFOLD_API_URL).replace(/\/+$/, '');
const target = { baseUrl: settings.TWOFOLD_API_URL, adminKey: settings.TWOFOLD_ADMIN_KEY, publicUrl };
const run = randomBytes(2).toString('hex');
const started = new Date();
const names = { alice: `alice-${run}`, bob: `bob-${run}`, carol: `carol-${run}`, dave: `dave-${run}` };
let failed = false;

say(bold('twofold — one second factor for every app behind one sign-on'));
say(dim(`api ${settings.TWOFOLD_API_URL} · run ${run} (fresh users each run)`));
say();

// 1. Apps.
const clients = await registerApps(target, ATLASSIAN_APPS);
say(bold(`1. ${ATLASSIAN_APPS.map((a) => a.name).join(', ')} register with twofold`));
ok(`each got an app key (twofold app add <id>); events and codes are accepted only as that app`);

// 2. Enrollment.
const alice = createSimulatedUser(clients, names.alice, { ip: '198.51.100.23' });
const { backupCodes } = await alice.enroll('jira');
say(bold(`2. ${names.alice} enrolls once`));
ok(
  `scanned the QR code (one TOTP secret for every app), confirmed with a code, got ${backupCodes.length} backup codes`,
);

// 3. First app: asked.
say(bold(`3. ${names.alice} signs in to Jira with her password`));
const jira = await alice.signIn('jira');
if (jira.decision.decision === 'challenge' && jira.code?.verified) {
  ok(`asked for a code: ${decided(jira)}; typed the one her phone shows → verified`);
} else {
  failed = true;
  no(
    `expected a challenge she passes; got ${decided(jira)}${jira.code ? `, code ${JSON.stringify(jira.code)}` : ''}`,
  );
}

// 4. Same SSO session in the other apps: not asked.
say(bold(`4. Same SSO session: ${names.alice} opens Confluence and Bitbucket`));
const t0 = Date.now();
const known = await until(async () => {
  const status = await clients['confluence']!.sessionStatus(alice.ssoToken);
  return status.verified ? status : undefined;
}, 10_000);
if (known)
  ok(
    `Confluence knew the session was verified ${Date.now() - t0} ms after the code (verified in ${known.appId})`,
  );
for (const app of ['confluence', 'bitbucket']) {
  const result = await alice.signIn(app, { typeCode: false });
  if (result.decision.decision === 'skip') ok(`${app}: not asked — ${decided(result)}`);
  else {
    failed = true;
    no(`${app}: asked again — ${decided(result)} (is the session broadcaster running? npm run stack:status)`);
  }
}

// 5. IdP login.
say(bold(`5. ${names.bob} signs in to Confluence through the company IdP (Okta)`));
const bob = createSimulatedUser(clients, names.bob, { ip: '198.51.100.41' });
await bob.enroll('confluence');
const idp = await bob.signIn('confluence', { method: 'sso', idp: 'okta' });
if (idp.decision.decision === 'skip') ok(`not asked — ${decided(idp)}; a local password login would be`);
else {
  failed = true;
  no(`asked — ${decided(idp)}`);
}

// 6. Attack: the password is stolen, the codes are guessed.
const attackerIp = `203.0.113.${10 + (randomBytes(1)[0]! % 200)}`;
say(bold(`6. An attacker from ${attackerIp} has ${names.alice}'s password and guesses codes`));
const attacker = createAttacker(clients, { ip: attackerIp });
const guesses = await attacker.guessCodes('jira', names.alice, 1);
if (guesses.codesAccepted === 0) {
  ok(
    `${guesses.codeGuesses} guessed codes, none accepted (the challenge ended: ${guesses.lastRefusal ?? 'spent'})`,
  );
} else {
  failed = true;
  no(`a guessed code was accepted`);
}
const stopped = await until(async () => {
  const again = await clients['jira']!.decide({
    username: names.alice,
    ssoToken: newSsoToken(),
    ip: attackerIp,
  });
  return again.decision === 'deny' ? again : undefined;
}, 15_000);
if (stopped) {
  const until =
    'lockedUntil' in stopped && stopped.lockedUntil ? ` until ${stopped.lockedUntil.slice(11, 19)} UTC` : '';
  ok(`the attacker's next sign-in from ${attackerIp}: deny (locked)${until}`);
} else {
  note(`the attacker was not locked out within 15 s (is the lockout detector running? npm run stack:status)`);
}
alice.ssoToken = newSsoToken(); // a new day, a new SSO session
const victim = await alice.signIn('jira');
if (victim.decision.decision === 'challenge' && victim.code?.verified) {
  ok(`${names.alice} from her own network still gets in: ${decided(victim)} → verified`);
} else {
  failed = true;
  no(
    `${names.alice} from her own network: ${decided(victim)}${victim.code ? `, code ${JSON.stringify(victim.code)}` : ''}`,
  );
}

// 7. Audit.
say(bold('7. The audit database counted every step'));
const pool = createPool({ url: settings.DATABASE_URL, schema: env['DATABASE_SCHEMA'] ?? 'twofold', max: 1 });
try {
  const users = [names.alice, names.bob];
  const count = async () =>
    (
      await pool.query<{ type: string; n: string }>(
        `SELECT type, count(*) AS n FROM audit_events
          WHERE username = ANY($1) AND occurred_at >= $2 GROUP BY type ORDER BY type`,
        [users, started],
      )
    ).rows;
  // The sink writes in batches: wait until the count stops growing.
  let rows = await count();
  for (let i = 0; i < 30; i++) {
    await sleep(500);
    const next = await count();
    const total = (r: typeof rows) => r.reduce((sum, row) => sum + Number(row.n), 0);
    if (total(next) === total(rows) && total(next) > 0 && i >= 3) break;
    rows = next;
  }
  const total = rows.reduce((sum, row) => sum + Number(row.n), 0);
  if (total > 0) {
    ok(`${total} events of ${users.join(' and ')} in audit_events, for analysts to query with SQL:`);
    for (const row of rows) say(dim(`       ${row.n.padStart(4)}  ${row.type}`));
  } else {
    note('no audit rows yet (is the audit sink running? npm run stack:status)');
  }
} finally {
  await pool.end();
}

// 8. By hand.
say(bold('8. Try the hosted pages yourself'));
const carol = await clients['jira']!.startEnrollment(names.carol);
say(`   enroll ${names.carol} with your phone (15 min):`);
say(`     ${clients['jira']!.enrollmentUrl(carol.enrollmentId)}`);
const dave = createSimulatedUser(clients, names.dave, { ip: '198.51.100.77' });
await dave.enroll('jira');
const daveLogin = await dave.signIn('jira', { typeCode: false });
if (daveLogin.decision.decision === 'challenge') {
  say(
    `   the 2FA prompt of ${names.dave} (5 min; his key is ${dave.secret}, so \`oathtool --totp -b ${dave.secret}\` prints the code):`,
  );
  say(`     ${clients['jira']!.challengeUrl(daveLogin.decision.challengeId!)}`);
}
say(`   OpenAPI: ${publicUrl}/docs · admin CLI: npx twofold --help`);
say();
say(dim('The stack keeps running; npm run stack:down stops it.'));
if (failed) process.exitCode = 1;
