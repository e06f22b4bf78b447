// Whether the compiled services (dist/) match their sources, so a smoke run can use them
// without paying for `tsc -b`, and whether the stack's parts are already listening.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { connect } from 'node:net';
import { join } from 'node:path';

function newestMtimeMs(dir: string): number {
  let newest = 0;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    newest = Math.max(newest, entry.isDirectory() ? newestMtimeMs(path) : statSync(path).mtimeMs);
  }
  return newest;
}

/**
 * True when every workspace (libs/*, services/*) was built after its sources last changed:
 * `tsc -b` rewrites a project's dist/.tsbuildinfo each time it rebuilds that project.
 * Returns the stale workspaces otherwise.
 */
export function staleWorkspaces(root: string): string[] {
  const stale: string[] = [];
  for (const group of ['libs', 'services']) {
    for (const name of readdirSync(join(root, group))) {
      const dir = join(root, group, name);
      if (!existsSync(join(dir, 'src'))) continue;
      const info = join(dir, 'dist', '.tsbuildinfo');
      const built = existsSync(info) ? statSync(info).mtimeMs : 0;
      const changed = Math.max(newestMtimeMs(join(dir, 'src')), statSync(join(dir, 'package.json')).mtimeMs);
      if (changed > built) stale.push(`${group}/${name}`);
    }
  }
  return stale;
}

/** Whether something accepts TCP connections on 127.0.0.1:port. */
export function portOpen(port: number, timeoutMs = 1_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    const done = (open: boolean) => {
      socket.destroy();
      resolve(open);
    };
    socket.setTimeout(timeoutMs, () => done(false));
    socket.once('connect', () => done(true));
    socket.once('error', () => done(false));
  });
}
