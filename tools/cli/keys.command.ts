import { Command } from 'commander';
import type { CliContext } from './context.js';

/** `twofold keys rotate`: re-encrypt every TOTP secret under the active master key. */
export function keysCommand(ctx: CliContext): Command {
  const keys = new Command('keys').description('the master keys that encrypt TOTP secrets at rest');
  keys
    .command('rotate')
    .description(
      're-encrypt every stored secret under TWOFOLD_ACTIVE_KEY_ID (safe while services run, and to re-run)',
    )
    .addHelpText(
      'after',
      `
Rotation: add the new key to TWOFOLD_MASTER_KEYS (id:base64, comma-separated), make it
TWOFOLD_ACTIVE_KEY_ID everywhere, run this command, then remove the old key.`,
    )
    .action(async () => {
      const [{ createEnrollmentsRepository }, { rotateSecrets }, { keyRingFrom, withDatabase }] =
        await Promise.all([
          import('@twofold/store'),
          import('@twofold/verification'),
          import('./services.js'),
        ]);
      const keyRing = keyRingFrom(ctx.env);
      const { examined, rotated } = await withDatabase(ctx.env, (pool) =>
        rotateSecrets({ enrollments: createEnrollmentsRepository(pool), keyRing }),
      );
      ctx.io.out(
        `re-encrypted ${rotated} of ${examined} secrets under key ${ctx.env['TWOFOLD_ACTIVE_KEY_ID']}` +
          (rotated < examined ? ` (${examined - rotated} were under it already)` : ''),
      );
    });
  return keys;
}
