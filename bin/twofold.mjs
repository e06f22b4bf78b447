#!/usr/bin/env node
// The `twofold` admin CLI. Two ways to run it:
// - From source (a checkout with dev dependencies): tools/cli/main.ts through tsx, the
//   workspace libraries resolved to their TypeScript sources (the twofold-source condition),
//   so an edit needs no build.
// - Compiled: tools/cli/dist/main.js, built by `npm run build` (tsc -b), with the libraries'
//   dist/. This is what runs in the image (`npm ci --omit=dev`: no tsx, no sources), and
//   anywhere with TWOFOLD_CLI_COMPILED=1.
import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const source = fileURLToPath(new URL('../tools/cli/main.ts', import.meta.url));
const compiled = new URL('../tools/cli/dist/main.js', import.meta.url);
const forceCompiled = !['', '0', 'false'].includes(process.env.TWOFOLD_CLI_COMPILED ?? '');

/** tsx's loader, or undefined when it is not installed (production dependencies only). */
function tsxLoader() {
  try {
    return import.meta.resolve('tsx');
  } catch {
    return undefined;
  }
}

const tsx = !forceCompiled && existsSync(source) ? tsxLoader() : undefined;
if (tsx) {
  const child = spawn(
    process.execPath,
    ['--conditions=twofold-source', '--import', tsx, source, ...process.argv.slice(2)],
    { stdio: 'inherit' },
  );
  for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
  child.on('exit', (code, signal) => {
    if (signal) process.kill(process.pid, signal);
    else process.exit(code ?? 1);
  });
} else if (existsSync(fileURLToPath(compiled))) {
  const { runCli } = await import(compiled.href);
  process.exitCode = await runCli(process.argv.slice(2));
} else {
  console.error(
    `twofold: ${fileURLToPath(compiled)} is missing: run \`npm run build\` (tsc -b) to compile the CLI` +
      (forceCompiled || !existsSync(source) ? '' : ', or `npm ci` to run it from source with tsx'),
  );
  process.exit(1);
}
