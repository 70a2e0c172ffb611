/**
 * `meterflow run`: long-running components until SIGTERM, with metrics and health probes.
 */
import { getHeapStatistics } from 'node:v8';
import { startMetricsServer } from '../lib/metrics.js';
import type { Component } from '../lib/component.js';
import { errorMessage, MeterflowError } from '../lib/errors.js';
import * as processors from '../processors/index.js';
import { bootstrap, untilSignal } from './bootstrap.js';
import { parse, type Command } from './args.js';

const COMPONENTS = ['producers', 'processors', 'sinks', 'all'] as const;
/** MB: the heap limit that keeps a process under 512 MB (the image's NODE_OPTIONS). */
const HEAP_ADVICE_MB = 384;
type ComponentName = (typeof COMPONENTS)[number];

export const runCommand: Command = {
  summary: 'run producers, processors, sinks, or all of them, until SIGTERM',
  help: `Usage: meterflow run <producers|processors|sinks|all> [options]

Runs the components in this process until SIGINT/SIGTERM, then drains: in-flight batches are
committed, consumers leave their groups. Run more processes to scale out (consumer groups).

Options:
  --stages <list>       processors to run (default: ${processors.STAGE_NAMES.join(',')})
  --connections <dir>   folder of connection files (default: MF_CONNECTIONS_DIR or ./connections);
                        producers read a connection's file again before each sync and publish it
                        to the connections topic; processors apply the versions on that topic and
                        need no files (a missing folder is fine for \`run processors|sinks\`)
  --metrics-port <n>    /metrics, /healthz, /readyz on 127.0.0.1 (default: MF_METRICS_PORT or 9464; 0 = off)`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      stages: { type: 'string' },
      connections: { type: 'string' },
      'metrics-port': { type: 'string' },
    });
    const what = (positionals[0] ?? '') as ComponentName;
    if (!COMPONENTS.includes(what))
      throw new MeterflowError('CLI_USAGE', `run needs one of ${COMPONENTS.join(', ')}`);
    const stages = (values.stages?.split(',').map((s) => s.trim()) ?? [
      ...processors.STAGE_NAMES,
    ]) as processors.StageName[];
    const unknown = stages.filter((s) => !processors.STAGE_NAMES.includes(s));
    if (unknown.length > 0) throw new MeterflowError('CLI_USAGE', `unknown stage(s): ${unknown.join(', ')}`);

    const rt = await bootstrap({
      ...(values.connections ? { connectionsDir: values.connections } : {}),
      // Processors apply the connections topic (files, when there are any, are a fallback);
      // sinks use no connections. Only producers need the folder.
      optionalConnections: what === 'processors' || what === 'sinks',
    });
    const stops: (() => Promise<void>)[] = [];
    let ready = false;
    let exitCode = 0;
    const port =
      values['metrics-port'] !== undefined ? Number(values['metrics-port']) : rt.config.metricsPort;
    if (port > 0) {
      const server = await startMetricsServer(port, { ready: () => ready }, rt.config.metricsHost);
      stops.push(() => new Promise((r) => server.close(() => r())));
    }
    try {
      const connections = [...rt.connections.values()];
      // Every component the same way: created from its configuration and the shared runtime,
      // serving before the next one starts, stopped (drained) in reverse order. The sink and the
      // producers are loaded only when asked for.
      const failures: Promise<Error>[] = [];
      const start = async (component: Component): Promise<void> => {
        stops.unshift(() => component.stop());
        if (component.failed) failures.push(component.failed);
        await component.start();
        await component.ready;
      };
      if (what === 'processors' || what === 'all') {
        await start(processors.create({ stages, connections }, rt));
      }
      if (what === 'sinks' || what === 'all') {
        const clickhouse = await import('../sinks/clickhouse/index.js');
        await start(clickhouse.create({}, rt));
      }
      if (what === 'producers' || what === 'all') {
        const producers = await import('../producers/index.js');
        // Each sync reads its file again: a fixed file takes effect without a restart.
        const connectionsDir = values.connections ?? rt.config.connectionsDir;
        await start(producers.create({ connections, connectionsDir }, rt));
      }
      ready = true;
      rt.log.info({ components: what, stages }, 'running');
      // V8 sizes its heap from the machine: on a large host it lets garbage pass 512 MB before it
      // collects (test/bench/pipeline-e2e.ts --heap default). The image sets 384 MB.
      const heapMb = Math.round(getHeapStatistics().heap_size_limit / 1024 / 1024);
      if (heapMb > 512)
        rt.log.warn(
          { event: 'run.heap_unbounded', heapLimitMb: heapMb },
          `V8 may let this process grow to ${heapMb} MB; set NODE_OPTIONS=--max-old-space-size=${HEAP_ADVICE_MB} to stay under 512 MB, as the image does`,
        );
      const ended = await Promise.race([
        untilSignal().then((signal) => ({ signal, failure: null })),
        ...failures.map((p) => p.then((failure) => ({ signal: null, failure }))),
      ]);
      if (ended.failure) {
        rt.log.fatal(
          { err: errorMessage(ended.failure) },
          'a component stopped for good; draining and exiting',
        );
        exitCode = 1;
      } else rt.log.info({ signal: ended.signal }, 'draining');
    } finally {
      ready = false;
      for (const stop of stops) await stop();
    }
    return exitCode;
  },
};
