import { Command, Option } from 'commander';
import type { CliContext } from './context.js';
import { CliError } from './settings.js';

// Usernames as CONTRACT.md normalizes them (NFKC, trimmed, lower-cased).
const normalizeUsername = (raw: string) => raw.normalize('NFKC').trim().toLowerCase();

const grouped = (secret: string) => secret.match(/.{1,4}/g)?.join(' ') ?? secret;

async function explain(err: unknown, username: string): Promise<never> {
  const { VerificationError } = await import('@twofold/verification');
  if (err instanceof VerificationError) {
    if (err.code === 'conflict' && /already has an authenticator/.test(err.message)) {
      throw new CliError(`${err.message}: twofold user reset ${username}`);
    }
    throw new CliError(err.message, err.code === 'malformed' ? 2 : 1);
  }
  throw err;
}

/** `twofold user enroll|reset`: set up or reset a user's authenticator. */
export function userCommand(ctx: CliContext): Command {
  const user = new Command('user').description(
    "a user's authenticator: enroll (QR code in the terminal) and reset",
  );

  user
    .command('enroll')
    .description('enroll a user: shows the QR code here, then confirms with the code their app shows')
    .argument('<username>', 'the user to enroll')
    .option('--code <code>', 'the current code (otherwise asked for)')
    .option(
      '--secret-stdin',
      "import the user's existing authenticator key, read from standard input (not echoed on a terminal)",
    )
    .addOption(
      new Option(
        '--secret <base32>',
        'the same with the key as an argument: other users see it in `ps`, and it stays in shell history; prefer --secret-stdin',
      ).conflicts('secretStdin'),
    )
    .addOption(new Option('--algorithm <name>', 'TOTP hash').choices(['SHA1', 'SHA256', 'SHA512']))
    .addOption(new Option('--digits <n>', 'code length').choices(['6', '8']))
    .option('--json', 'print the backup codes as JSON')
    .addHelpText(
      'after',
      `
Importing a key: pipe it in rather than pass it as an argument, which other users of the
machine can read from the process list:
  pass show totp/alice | twofold user enroll alice --secret-stdin --code 123456
Without --code, the code is asked for next (or read from the next line of piped input).`,
    )
    .action(
      async (
        rawUsername: string,
        options: {
          code?: string;
          secret?: string;
          secretStdin?: boolean;
          algorithm?: string;
          digits?: string;
          json?: boolean;
        },
      ) => {
        const username = normalizeUsername(rawUsername);
        if (!username) throw new CliError('the username is empty', 2);
        const params = {
          ...(options.algorithm ? { algorithm: options.algorithm } : {}),
          ...(options.digits ? { digits: Number(options.digits) } : {}),
        };
        // Loaded on use: the CLI starts fast for every other command.
        const [{ withEnrollmentService }, { renderQrTerminal }] = await Promise.all([
          import('./services.js'),
          import('@twofold/otp'),
        ]);
        // Read before connecting anything, so a missing key fails fast.
        const secret = options.secretStdin
          ? await ctx.promptSecret(`Authenticator key of ${username} (base32): `)
          : options.secret;
        if (options.secretStdin && !secret)
          throw new CliError('the key read from standard input is empty', 2);
        const done = await withEnrollmentService(ctx.env, async (service) => {
          if (secret) {
            const code = options.code ?? (await ctx.prompt(`Code the app shows now for ${username}: `));
            const imported = await service
              .importKey({ username, secret, code, ...params })
              .catch((err: unknown) => explain(err, username));
            if (!imported)
              throw new CliError('that code does not match the key; check the key and the device clock');
            return imported;
          }
          const started = await service
            .start({ username, appId: null, ...params })
            .catch((err: unknown) => explain(err, username));
          ctx.io.out(`Scan this QR code with ${username}'s authenticator app:\n`);
          ctx.io.out(await renderQrTerminal(started.otpauthUri));
          ctx.io.out(`Or add it by hand: key ${grouped(started.secret)} (account ${username}, time-based)`);
          if (ctx.env['TWOFOLD_PUBLIC_URL']) {
            ctx.io.out(
              `Or open ${ctx.env['TWOFOLD_PUBLIC_URL'].replace(/\/+$/, '')}/enroll/${started.enrollmentId}`,
            );
          }
          ctx.io.out('');
          for (let attempt = 1; ; attempt++) {
            const code = options.code ?? (await ctx.prompt('Code the app shows now: '));
            const confirmed = await service
              .confirm(started.enrollmentId, code)
              .catch((err: unknown) => explain(err, username));
            if (confirmed) return confirmed;
            if (options.code || attempt >= 3) {
              throw new CliError('that code is not right; check the device clock and run the command again');
            }
            ctx.io.err('That code is not right; check the device clock and type the code shown now.');
          }
        });
        if (options.json) return ctx.io.out(JSON.stringify(done, null, 2));
        ctx.io.out(
          `${done.username} is enrolled. Backup codes (each works once; give them to the user now, they are not shown again):`,
        );
        ctx.io.out(done.backupCodes.map((code) => `  ${code}`).join('\n'));
      },
    );

  user
    .command('reset')
    .description("remove a user's authenticator (lost phone); they enroll again at their next sign-in")
    .argument('<username>', 'the user')
    .action(async (username: string) => {
      await ctx.admin('DELETE', `/v1/admin/users/${encodeURIComponent(username)}/enrollment`);
      ctx.io.out(
        `reset the authenticator of ${normalizeUsername(username)}; they enroll again at their next sign-in`,
      );
    });
  return user;
}
