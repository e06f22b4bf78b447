// The `twofold` CLI where there is no checkout: the image runs `node bin/twofold.mjs keys
// rotate` (docs/operations.md) with production dependencies only (`npm ci --omit=dev`: no
// tsx) and no TypeScript sources. Without a Docker engine this builds the compiled CLI
// (tools/cli/dist) the way the image does, lays out a tree like the image's (bin/, the
// compiled JavaScript, node_modules without the lockfile's dev packages) and runs it there;
// and it checks that the Dockerfile and its build context carry those parts.
import { execFile } from 'node:child_process';
import { builtinModules } from 'node:module';
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, relative } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './tools.js';

const run = promisify(execFile);
const CLI_DIST = join(ROOT, 'tools/cli/dist');
const BUILD_TIMEOUT = 300_000;

interface Outcome {
  code: number;
  stdout: string;
  stderr: string;
}

/** `node [nodeArgs] bin/twofold.mjs args` in `cwd`, with a clean environment plus `env`. */
async function twofold(
  cwd: string,
  args: string[],
  env: Record<string, string> = {},
  nodeArgs: string[] = [],
): Promise<Outcome> {
  const base = {
    PATH: process.env['PATH'] ?? '',
    HOME: process.env['HOME'] ?? '/tmp',
    // Not the checkout's .twofold/local.env unless a test asks for the tree's own (''): the
    // image has none.
    TWOFOLD_ENV_FILE: '/dev/null',
  };
  const merged: Record<string, string> = { ...base, ...env };
  if (merged['TWOFOLD_ENV_FILE'] === '') delete merged['TWOFOLD_ENV_FILE'];
  try {
    const { stdout, stderr } = await run(process.execPath, [...nodeArgs, 'bin/twofold.mjs', ...args], {
      cwd,
      env: merged,
      timeout: 60_000,
    });
    return { code: 0, stdout, stderr };
  } catch (err) {
    const e = err as { code?: number; stdout?: string; stderr?: string; message: string };
    return {
      code: typeof e.code === 'number' ? e.code : -1,
      stdout: e.stdout ?? '',
      stderr: e.stderr ?? e.message,
    };
  }
}

/** Every .js file under `dir`. */
function jsFiles(dir: string): string[] {
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.js'))
    .map((f) => join(dir, f));
}

/** The module specifiers a compiled ES module imports (static, re-exports, literal dynamic imports). */
function importsOf(code: string): string[] {
  const found = new Set<string>();
  for (const pattern of [
    /^\s*(?:import|export)\s[^'";]*?\bfrom\s*['"]([^'"]+)['"]/gm,
    /^\s*import\s*['"]([^'"]+)['"]/gm,
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g,
  ]) {
    for (const match of code.matchAll(pattern)) found.add(match[1]!);
  }
  return [...found];
}

const packageName = (specifier: string) =>
  specifier.startsWith('@') ? specifier.split('/').slice(0, 2).join('/') : specifier.split('/')[0]!;

interface LockPackage {
  dev?: boolean;
  link?: boolean;
  resolved?: string;
}

/**
 * A tree like the image's /app: package.json, bin/, the compiled CLI (JavaScript only) and a
 * node_modules holding what `npm ci --omit=dev` installs — the lockfile's top-level packages
 * that are not dev-only (symlinked; the workspace links point at libs/* and services/*).
 * Run node with --preserve-symlinks there, so every package resolves its own imports inside
 * this tree and not in the checkout's full node_modules.
 */
function imageLikeTree(): string {
  const dir = mkdtempSync(join(tmpdir(), 'twofold-cli-image-'));
  cpSync(join(ROOT, 'package.json'), join(dir, 'package.json'));
  cpSync(join(ROOT, 'bin'), join(dir, 'bin'), { recursive: true });
  for (const file of jsFiles(CLI_DIST)) {
    const target = join(dir, 'tools/cli/dist', relative(CLI_DIST, file));
    mkdirSync(dirname(target), { recursive: true });
    cpSync(file, target);
  }
  const lock = JSON.parse(readFileSync(join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, LockPackage>;
  };
  for (const [path, entry] of Object.entries(lock.packages)) {
    const name = path.slice('node_modules/'.length);
    if (!path.startsWith('node_modules/') || name.includes('/node_modules/') || entry.dev) continue;
    const source = entry.link ? join(ROOT, entry.resolved!) : join(ROOT, path);
    if (!existsSync(source)) continue; // an optional package for another platform
    mkdirSync(dirname(join(dir, path)), { recursive: true });
    symlinkSync(source, join(dir, path));
  }
  return dir;
}

let tree = '';

beforeAll(async () => {
  // What `npm run build` (and the image's build stage) compiles for the CLI: tools/cli and the
  // libraries it references, each into its dist/.
  await run('npx', ['tsc', '-b', 'tools/cli'], { cwd: ROOT, timeout: BUILD_TIMEOUT });
  tree = imageLikeTree();
}, BUILD_TIMEOUT);

afterAll(() => {
  if (tree) rmSync(tree, { recursive: true, force: true });
});

describe('the compiled CLI', () => {
  it('is part of `npm run build`: the root solution references tools/cli, which emits tools/cli/dist', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      scripts: Record<string, string>;
    };
    expect(pkg.scripts['build']).toBe('tsc -b');
    /** Every project `tsc -b` at the root builds: its references, followed. */
    const reached = new Set<string>();
    const visit = (project: string) => {
      if (reached.has(project)) return;
      reached.add(project);
      const config = JSON.parse(readFileSync(join(ROOT, project, 'tsconfig.json'), 'utf8')) as {
        references?: { path: string }[];
      };
      for (const ref of config.references ?? []) visit(relative(ROOT, join(ROOT, project, ref.path)) || '.');
    };
    visit('.');
    expect([...reached]).toContain('tools/cli');
    expect(existsSync(join(CLI_DIST, 'main.js'))).toBe(true);
    expect(existsSync(join(CLI_DIST, 'audit-verify.js'))).toBe(true);
  });

  it('imports at run time only node built-ins, workspace libraries and the root package.json dependencies', () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as {
      dependencies?: Record<string, string>;
      devDependencies?: Record<string, string>;
    };
    const workspaces = ['libs', 'services'].flatMap((group) =>
      readdirSync(join(ROOT, group))
        .filter((name) => existsSync(join(ROOT, group, name, 'package.json')))
        .map(
          (name) =>
            (JSON.parse(readFileSync(join(ROOT, group, name, 'package.json'), 'utf8')) as { name: string })
              .name,
        ),
    );
    const builtins = new Set(builtinModules.flatMap((m) => [m, `node:${m}`]));
    const misplaced: string[] = [];
    let external = 0;
    for (const file of jsFiles(CLI_DIST)) {
      for (const specifier of importsOf(readFileSync(file, 'utf8'))) {
        if (specifier.startsWith('.') || builtins.has(specifier)) continue;
        external++;
        const name = packageName(specifier);
        if (workspaces.includes(name) || pkg.dependencies?.[name]) continue;
        misplaced.push(
          `${relative(ROOT, file)} imports ${specifier}: ${
            pkg.devDependencies?.[name] ? 'a devDependency (not installed in the image)' : 'not a dependency'
          }`,
        );
      }
    }
    expect(external, 'the import scan found the CLI imports').toBeGreaterThan(0);
    expect(misplaced).toEqual([]);
  });

  it('runs with production dependencies only, without tsx or sources (as in the image)', async () => {
    expect(existsSync(join(tree, 'node_modules/tsx')), 'tsx is a devDependency').toBe(false);
    expect(existsSync(join(tree, 'tools/cli/main.ts'))).toBe(false);
    const opts = ['--preserve-symlinks'];
    const help = await twofold(tree, ['--help'], {}, opts);
    expect(help.stderr).toBe('');
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/^Usage: twofold/);
    for (const command of ['keys', 'user', 'app', 'policy', 'lockouts', 'audit', 'migrate'])
      expect(help.stdout).toContain(command);

    const keys = await twofold(tree, ['keys', '--help'], {}, opts);
    expect(keys.code, keys.stderr).toBe(0);
    expect(keys.stdout).toContain('rotate');

    // audit verify loads its module (and @twofold/store, pg) on demand.
    const audit = await twofold(tree, ['audit', 'verify', '--help'], {}, opts);
    expect(audit.code, audit.stderr).toBe(0);
    expect(audit.stdout).toContain('usage: twofold audit verify');

    // A usage error still exits 2 with commander's message.
    const bad = await twofold(tree, ['no-such-command'], {}, opts);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("unknown command 'no-such-command'");
  });

  it('reads the database settings from the environment and reaches Postgres (audit verify)', async () => {
    // The local stack's Postgres, as the api pod's DATABASE_URL would point at its own.
    const localEnv = readFileSync(join(ROOT, '.twofold/local.env'), 'utf8');
    const databaseUrl = /^DATABASE_URL=(.*)$/m.exec(localEnv)?.[1];
    expect(databaseUrl).toBeTruthy();
    const today = new Date().toISOString().slice(0, 10);
    const verify = await twofold(
      tree,
      ['audit', 'verify', '--from', today, '--to', today],
      { DATABASE_URL: databaseUrl! },
      ['--preserve-symlinks'],
    );
    expect(verify.code, verify.stderr).toBe(0);
    expect(verify.stdout).toMatch(/audit trail intact/);

    // The compiled CLI finds the tree's own .twofold/local.env (tools/cli/dist/../../..), as
    // the sources find the checkout's (tools/cli/../..).
    mkdirSync(join(tree, '.twofold'), { recursive: true });
    writeFileSync(join(tree, '.twofold/local.env'), `DATABASE_URL=${databaseUrl!}\n`);
    const fromFile = await twofold(
      tree,
      ['audit', 'verify', '--from', today, '--to', today],
      {
        TWOFOLD_ENV_FILE: '',
      },
      ['--preserve-symlinks'],
    );
    expect(fromFile.code, fromFile.stderr).toBe(0);
    expect(fromFile.stdout).toMatch(/audit trail intact/);
  });

  it('in the checkout still runs from source with tsx, and TWOFOLD_CLI_COMPILED=1 runs the compiled one', async () => {
    // A checkout that was never built: sources, no tools/cli/dist.
    const checkout = mkdtempSync(join(tmpdir(), 'twofold-cli-checkout-'));
    try {
      cpSync(join(ROOT, 'package.json'), join(checkout, 'package.json'));
      cpSync(join(ROOT, 'bin'), join(checkout, 'bin'), { recursive: true });
      mkdirSync(join(checkout, 'tools/cli'), { recursive: true });
      for (const file of readdirSync(join(ROOT, 'tools/cli')).filter((f) => f.endsWith('.ts')))
        cpSync(join(ROOT, 'tools/cli', file), join(checkout, 'tools/cli', file));
      symlinkSync(join(ROOT, 'node_modules'), join(checkout, 'node_modules'));

      const fromSource = await twofold(checkout, ['keys', '--help']);
      expect(fromSource.code, fromSource.stderr).toBe(0);
      expect(fromSource.stdout).toContain('rotate');

      const forced = await twofold(checkout, ['--help'], { TWOFOLD_CLI_COMPILED: '1' });
      expect(forced.code).toBe(1);
      expect(forced.stderr).toContain('npm run build');
    } finally {
      rmSync(checkout, { recursive: true, force: true });
    }
    const compiled = await twofold(ROOT, ['keys', '--help'], { TWOFOLD_CLI_COMPILED: '1' });
    expect(compiled.code, compiled.stderr).toBe(0);
    expect(compiled.stdout).toContain('rotate');
  });
});

/**
 * Whether `path` is sent to the Docker build: .dockerignore patterns, the last match wins, a
 * pattern matching a parent directory matches the path (Docker's MatchesOrParentMatches), `!`
 * re-includes. Enough of Docker's syntax for this file: `*`, `**` and literal segments.
 */
function inBuildContext(path: string, patterns: string[]): boolean {
  const toRegExp = (pattern: string) =>
    new RegExp(
      `^${pattern
        .split('/')
        .map((segment) =>
          segment === '**'
            ? '(?:.*)'
            : segment
                .replace(/[.+^${}()|[\]\\]/g, '\\$&')
                .replace(/\*/g, '[^/]*')
                .replace(/\?/g, '[^/]'),
        )
        .join('/')
        .replace(/\(\?:\.\*\)\//g, '(?:.*/)?')}$`,
    );
  const parts = path.split('/');
  const candidates = parts.map((_, i) => parts.slice(0, i + 1).join('/'));
  let included = true;
  for (const raw of patterns) {
    const negated = raw.startsWith('!');
    const regex = toRegExp(negated ? raw.slice(1) : raw);
    if (candidates.some((candidate) => regex.test(candidate))) included = negated;
  }
  return included;
}

describe('the image carries the CLI', () => {
  const dockerfile = readFileSync(join(ROOT, 'deploy/docker/Dockerfile'), 'utf8').replace(/\\\n/g, ' ');
  const ignore = readFileSync(join(ROOT, '.dockerignore'), 'utf8')
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l && !l.startsWith('#'));

  it('compiles tools/cli and copies bin/ and its JavaScript into the runtime tree', () => {
    expect(dockerfile).toMatch(/^RUN npx tsc -b [^\n]*\btools\/cli\b/m);
    expect(dockerfile).toMatch(/cp -r bin \/out\//);
    expect(dockerfile).toMatch(/cd tools\/cli && find dist [^\n]*'\*\.js'[^\n]*\/out\/tools\/cli\//);
    expect(dockerfile).toContain('npm ci --omit=dev');
  });

  it('sends the CLI sources to the build, but no build output, tests or other tools', () => {
    const sent = (path: string) => inBuildContext(path, ignore);
    expect(sent('bin/twofold.mjs')).toBe(true);
    expect(sent('tools/cli/main.ts')).toBe(true);
    expect(sent('tools/cli/tsconfig.json')).toBe(true);
    expect(sent('tsconfig.base.json')).toBe(true);
    expect(sent('libs/config/src/index.ts')).toBe(true);
    expect(sent('tools/cli/dist/main.js')).toBe(false);
    expect(sent('tools/cli/main.test.ts')).toBe(false);
    expect(sent('tools/demo.ts')).toBe(false);
    expect(sent('tools/simulator/main.ts')).toBe(false);
    expect(sent('libs/config/dist/index.js')).toBe(false);
    expect(sent('node_modules/commander/package.json')).toBe(false);
    expect(sent('.twofold/local.env')).toBe(false);
  });
});
