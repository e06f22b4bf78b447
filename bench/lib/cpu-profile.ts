// Where a process spends its CPU, from a V8 .cpuprofile (node --cpu-prof): self time per
// function and per package, so the report can say where the time goes from a profile.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

interface ProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number };
  hitCount?: number;
  children?: number[];
}
interface CpuProfile {
  nodes: ProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface ProfileSummary {
  file: string;
  /** Sampled CPU time (ms), idle excluded. */
  busyMs: number;
  idleMs: number;
  /** Share of busy time (%) per package or area: node_modules/<pkg>, libs/<x>, services/<x>, node internals, GC. */
  byArea: { area: string; pct: number }[];
  /**
   * Share of busy time per package, native and node-internal work charged to the nearest
   * package up the stack (a socket write issued by ioredis counts for ioredis): who causes it.
   */
  byCaller: { area: string; pct: number }[];
  /** Functions with the most self time (% of busy). */
  top: { fn: string; where: string; pct: number }[];
}

function areaOf(url: string, name: string): string {
  if (name === '(garbage collector)') return 'GC';
  if (name === '(program)') return 'V8/native (program)';
  if (!url) return name.startsWith('(') ? name : 'native';
  if (url.startsWith('node:')) return `node:${url.slice(5).split('/')[0]}`;
  const modules = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(url);
  if (modules) return modules[1]!;
  const own = /\/(libs|services|bench|test|tools)\/([^/]+)/.exec(url);
  if (own) return `${own[1]}/${own[2]}`;
  return url.replace(/^file:\/\//, '');
}

export function summarizeProfile(path: string, topN = 15): ProfileSummary {
  const profile = JSON.parse(readFileSync(path, 'utf8')) as CpuProfile;
  const byId = new Map(profile.nodes.map((n) => [n.id, n]));
  const self = new Map<number, number>();
  if (profile.samples && profile.timeDeltas) {
    profile.samples.forEach((id, i) => self.set(id, (self.get(id) ?? 0) + (profile.timeDeltas![i] ?? 0)));
  } else {
    const interval =
      (profile.endTime - profile.startTime) /
      Math.max(
        1,
        profile.nodes.reduce((s, n) => s + (n.hitCount ?? 0), 0),
      );
    for (const n of profile.nodes) self.set(n.id, (n.hitCount ?? 0) * interval);
  }
  const parent = new Map<number, number>();
  for (const n of profile.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
  const isPlumbing = (area: string) =>
    area === 'native' || area.startsWith('node:') || area === 'V8/native (program)';
  const callerArea = (id: number): string => {
    for (let cur: number | undefined = id; cur !== undefined; cur = parent.get(cur)) {
      const { url, functionName } = byId.get(cur)!.callFrame;
      const area = areaOf(url, functionName);
      if (!isPlumbing(area)) return area;
    }
    return areaOf(byId.get(id)!.callFrame.url, byId.get(id)!.callFrame.functionName);
  };
  const callers = new Map<string, number>();
  let idle = 0;
  let busy = 0;
  const areas = new Map<string, number>();
  const fns = new Map<string, { fn: string; where: string; us: number }>();
  for (const [id, us] of self) {
    const node = byId.get(id)!;
    const { functionName, url, lineNumber } = node.callFrame;
    if (functionName === '(idle)') {
      idle += us;
      continue;
    }
    busy += us;
    const area = areaOf(url, functionName);
    areas.set(area, (areas.get(area) ?? 0) + us);
    const caller = isPlumbing(area) ? callerArea(id) : area;
    callers.set(caller, (callers.get(caller) ?? 0) + us);
    const where = url ? `${areaOf(url, functionName)}:${url.split('/').pop()}:${lineNumber + 1}` : area;
    const key = `${functionName}@${where}`;
    const entry = fns.get(key) ?? { fn: functionName || '(anonymous)', where, us: 0 };
    entry.us += us;
    fns.set(key, entry);
  }
  const pct = (us: number) => Math.round((us / Math.max(busy, 1)) * 1000) / 10;
  return {
    file: path,
    busyMs: Math.round(busy / 1000),
    idleMs: Math.round(idle / 1000),
    byArea: [...areas]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([area, us]) => ({ area, pct: pct(us) })),
    byCaller: [...callers]
      .sort((a, b) => b[1] - a[1])
      .slice(0, topN)
      .map(([area, us]) => ({ area, pct: pct(us) })),
    top: [...fns.values()]
      .sort((a, b) => b.us - a.us)
      .slice(0, topN)
      .map((f) => ({ fn: f.fn, where: f.where, pct: pct(f.us) })),
  };
}

/** Summaries of every .cpuprofile in a directory (one per process that exited there). */
export function summarizeProfiles(dir: string, topN = 15): ProfileSummary[] {
  return readdirSync(dir)
    .filter((f) => f.endsWith('.cpuprofile'))
    .map((f) => summarizeProfile(join(dir, f), topN));
}
