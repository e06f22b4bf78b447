// What the benchmarks learn about processes: CPU time used (Linux /proc), free ports, pids.
import { readFileSync, readdirSync } from 'node:fs';
import { createServer } from 'node:net';

const CLOCK_TICKS = 100;

/** CPU time (user + system, ms) a process has used so far, from /proc (Linux); NaN elsewhere. */
export function cpuMs(pid: number | undefined): number {
  if (pid === undefined) return Number.NaN;
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

/** CPU time (ms) of a process and of its children that exited and were reaped (cutime + cstime). */
export function cpuMsWithReaped(pid: number): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]!.split(' ');
    return (
      ((Number(fields[11]) + Number(fields[12]) + Number(fields[13]) + Number(fields[14])) * 1000) /
      CLOCK_TICKS
    );
  } catch {
    return Number.NaN;
  }
}

/**
 * CPU time (ms) of every process whose command line contains `needle` (e.g. every Postgres
 * backend), counting children that already exited through their parent (a closed Postgres
 * backend's time moves to the postmaster), so the sum does not drop between two samples.
 */
export function cpuMsOfAll(needle: string): number {
  let total = 0;
  for (const pid of pidsOf(needle)) {
    const ms = cpuMsWithReaped(pid);
    if (Number.isFinite(ms)) total += ms;
  }
  return total;
}

/** Pids of the processes whose command line contains `needle` (read only, to attribute CPU). */
export function pidsOf(needle: string): number[] {
  const pids: number[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      if (readFileSync(`/proc/${entry}/cmdline`, 'utf8').replaceAll('\0', ' ').includes(needle))
        pids.push(Number(entry));
    } catch {
      // gone
    }
  }
  return pids;
}

/** Whole-machine CPU time (ms) spent busy and in total, from /proc/stat. */
export function machineCpuMs(): { busy: number; total: number } {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0]!;
  const values = line.trim().split(/\s+/).slice(1).map(Number);
  const total = values.reduce((a, b) => a + b, 0);
  const idle = (values[3] ?? 0) + (values[4] ?? 0);
  return { busy: ((total - idle) * 1000) / CLOCK_TICKS, total: (total * 1000) / CLOCK_TICKS };
}

export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      server.close(() => resolve(typeof address === 'object' && address ? address.port : 0));
    });
  });
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
