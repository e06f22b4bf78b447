import { Command } from 'commander';
import type { CliContext } from './context.js';

/** `twofold audit verify`: delegates to the audit trail's checker (tools/cli/audit-verify.ts). */
export function auditCommand(ctx: CliContext, setExitCode: (code: number) => void): Command {
  const audit = new Command('audit').description('the audit trail in Postgres');
  audit
    .command('verify')
    .description(
      "check the audit trail's hash chains; names the first broken row (options: --from, --to, --topic, --json; --help for more)",
    )
    .helpOption(false)
    .allowUnknownOption()
    .allowExcessArguments()
    .argument('[options...]')
    .action(async (args: string[]) => {
      const { main } = await import('./audit-verify.js');
      setExitCode(await main(args, ctx.env, ctx.io.out, ctx.io.err));
    });
  return audit;
}
