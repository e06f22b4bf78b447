// A throwaway Postgres cluster (initdb into a temporary folder, owned by the postgres OS
// user) on a free port, migrated like the stack's, for tests that stop Postgres: never the
// shared one.
import { execFile } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { promisify } from 'node:util';
import { runMigrations } from '@twofold/store';
import { freePort } from '../../support/services.js';

const PG_BIN = '/usr/lib/postgresql/15/bin';
const run = promisify(execFile);

export class PrivatePostgres {
  readonly dir = mkdtempSync('/tmp/twofold-pg-');
  port = 0;

  /** Superuser URL (trust auth on 127.0.0.1) of the `postgres` database. */
  get url(): string {
    return `postgres://postgres@127.0.0.1:${this.port}/postgres`;
  }

  private asPostgres(command: string, args: string[]) {
    return run('runuser', ['-u', 'postgres', '--', `${PG_BIN}/${command}`, ...args], { timeout: 120_000 });
  }

  /** initdb, start, and the twofold schema migrated. */
  async create(schema = 'twofold'): Promise<void> {
    chmodSync(this.dir, 0o777);
    this.port = await freePort();
    await this.asPostgres('initdb', [
      '-D',
      `${this.dir}/data`,
      '-U',
      'postgres',
      '--auth=trust',
      '-E',
      'UTF8',
      '--locale=C.UTF-8',
      '--no-sync',
    ]);
    await this.start();
    await runMigrations({ databaseUrl: this.url, schema });
  }

  start() {
    return this.asPostgres('pg_ctl', [
      '-D',
      `${this.dir}/data`,
      '-l',
      `${this.dir}/postgres.log`,
      '-w',
      '-t',
      '60',
      '-o',
      `-p ${this.port} -k ${this.dir} -c listen_addresses=127.0.0.1 -c max_connections=60 -c shared_buffers=64MB -c fsync=off`,
      'start',
    ]);
  }

  stop(mode: 'fast' | 'immediate' = 'fast') {
    return this.asPostgres('pg_ctl', ['-D', `${this.dir}/data`, '-m', mode, '-w', '-t', '60', 'stop']);
  }

  log(): string {
    try {
      return readFileSync(`${this.dir}/postgres.log`, 'utf8');
    } catch {
      return '';
    }
  }

  async destroy(): Promise<void> {
    await this.stop('immediate').catch(() => undefined);
    rmSync(this.dir, { recursive: true, force: true });
  }
}
