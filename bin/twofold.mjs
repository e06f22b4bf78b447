#!/usr/bin/env node
// The `twofold` admin CLI. Runs tools/cli/main.ts from source through tsx, resolving the
// workspace libraries to their TypeScript sources (the twofold-source condition).
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';

const main = fileURLToPath(new URL('../tools/cli/main.ts', import.meta.url));
const child = spawn(
  process.execPath,
  ['--conditions=twofold-source', '--import', import.meta.resolve('tsx'), main, ...process.argv.slice(2)],
  { stdio: 'inherit' },
);
for (const signal of ['SIGINT', 'SIGTERM']) process.on(signal, () => child.kill(signal));
child.on('exit', (code, signal) => {
  if (signal) process.kill(process.pid, signal);
  else process.exit(code ?? 1);
});
