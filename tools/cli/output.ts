/** Where commands write: stdout for results, stderr for messages. Swappable for tests. */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
}

export const processIo: CliIo = {
  out: (text) => process.stdout.write(`${text}\n`),
  err: (text) => process.stderr.write(`${text}\n`),
};

/** What a shell reports for a process that SIGPIPE stopped (128 + 13), as `seq 1 100000 | head -1` does. */
export const CLOSED_PIPE_EXIT_CODE = 141;
const watched = new WeakSet<NodeJS.WriteStream>();

/**
 * When the reader of stdout or stderr goes away (`twofold … | head -1`), exits at once with
 * CLOSED_PIPE_EXIT_CODE and no output, as standard tools do, instead of crashing on an
 * unhandled EPIPE with a stack trace. Other stream errors are thrown as before.
 */
export function exitWhenOutputPipeCloses(): void {
  for (const stream of [process.stdout, process.stderr]) {
    if (watched.has(stream)) continue;
    watched.add(stream);
    stream.on('error', (err: NodeJS.ErrnoException) => {
      if (err.code === 'EPIPE') process.exit(CLOSED_PIPE_EXIT_CODE);
      throw err;
    });
  }
}

/** Rows as aligned columns with a header; empty cells as "-". */
export function formatTable(headers: readonly string[], rows: readonly (readonly unknown[])[]): string {
  const cells = rows.map((row) =>
    row.map((cell) =>
      cell === null || cell === undefined || cell === ''
        ? '-'
        : Array.isArray(cell)
          ? cell.join(', ') || '-'
          : String(cell),
    ),
  );
  const widths = headers.map((h, i) => Math.max(h.length, ...cells.map((row) => row[i]?.length ?? 0)));
  const line = (row: readonly string[]) =>
    row
      .map((cell, i) => cell.padEnd(widths[i]!))
      .join('  ')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...cells.map(line)].join('\n');
}
