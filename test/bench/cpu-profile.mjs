/**
 * Preloaded with `--import` (NODE_OPTIONS, which refuses --cpu-prof in Node 20) into a process
 * a benchmark runs: records a V8 CPU profile from start to exit and writes it to
 * $MF_BENCH_CPU_PROFILE (open it in Chrome DevTools or speedscope).
 */
import { writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';

const file = process.env.MF_BENCH_CPU_PROFILE;
if (file) {
  const session = new Session();
  session.connect();
  session.post('Profiler.enable');
  // 1 ms rather than V8's 1 µs default: runs of minutes stay small.
  session.post('Profiler.setSamplingInterval', { interval: 1000 });
  session.post('Profiler.start');
  // A same-thread inspector session answers synchronously, so this works in 'exit'.
  process.on('exit', () => {
    session.post('Profiler.stop', (err, result) => {
      if (!err) writeFileSync(file, JSON.stringify(result.profile));
    });
  });
}
