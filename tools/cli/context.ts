import { createInterface, type Interface } from 'node:readline/promises';
import { Writable } from 'node:stream';
import { createAdminClient, type AdminClient } from './admin-client.js';
import type { CliIo } from './output.js';
import { CliError, type CliEnv } from './settings.js';

/** What every command gets: its environment, where to write, and lazy clients. */
export interface CliContext {
  env: CliEnv;
  io: CliIo;
  /** The admin API client (TWOFOLD_API_URL, TWOFOLD_ADMIN_KEY), made on first use. */
  admin: AdminClient;
  /** Asks on the terminal (or reads the next line of piped stdin). */
  prompt(question: string): Promise<string>;
  /** Like prompt, but a terminal does not echo what is typed (for a secret). */
  promptSecret(question: string): Promise<string>;
  /** Lets go of stdin, so the process can end. */
  close(): void;
}

export function createCliContext(env: CliEnv, io: CliIo): CliContext {
  let admin: AdminClient | undefined;
  let piped: Interface | undefined;
  let lines: AsyncIterator<string> | undefined;
  // Piped input: one line per question, whichever kind.
  const nextPipedLine = async (question: string) => {
    process.stderr.write(question);
    piped ??= createInterface({ input: process.stdin });
    lines ??= piped[Symbol.asyncIterator]();
    const next = await lines.next();
    if (next.done) throw new CliError('no answer on standard input');
    process.stderr.write('\n');
    return next.value.trim();
  };
  return {
    env,
    io,
    admin: (method, path, body) => (admin ??= createAdminClient(env))(method, path, body),
    async prompt(question) {
      if (!process.stdin.isTTY) return nextPipedLine(question);
      return askTerminal(question, { output: process.stderr });
    },
    async promptSecret(question) {
      if (!process.stdin.isTTY) return nextPipedLine(question);
      // Raw mode (terminal: true) with the echo going nowhere; the question still shows.
      process.stderr.write(question);
      const discard = new Writable({ write: (_chunk, _encoding, done) => done() });
      const answer = await askTerminal('', { output: discard, terminal: true });
      process.stderr.write('\n');
      return answer;
    },
    close() {
      piped?.close();
      process.stdin.destroy();
    },
  };
}

async function askTerminal(
  question: string,
  options: { output: NodeJS.WritableStream; terminal?: boolean },
): Promise<string> {
  const rl = createInterface({ input: process.stdin, ...options });
  try {
    return (await rl.question(question)).trim();
  } finally {
    rl.close();
  }
}
