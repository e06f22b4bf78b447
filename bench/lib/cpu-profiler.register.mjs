// Loaded into a service process with NODE_OPTIONS="--import <this file>" by the benchmarks
// when a profile is asked for (node refuses --cpu-prof in NODE_OPTIONS). SIGUSR2 starts
// the V8 CPU profiler, the next SIGUSR2 (or the process exiting) writes
// <TWOFOLD_CPU_PROFILE_DIR>/<TWOFOLD_CPU_PROFILE_NAME>-<pid>-<n>.cpuprofile (n = 1, 2, … per
// start/stop pair), so a profile covers a measured phase only.
import { Session } from 'node:inspector';
import { mkdirSync, writeFileSync } from 'node:fs';

const dir = process.env.TWOFOLD_CPU_PROFILE_DIR;
const name = process.env.TWOFOLD_CPU_PROFILE_NAME ?? 'process';
if (dir) {
  const session = new Session();
  session.connect();
  let running = false;
  let seq = 0;
  const stop = () => {
    if (!running) return;
    running = false;
    session.post('Profiler.stop', (err, result) => {
      if (err) return;
      mkdirSync(dir, { recursive: true });
      writeFileSync(`${dir}/${name}-${process.pid}-${++seq}.cpuprofile`, JSON.stringify(result.profile));
    });
  };
  process.on('SIGUSR2', () => {
    if (running) return stop();
    session.post('Profiler.enable', () =>
      session.post('Profiler.setSamplingInterval', { interval: 500 }, () =>
        session.post('Profiler.start', () => (running = true)),
      ),
    );
  });
  process.on('exit', stop);
}
