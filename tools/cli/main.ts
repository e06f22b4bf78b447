// The `twofold` admin CLI (bin/twofold.mjs runs this file). Admin commands talk to the api
// (TWOFOLD_API_URL, TWOFOLD_ADMIN_KEY); database commands use DATABASE_URL. Defaults come
// from the local stack's .twofold/local.env. Exit codes: 0 done, 1 failed, 2 bad usage, 141
// the reader of the output went away (`twofold … | head -1`).
import { pathToFileURL } from 'node:url';
import { Command, CommanderError } from 'commander';
import { appCommand } from './app.command.js';
import { auditCommand } from './audit.command.js';
import { createCliContext } from './context.js';
import { keysCommand } from './keys.command.js';
import { lockoutsCommand } from './lockouts.command.js';
import { migrateCommand } from './migrate.command.js';
import { exitWhenOutputPipeCloses, processIo, type CliIo } from './output.js';
import { policyCommand } from './policy.command.js';
import { CliError, loadCliEnv, type CliEnv } from './settings.js';
import { userCommand } from './user.command.js';

/** Runs the CLI with `argv` (without node and the script); resolves to the exit code. */
export async function runCli(
  argv: readonly string[],
  env: CliEnv = loadCliEnv(),
  io: CliIo = processIo,
): Promise<number> {
  if (io === processIo) exitWhenOutputPipeCloses();
  let exitCode = 0;
  const ctx = createCliContext(env, io);
  const program = new Command('twofold')
    .description('twofold admin: apps, policy, users, lockouts, audit and keys')
    .configureOutput({ writeOut: (s) => io.out(s.trimEnd()), writeErr: (s) => io.err(s.trimEnd()) })
    .showHelpAfterError('(add --help for usage)')
    .showSuggestionAfterError()
    .exitOverride()
    .addHelpText(
      'after',
      `
Settings: TWOFOLD_API_URL and TWOFOLD_ADMIN_KEY for admin commands; DATABASE_URL (and
DATABASE_SCHEMA) for migrate and keys rotate; user enroll also REDIS_URL, KAFKA_BROKERS (with
KAFKA_SSL* and KAFKA_SASL_* as the services read them) and TWOFOLD_MASTER_KEYS/TWOFOLD_ACTIVE_KEY_ID. Unset ones default from .twofold/local.env.`,
    );
  for (const command of [
    migrateCommand(ctx),
    appCommand(ctx),
    policyCommand(ctx),
    userCommand(ctx),
    lockoutsCommand(ctx),
    auditCommand(ctx, (code) => (exitCode = code)),
    keysCommand(ctx),
  ]) {
    program.addCommand(command);
  }
  // Every level: usage errors exit 2 with the error and a pointer to --help; a group without
  // its subcommand prints its help.
  const configure = (command: Command) => {
    command
      .exitOverride()
      .showHelpAfterError('(add --help for usage)')
      .configureOutput(program.configureOutput());
    for (const sub of command.commands) configure(sub);
  };
  configure(program);

  try {
    await program.parseAsync([...argv], { from: 'user' });
    return exitCode;
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : 2; // commander printed why
    if (err instanceof CliError) {
      io.err(`twofold: ${err.message}`);
      return err.exitCode;
    }
    io.err(`twofold: ${(err as Error).message ?? String(err)}`);
    return 1;
  } finally {
    ctx.close();
  }
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  process.exitCode = await runCli(process.argv.slice(2));
}
