// The README's configuration table is the operators' list of every variable: it must name
// each variable a service's config.ts declares, the services that use it, and its default as
// the service parses it. The specs are imported, not copied, so a variable added to (or
// dropped from) a service without the README fails here.
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { readEnv, type ValidatorSpec } from '@twofold/config';
import { beforeAll, describe, expect, it } from 'vitest';
import { ROOT } from './tools.js';

type Spec = Record<string, ValidatorSpec<unknown>>;

/**
 * Shared variables (commonEnvSpec) a service declares but does not use, with the property of
 * its config that would carry it: the README leaves the service out of the row, and the test
 * checks the service's code still never reads that property.
 */
const UNUSED: Record<string, Record<string, string>> = {
  api: {
    TWOFOLD_GROUP_PREFIX: 'groupPrefix', // it joins no consumer group
    METRICS_PORT: 'metricsPort', // /healthz, /readyz, /metrics are on API_PORT
    METRICS_HOST: 'metricsHost',
  },
  'lockout-detector': { DATABASE_POOL_SIZE: 'poolSize' }, // a fixed pool of 2
  'session-broadcaster': { DATABASE_POOL_SIZE: 'poolSize' },
};
/** Read by @twofold/telemetry/register (every container's --import), not by a config.ts. */
const TELEMETRY_ENV = ['OTEL_SERVICE_NAME', 'OTEL_EXPORTER_OTLP_ENDPOINT'];

interface Row {
  name: string;
  services: string;
  default: string;
}

/** The rows of the table under `## Configuration`. */
function readmeRows(): Row[] {
  const readme = readFileSync(join(ROOT, 'README.md'), 'utf8');
  const section = readme.slice(readme.indexOf('\n## Configuration\n'));
  const table = section
    .slice(0, section.indexOf('\n## ', 1) === -1 ? undefined : section.indexOf('\n## ', 1))
    .split('\n')
    .filter((line) => line.startsWith('|'));
  return table.slice(2).map((line) => {
    const cells = line
      .slice(1, -1)
      .split('|')
      .map((cell) => cell.trim());
    return { name: cells[0]!, services: cells[1]!, default: cells[2]! };
  });
}

/** Non-test TypeScript under services/<service>/src. */
function sources(service: string): string {
  const dir = join(ROOT, 'services', service, 'src');
  return readdirSync(dir, { recursive: true, encoding: 'utf8' })
    .filter((f) => f.endsWith('.ts') && !f.endsWith('.test.ts'))
    .map((f) => readFileSync(join(dir, f), 'utf8'))
    .join('\n');
}

const specs = new Map<string, Spec>();
let rows: Row[] = [];

beforeAll(async () => {
  for (const service of readdirSync(join(ROOT, 'services')).sort()) {
    const file = join(ROOT, 'services', service, 'src/config.ts');
    if (!existsSync(file)) continue;
    const mod = (await import(pathToFileURL(file).href)) as Record<string, unknown>;
    const found = Object.entries(mod).filter(([name]) => name.endsWith('EnvSpec'));
    if (found.length !== 1) throw new Error(`${file}: expected one exported *EnvSpec, found ${found.length}`);
    specs.set(service, found[0]![1] as Spec);
  }
  rows = readmeRows();
});

/** The services a README cell names: `all`, `all but a, b` or `a, b`. */
function servicesOf(cell: string): string[] {
  const all = [...specs.keys()];
  const list = (text: string) => text.split(',').map((s) => s.trim());
  const named = cell === 'all' ? [] : list(cell.replace(/^all but /, ''));
  const unknown = named.filter((s) => !all.includes(s));
  if (unknown.length) throw new Error(`unknown service(s) ${unknown.join(', ')} in "${cell}"`);
  if (cell === 'all') return all;
  if (cell.startsWith('all but ')) return all.filter((s) => !named.includes(s));
  return all.filter((s) => named.includes(s));
}

describe('README configuration table', () => {
  it('has one row per variable, each named in backticks', () => {
    expect(rows.length).toBeGreaterThan(0);
    const names = rows.map((r) => r.name);
    for (const name of names) expect(name).toMatch(/^`[A-Z][A-Z0-9_]*`$/);
    expect(
      names.filter((n, i) => names.indexOf(n) !== i),
      'listed twice',
    ).toEqual([]);
  });

  it('lists every variable a service declares, with the services that use it', () => {
    const expected = new Map<string, string[]>();
    for (const [service, spec] of specs) {
      for (const name of Object.keys(spec)) {
        if (UNUSED[service]?.[name]) continue;
        expected.set(name, [...(expected.get(name) ?? []), service]);
      }
    }
    const documented = new Map(rows.map((r) => [r.name.slice(1, -1), r]));
    const missing = [...expected.keys()].filter((name) => !documented.has(name));
    expect(missing, 'declared by a service but not in the README').toEqual([]);
    for (const [name, services] of expected) {
      expect(servicesOf(documented.get(name)!.services), `${name}: services`).toEqual(services.sort());
    }
    const unknown = [...documented.keys()].filter(
      (name) => !expected.has(name) && !TELEMETRY_ENV.includes(name),
    );
    expect(unknown, 'in the README but declared by no service').toEqual([]);
  });

  it('leaves out only services that really do not use a shared variable', () => {
    for (const [service, unused] of Object.entries(UNUSED)) {
      const code = sources(service);
      for (const [name, property] of Object.entries(unused)) {
        expect(Object.keys(specs.get(service) ?? {}), `${service} declares ${name}`).toContain(name);
        expect(
          new RegExp(`\\b${property}\\b`).test(code),
          `services/${service}/src reads ${property} (${name}) now: list ${service} in the README row and drop it from UNUSED`,
        ).toBe(false);
      }
    }
  });

  it('gives each default as the service parses it', () => {
    for (const row of rows) {
      const name = row.name.slice(1, -1);
      const service = [...specs.keys()].find((s) => name in specs.get(s)!);
      if (!service) continue; // telemetry variables
      const spec = { [name]: specs.get(service)![name]! };
      const fallback = spec[name]!.default;
      if (fallback === undefined) {
        expect(row.default, name).toBe('— (required)');
      } else if (fallback === '') {
        expect(row.default, name).toBe('empty');
      } else {
        const value = /^`([^`]+)`$/.exec(row.default)?.[1];
        expect(value, `${name}: default in backticks`).toBeDefined();
        expect(readEnv(spec, { [name]: value }), `${name}: README default`).toEqual(readEnv(spec, {}));
      }
    }
  });

  it('lists the telemetry variables that @twofold/telemetry/register reads', () => {
    const register = readFileSync(join(ROOT, 'libs/telemetry/src/register.ts'), 'utf8');
    for (const name of TELEMETRY_ENV) {
      expect(register, name).toContain(`'${name}'`);
      expect(
        rows.find((r) => r.name === `\`${name}\``),
        name,
      ).toMatchObject({ services: 'all' });
    }
  });
});
