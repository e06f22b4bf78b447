import { existsSync, readFileSync } from 'node:fs';
import { basename, dirname } from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The repository root (or /app in the image): tools/cli/../.. from the sources, and
 * tools/cli/dist/../../.. from the compiled CLI that bin/twofold.mjs runs without tsx.
 */
export const REPO_ROOT = fileURLToPath(
  new URL(
    basename(dirname(fileURLToPath(import.meta.url))) === 'dist' ? '../../..' : '../..',
    import.meta.url,
  ),
);

/** What went wrong, said for a person; `exitCode` 2 is a usage error, 1 a failure. */
export class CliError extends Error {
  constructor(
    message: string,
    readonly exitCode = 1,
  ) {
    super(message);
    this.name = 'CliError';
  }
}

export type CliEnv = Readonly<Record<string, string | undefined>>;

/**
 * The environment the commands read: process.env, with defaults from the local stack's
 * `.twofold/local.env` for what is not set (so `twofold …` works right after `npm run
 * stack:up`; in production every variable comes from the environment).
 */
export function loadCliEnv(env: NodeJS.ProcessEnv = process.env): CliEnv {
  const file = env['TWOFOLD_ENV_FILE'] ?? `${REPO_ROOT}.twofold/local.env`;
  const merged: Record<string, string | undefined> = {};
  if (existsSync(file)) {
    for (const line of readFileSync(file, 'utf8').split('\n')) {
      const match = /^([A-Z0-9_]+)=(.*)$/.exec(line.trim());
      if (match) merged[match[1]!] = match[2]!;
    }
  }
  for (const [name, value] of Object.entries(env))
    if (value !== undefined && value !== '') merged[name] = value;
  merged['TWOFOLD_API_URL'] ??= 'http://127.0.0.1:8080';
  return merged;
}

/** The variables a command needs, or one error naming every missing one. */
export function requireEnv<const N extends string>(env: CliEnv, names: readonly N[]): Record<N, string> {
  const missing = names.filter((name) => !env[name]);
  if (missing.length > 0) {
    throw new CliError(
      `set ${missing.join(', ')} (or run \`npm run stack:up\`, which writes them to .twofold/local.env)`,
    );
  }
  return Object.fromEntries(names.map((name) => [name, env[name]!])) as Record<N, string>;
}
