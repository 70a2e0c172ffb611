/**
 * Reading a provider's usage for a period WITHOUT writing anything: the source side of a
 * reconciliation. Same connector, same HTTP core (auth, paging, retries, budget) as a sync, but
 * the envelopes are returned to the caller instead of going to Kafka, and no watermark moves.
 */
import { randomBytes } from 'node:crypto';
import type { Logger } from '../../lib/log.js';
import { MeterflowError, isMeterflowError, errorMessage } from '../../lib/errors.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { RawEnvelope } from '../../schemas/records.js';
import { createConnector } from '../connectors/index.js';
import type { ConnectorContext } from '../connectors/types.js';
import { chunkRange } from '../http/chunking.js';
import { HttpClient } from '../http/client.js';
import type { Env } from '../http/secrets.js';

export interface SourceUsage {
  entities: RawEnvelope[];
  usage: RawEnvelope[];
  errors: MeterflowError[];
  requests: number;
}

export async function fetchSourceUsage(
  connection: ConnectionConfig,
  deps: { log: Logger; env?: Env; now?: () => number },
  range: { from: number; to: number },
): Promise<SourceUsage> {
  const now = deps.now ?? Date.now;
  const connector = createConnector(connection);
  const http = new HttpClient({
    connection,
    env: deps.env ?? process.env,
    log: deps.log,
    now,
    defaultHeaders: connector.defaultHeaders?.() ?? {},
    ...(connector.onResponse ? { onResponse: connector.onResponse } : {}),
  });
  const runId = `${connection.id}-reconcile-${randomBytes(3).toString('hex')}`;
  const ctx: ConnectorContext = {
    connection,
    http,
    log: deps.log,
    runId,
    signal: new AbortController().signal,
    now,
  };
  const out: SourceUsage = { entities: [], usage: [], errors: [], requests: 0 };
  const record = (e: unknown) =>
    out.errors.push(
      isMeterflowError(e) ? e : new MeterflowError('POLL_HTTP_NETWORK', errorMessage(e), { cause: e }),
    );
  try {
    const snap = await connector.snapshot(ctx, (envs) => {
      out.entities.push(...envs);
      return Promise.resolve();
    });
    snap.errors.forEach(record);
    let meters = snap.meters;
    if (connector.prepareUsage) {
      const prep = await connector.prepareUsage(ctx, meters);
      prep.errors.forEach(record);
      meters = prep.ready;
    }
    for (const stream of connector.usageStreams()) {
      for (let i = 0; i < meters.length; i += stream.batchSize) {
        const batch = meters.slice(i, i + stream.batchSize);
        const chunks = chunkRange(range, stream.maxRangeDays);
        for (let c = 0; c < chunks.length; c++) {
          try {
            out.usage.push(...(await stream.fetch(ctx, batch, chunks[c]!, c)));
          } catch (e) {
            record(e);
            break;
          }
        }
      }
    }
  } finally {
    out.requests = http.stats.requests;
    await http.close();
  }
  return out;
}
