// The progress line of `npm run bench`: which step of how many, what it is doing, time spent.
// On a terminal it rewrites one line; in a log (CI) it prints a line per change and a
// heartbeat every 15 s.

const started = Date.now();
let total = 0;
let index = 0;
let step = '';
let detail = '';
let stepStarted = Date.now();
let timer: NodeJS.Timeout | undefined;
let lastPrinted = 0;
const tty = process.stderr.isTTY === true;

const clock = (ms: number) => {
  const s = Math.round(ms / 1000);
  return s >= 60 ? `${Math.floor(s / 60)}m${String(s % 60).padStart(2, '0')}s` : `${s}s`;
};

function line(): string {
  const position = total ? `${index}/${total} ` : '';
  const what = detail ? `${step} · ${detail}` : step;
  return `[bench ${clock(Date.now() - started)}] ${position}${what} (${clock(Date.now() - stepStarted)})`;
}

function print(force = false): void {
  if (tty) {
    const width = process.stderr.columns ?? 120;
    process.stderr.write(`\r\x1b[K${line().slice(0, width - 1)}`);
  } else if (force || Date.now() - lastPrinted > 15_000) {
    process.stderr.write(`${line()}\n`);
    lastPrinted = Date.now();
  }
}

export const progress = {
  /** Sets how many steps the run has. */
  plan(steps: number): void {
    total = steps;
    timer ??= setInterval(() => print(), tty ? 500 : 1_000);
    timer.unref();
  },
  /** Starts the next step. */
  step(label: string): void {
    index++;
    step = label;
    detail = '';
    stepStarted = Date.now();
    print(true);
  },
  /** What the current step is doing now (benchmarks call this between their phases). */
  note(text: string): void {
    if (text === detail) return;
    detail = text;
    print(!tty);
  },
  /** A line that stays (a result, a warning), printed above the progress line. */
  log(text: string): void {
    if (tty) process.stderr.write('\r\x1b[K');
    process.stderr.write(`${text}\n`);
    print(true);
  },
  done(): void {
    if (timer) clearInterval(timer);
    timer = undefined;
    if (tty) process.stderr.write('\r\x1b[K');
  },
};
