import { Argument, Command } from 'commander';
import type { CliContext } from './context.js';
import { formatTable } from './output.js';

interface LockoutView {
  scope: string;
  key: string;
  mode?: string;
  until?: string | null;
  failures?: number;
  rule?: string;
  [more: string]: unknown;
}

/** `twofold lockouts list|lift`: who is locked out, and lifting a lockout. */
export function lockoutsCommand(ctx: CliContext): Command {
  const lockouts = new Command('lockouts').description('lockouts imposed by the lockout detector');

  lockouts
    .command('list')
    .description('list the lockouts in force')
    .option('--json', 'print the answer as JSON')
    .action(async (options: { json?: boolean }) => {
      const answer = await ctx.admin<LockoutView[] | { lockouts: LockoutView[] }>(
        'GET',
        '/v1/admin/lockouts',
      );
      const list = Array.isArray(answer) ? answer : answer.lockouts;
      if (options.json) return ctx.io.out(JSON.stringify(list, null, 2));
      if (list.length === 0) return ctx.io.out('no lockouts in force');
      ctx.io.out(
        formatTable(
          ['scope', 'key', 'mode', 'until', 'failures', 'rule'],
          list.map((l) => [
            l.scope,
            l.key,
            l.mode,
            l.until === null ? 'until lifted' : l.until,
            l.failures,
            l.rule,
          ]),
        ),
      );
    });

  lockouts
    .command('lift')
    .description('lift a lockout now')
    .addArgument(new Argument('<scope>', 'user, ip or user_ip').choices(['user', 'ip', 'user_ip']))
    .argument('<key>', 'the username, the IP, or user|ip as `lockouts list` shows it')
    .action(async (scope: string, key: string) => {
      const answer = await ctx.admin<{ lifted?: unknown[] } | undefined>(
        'DELETE',
        `/v1/admin/lockouts/${scope}/${encodeURIComponent(key)}`,
      );
      const count = answer?.lifted?.length ?? 1;
      ctx.io.out(`lifted ${count} ${scope} lockout${count === 1 ? '' : 's'} of ${key}`);
    });
  return lockouts;
}
