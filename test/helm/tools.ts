// Shared by the chart and compose tests: builds the tools with deploy/tools/install-tools.sh
// (cached in .cache/tools) and runs them.
import { execFile } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { parseAllDocuments } from 'yaml';

const run = promisify(execFile);

export const ROOT = fileURLToPath(new URL('../..', import.meta.url));
export const CHART = join(ROOT, 'helm/twofold');
/** The Kubernetes version the manifests are validated against (the newest kubectl-validate embeds). */
export const KUBE_VERSION = '1.30';
/** A cold build takes minutes; a warm one, milliseconds. */
export const TOOL_BUILD_TIMEOUT = 1_500_000;

/** Builds (or finds) the named tools and returns NAME → path. */
export async function ensureTools(...names: string[]): Promise<Record<string, string>> {
  try {
    const { stdout } = await run('bash', [join(ROOT, 'deploy/tools/install-tools.sh'), ...names], {
      cwd: ROOT,
      maxBuffer: 16 * 1024 * 1024,
    });
    return Object.fromEntries(
      stdout
        .split('\n')
        .filter((line) => line.includes('='))
        .map((line) => [line.slice(0, line.indexOf('=')), line.slice(line.indexOf('=') + 1)]),
    );
  } catch (err) {
    const e = err as { stderr?: string; message: string };
    throw new Error(`deploy/tools/install-tools.sh ${names.join(' ')} failed:\n${e.stderr ?? e.message}`, {
      cause: err,
    });
  }
}

export interface Outcome {
  ok: boolean;
  stdout: string;
  stderr: string;
}

/** Runs a command and returns its outcome instead of throwing on a non-zero exit. */
export async function attempt(file: string, args: string[], env: NodeJS.ProcessEnv = {}): Promise<Outcome> {
  try {
    const { stdout, stderr } = await run(file, args, {
      cwd: ROOT,
      maxBuffer: 64 * 1024 * 1024,
      env: { ...process.env, ...env },
    });
    return { ok: true, stdout, stderr };
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    return { ok: false, stdout: e.stdout ?? '', stderr: e.stderr ?? e.message };
  }
}

/** `helm template` of the chart as release twofold in namespace twofold, for KUBE_VERSION. */
export function renderChart(helm: string, valuesFiles: string[], set: string[] = []): Promise<Outcome> {
  const args = [
    'template',
    'twofold',
    CHART,
    '--namespace',
    'twofold',
    '--kube-version',
    `${KUBE_VERSION}.0`,
  ];
  for (const file of valuesFiles) args.push('--values', file);
  for (const s of set) args.push('--set', s);
  return attempt(helm, args);
}

/** A Kubernetes object as rendered. */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  data?: Record<string, string>;
  [key: string]: unknown;
}

export function parseManifests(text: string): Manifest[] {
  return parseAllDocuments(text)
    .map((doc) => {
      if (doc.errors.length > 0) throw new Error(`rendered YAML does not parse: ${doc.errors[0]?.message}`);
      return doc.toJS() as Manifest | null;
    })
    .filter((m): m is Manifest => m !== null && typeof m === 'object');
}

/** Writes content to a fresh temporary file and returns its path. */
export function tempFile(name: string, content: string): string {
  const path = join(mkdtempSync(join(tmpdir(), 'twofold-helm-')), name);
  writeFileSync(path, content);
  return path;
}
