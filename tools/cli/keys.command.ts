import { Command } from 'commander';
import type { CliContext } from './context.js';
import { formatTable } from './output.js';
import { CliError } from './settings.js';

const plural = (n: number, one: string, many = `${one}s`) => `${n} ${n === 1 ? one : many}`;

/** `twofold keys rotate`: re-encrypt every TOTP secret under the active master key. */
export function keysCommand(ctx: CliContext): Command {
  const keys = new Command('keys').description('the master keys that encrypt TOTP secrets at rest');
  keys
    .command('rotate')
    .description(
      're-encrypt every stored secret (enrollments and pending ones) under TWOFOLD_ACTIVE_KEY_ID (safe while services run, and to re-run)',
    )
    .addHelpText(
      'after',
      `
Rotation: add the new key to TWOFOLD_MASTER_KEYS (id:base64, comma-separated), make it
TWOFOLD_ACTIVE_KEY_ID everywhere, run this command until it reports "0 left under other
keys", then remove the old key.

Exit codes: 0 when every secret is under the active key; 1 when some are not (written
meanwhile: run again) or some could not be decrypted (listed: reset those users with
\`twofold user reset <username>\`, then run again).`,
    )
    .action(async () => {
      const [{ createEnrollmentsRepository }, { rotateSecrets }, { keyRingFrom, withDatabase }] =
        await Promise.all([
          import('@twofold/store'),
          import('@twofold/verification'),
          import('./services.js'),
        ]);
      const keyRing = keyRingFrom(ctx.env);
      const report = await withDatabase(ctx.env, (pool) =>
        rotateSecrets({ enrollments: createEnrollmentsRepository(pool), keyRing }),
      );
      const notes = [
        report.alreadyActive ? `${report.alreadyActive} under it already` : '',
        report.changedMeanwhile ? `${report.changedMeanwhile} changed meanwhile` : '',
        report.undecryptable.length ? `${report.undecryptable.length} could not be decrypted` : '',
      ].filter(Boolean);
      ctx.io.out(
        `re-encrypted ${report.rotated} of ${plural(report.examined, 'secret')} under key ${keyRing.activeKeyId}` +
          (notes.length ? ` (${notes.join(', ')})` : ''),
      );
      if (report.undecryptable.length) {
        ctx.io.out(`\nCould not decrypt (reset each user: twofold user reset <username>):`);
        ctx.io.out(
          formatTable(
            ['user', 'failure', 'row'],
            report.undecryptable.map((u) => [u.username, u.failure, u.pending ? 'pending' : 'enrollment']),
          ),
        );
        ctx.io.out('');
      }
      const left = Object.entries(report.leftUnderOtherKeys).sort(([a], [b]) => a.localeCompare(b));
      const leftTotal = left.reduce((sum, [, n]) => sum + n, 0);
      ctx.io.out(
        `${leftTotal} left under other keys` +
          (left.length ? `: ${left.map(([id, n]) => `${id} ${n}`).join(', ')}` : ''),
      );
      // Non-zero so that a script does not go on to remove a key something still needs.
      if (report.undecryptable.length) {
        throw new CliError(
          `${plural(report.undecryptable.length, 'secret')} could not be decrypted; reset those users, then run this again`,
        );
      }
      if (leftTotal > 0) {
        throw new CliError(
          `${plural(leftTotal, 'secret')} still under other keys (written while this ran); run this again`,
        );
      }
    });
  return keys;
}
