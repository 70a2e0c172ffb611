/**
 * `meterflow run`: long-running components until SIGTERM, with metrics and health probes.
 */
import { startMetricsServer } from '../lib/metrics.js';
import { MeterflowError } from '../lib/errors.js';
import { STAGE_NAMES, startProcessors, type StageName } from '../processors/index.js';
import { bootstrap, untilSignal } from './bootstrap.js';
import { parse, type Command } from './args.js';

const COMPONENTS = ['producers', 'processors', 'sinks', 'all'] as const;
type Component = (typeof COMPONENTS)[number];

export const runCommand: Command = {
  summary: 'run producers, processors, sinks, or all of them, until SIGTERM',
  help: `Usage: meterflow run <producers|processors|sinks|all> [options]

Runs the components in this process until SIGINT/SIGTERM, then drains: in-flight batches are
committed, consumers leave their groups. Run more processes to scale out (consumer groups).

Options:
  --stages <list>       processors to run (default: ${STAGE_NAMES.join(',')})
  --connections <dir>   folder of connection files (default: MF_CONNECTIONS_DIR or ./connections)
  --metrics-port <n>    /metrics, /healthz, /readyz on 127.0.0.1 (default: MF_METRICS_PORT or 9464; 0 = off)`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      stages: { type: 'string' },
      connections: { type: 'string' },
      'metrics-port': { type: 'string' },
    });
    const what = (positionals[0] ?? '') as Component;
    if (!COMPONENTS.includes(what))
      throw new MeterflowError('CLI_USAGE', `run needs one of ${COMPONENTS.join(', ')}`);
    const stages = (values.stages?.split(',').map((s) => s.trim()) ?? [...STAGE_NAMES]) as StageName[];
    const unknown = stages.filter((s) => !STAGE_NAMES.includes(s));
    if (unknown.length > 0) throw new MeterflowError('CLI_USAGE', `unknown stage(s): ${unknown.join(', ')}`);

    const rt = await bootstrap(values.connections ? { connectionsDir: values.connections } : {});
    const stops: (() => Promise<void>)[] = [];
    let ready = false;
    const port =
      values['metrics-port'] !== undefined ? Number(values['metrics-port']) : rt.config.metricsPort;
    if (port > 0) {
      const server = await startMetricsServer(port, { ready: () => ready }, rt.config.metricsHost);
      stops.push(() => new Promise((r) => server.close(() => r())));
    }
    try {
      if (what === 'processors' || what === 'all') {
        const p = await startProcessors(rt, stages);
        stops.unshift(() => p.stop());
        await p.ready;
      }
      if (what === 'sinks' || what === 'all') {
        const { createClickHouseSink } = await import('../sinks/clickhouse/index.js');
        const sink = createClickHouseSink(rt.config, { log: rt.log, kafka: rt.kafka, registry: rt.registry });
        await sink.start();
        stops.unshift(() => sink.stop());
      }
      if (what === 'producers' || what === 'all') {
        const { createProducers } = await import('../producers/index.js');
        const producers = createProducers(rt.config, [...rt.connections.values()], {
          log: rt.log,
          kafka: rt.kafka,
          registry: rt.registry,
        });
        await producers.start();
        stops.unshift(() => producers.stop());
      }
      ready = true;
      rt.log.info({ components: what, stages }, 'running');
      const signal = await untilSignal();
      rt.log.info({ signal }, 'draining');
    } finally {
      ready = false;
      for (const stop of stops) await stop();
    }
    return 0;
  },
};
