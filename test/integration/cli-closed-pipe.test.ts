// `twofold … | head -1`: when the reader of its output goes away, the CLI stops quietly with
// 141 (what a shell reports for a tool SIGPIPE stopped) instead of an EPIPE stack trace.
import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { describe, expect, it } from 'vitest';
import { REPO_ROOT } from '../support/stack.js';

describe('the CLI writing to a closed pipe', () => {
  it('exits 141 without a stack trace', async () => {
    const child = spawn(process.execPath, [`${REPO_ROOT}bin/twofold.mjs`, '--help'], {
      env: { PATH: process.env['PATH'] ?? '', TWOFOLD_ENV_FILE: '/dev/null' },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    // Closed before the CLI writes: its first write of the help fails with EPIPE.
    child.stdout.destroy();
    let stderr = '';
    child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
    const [code] = (await once(child, 'close')) as [number | null];
    expect(stderr).toBe('');
    expect(code).toBe(141);
  });
});
