import { Command, InvalidArgumentError } from 'commander';
import type { CliContext } from './context.js';
import { formatTable } from './output.js';

interface AppView {
  appId: string;
  name: string;
  webhookUrl: string | null;
  origins: string[];
  createdAt: string;
  key?: string;
}

// CONTRACT.md's appId, checked here so a typo is refused before any request.
const APP_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

export function parseAppId(value: string): string {
  if (!APP_ID.test(value)) {
    throw new InvalidArgumentError(
      'an app id is lower-case letters, digits and dashes, starting with a letter or digit (e.g. jira)',
    );
  }
  return value;
}

function parseOrigin(value: string, previous: string[] = []): string[] {
  let url: URL;
  try {
    url = new URL(value);
  } catch {
    throw new InvalidArgumentError(`"${value}" is not a URL; give an origin like https://jira.example.com`);
  }
  if (!/^https?:$/.test(url.protocol)) throw new InvalidArgumentError(`"${value}" must be http or https`);
  return [...previous, url.origin];
}

/** `twofold app add|list`: register the apps that use twofold. */
export function appCommand(ctx: CliContext): Command {
  const app = new Command('app').description('register and list the apps that use twofold');

  app
    .command('add')
    .description('register an app, or rotate its key if it exists; prints the key once')
    .argument('<appId>', 'the app id, e.g. jira', parseAppId)
    .option('--name <name>', 'display name shown on the hosted pages')
    .option('--origin <url>', 'an origin the hosted pages may send users back to (repeatable)', parseOrigin)
    .option('--webhook-url <url>', 'where session events are delivered (https)')
    .option('--json', 'print the answer as JSON')
    .action(
      async (
        appId: string,
        options: { name?: string; origin?: string[]; webhookUrl?: string; json?: boolean },
      ) => {
        const created = await ctx.admin<AppView>('POST', '/v1/admin/apps', {
          appId,
          ...(options.name ? { name: options.name } : {}),
          ...(options.origin ? { origins: options.origin } : {}),
          ...(options.webhookUrl ? { webhookUrl: options.webhookUrl } : {}),
        });
        if (options.json) return ctx.io.out(JSON.stringify(created, null, 2));
        ctx.io.out(`registered ${created.appId} (${created.name})`);
        if (created.origins.length) ctx.io.out(`origins: ${created.origins.join(', ')}`);
        ctx.io.out(`app key: ${created.key}`);
        ctx.io.err(
          'Store the key now in the app’s configuration: it is not shown again. Registering again rotates it.',
        );
      },
    );

  app
    .command('list')
    .description('list registered apps (keys are never shown)')
    .option('--json', 'print the answer as JSON')
    .action(async (options: { json?: boolean }) => {
      const { apps } = await ctx.admin<{ apps: AppView[] }>('GET', '/v1/admin/apps');
      if (options.json) return ctx.io.out(JSON.stringify(apps, null, 2));
      if (apps.length === 0)
        return ctx.io.out('no apps registered yet; add one with: twofold app add <appId>');
      ctx.io.out(
        formatTable(
          ['app', 'name', 'origins', 'webhook', 'registered'],
          apps.map((a) => [
            a.appId,
            a.name,
            a.origins,
            a.webhookUrl,
            a.createdAt.slice(0, 19).replace('T', ' '),
          ]),
        ),
      );
    });
  return app;
}
