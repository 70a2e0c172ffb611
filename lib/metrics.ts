/**
 * Every metric meterflow exports, named in one place (Prometheus, prefix meterflow_), and the
 * HTTP endpoint that serves them with /healthz and /readyz.
 */
import { createServer, type Server } from 'node:http';
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export const metricsRegistry = new Registry();
collectDefaultMetrics({ register: metricsRegistry, prefix: 'meterflow_process_' });

export const stageMetrics = {
  recordsIn: new Counter({
    name: 'meterflow_stage_records_in_total',
    help: 'input records processed per stage',
    labelNames: ['stage'],
    registers: [metricsRegistry],
  }),
  recordsOut: new Counter({
    name: 'meterflow_stage_records_out_total',
    help: 'records written per stage (outputs, quarantine, changelog)',
    labelNames: ['stage'],
    registers: [metricsRegistry],
  }),
  quarantined: new Counter({
    name: 'meterflow_quarantined_total',
    help: 'records sent to quarantine',
    labelNames: ['stage', 'reason'],
    registers: [metricsRegistry],
  }),
  registryWaits: new Counter({
    name: 'meterflow_stage_registry_waits_total',
    help: 'batches retried because the schema registry could not answer (down or refusing credentials)',
    labelNames: ['stage'],
    registers: [metricsRegistry],
  }),
  batchSeconds: new Histogram({
    name: 'meterflow_stage_batch_seconds',
    help: 'time to process and commit one batch',
    labelNames: ['stage'],
    buckets: [0.005, 0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metricsRegistry],
  }),
  consumerLag: new Gauge({
    name: 'meterflow_consumer_lag',
    help: 'records behind the high watermark, per assigned partition',
    labelNames: ['group', 'topic', 'partition'],
    registers: [metricsRegistry],
  }),
};

export const pollMetrics = {
  requests: new Counter({
    name: 'meterflow_provider_requests_total',
    help: 'HTTP requests to providers',
    labelNames: ['connection', 'endpoint', 'status'],
    registers: [metricsRegistry],
  }),
  retries: new Counter({
    name: 'meterflow_provider_retries_total',
    help: 'retried provider requests',
    labelNames: ['connection', 'reason'],
    registers: [metricsRegistry],
  }),
  budgetLeft: new Gauge({
    name: 'meterflow_provider_budget_remaining',
    help: 'requests left in the current budget window',
    labelNames: ['connection', 'window'],
    registers: [metricsRegistry],
  }),
  syncRuns: new Counter({
    name: 'meterflow_sync_runs_total',
    help: 'finished sync runs',
    labelNames: ['connection', 'status'],
    registers: [metricsRegistry],
  }),
};

export const sinkMetrics = {
  rowsInserted: new Counter({
    name: 'meterflow_sink_rows_inserted_total',
    help: 'rows acknowledged by ClickHouse',
    labelNames: ['table'],
    registers: [metricsRegistry],
  }),
  insertSeconds: new Histogram({
    name: 'meterflow_sink_insert_seconds',
    help: 'ClickHouse insert latency',
    labelNames: ['table'],
    buckets: [0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [metricsRegistry],
  }),
  insertErrors: new Counter({
    name: 'meterflow_sink_insert_errors_total',
    help: 'failed ClickHouse inserts (retried)',
    labelNames: ['table'],
    registers: [metricsRegistry],
  }),
};

export interface HealthProbe {
  /** Ready = connected and consuming; live = the event loop answers. */
  ready(): boolean;
}

/** Serves /metrics, /healthz and /readyz on 127.0.0.1 unless told otherwise. */
export function startMetricsServer(port: number, probe: HealthProbe, host = '127.0.0.1'): Promise<Server> {
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      metricsRegistry
        .metrics()
        .then((body) => {
          res.writeHead(200, { 'content-type': metricsRegistry.contentType });
          res.end(body);
        })
        .catch((err: unknown) => {
          res.writeHead(500);
          res.end(String(err));
        });
      return;
    }
    if (req.url === '/healthz') {
      res.writeHead(200, { 'content-type': 'text/plain' });
      res.end('ok\n');
      return;
    }
    if (req.url === '/readyz') {
      const ok = probe.ready();
      res.writeHead(ok ? 200 : 503, { 'content-type': 'text/plain' });
      res.end(ok ? 'ready\n' : 'not ready\n');
      return;
    }
    res.writeHead(404);
    res.end();
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}
