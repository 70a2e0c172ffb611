/**
 * `meterflow demo`: the main job on the provider simulators. Starts an Arcadia, an EnerKey and
 * two generic REST simulators, writes their connection files, runs processors and the ClickHouse
 * sink, backfills every connection, waits until ClickHouse holds the aggregates, prints a
 * report and the queries to look further, and writes the HTML report (`meterflow report`).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { parse as parseYaml, stringify as toYaml } from 'yaml';
import { REPO_ROOT } from '../lib/config.js';
import { MeterflowError } from '../lib/errors.js';
import { connectionSchema, type ConnectionConfig } from '../schemas/connection.js';
import * as processors from '../processors/index.js';
import * as producers from '../producers/index.js';
import * as clickhouse from '../sinks/clickhouse/index.js';
import { startArcadiaSimulator } from '../simulators/arcadia.js';
import { startEnerKeySimulator } from '../simulators/enerkey.js';
import { startGenericJsonSimulator } from '../simulators/generic-json.js';
import { startGenericXmlCsvSimulator } from '../simulators/generic-xml-csv.js';
import { bootstrap } from './bootstrap.js';
import { parse, type Command } from './args.js';
import { waitUntilQuiet } from './quiet.js';
import { writeReport } from './report.js';
import {
  daysCovered,
  intervalCount,
  metersByType,
  quality,
  quarantineCounts,
  totalsByType,
} from './report/queries.js';
import { bar, terminal } from './terminal.js';

const FROM = '2024-03-01';
const DAYS = 61; // March and April 2024: both the EU and the US spring DST change
const TO = '2024-05-01T00:00:00Z';

function example(file: string, patch: (c: Record<string, unknown>) => void): ConnectionConfig {
  const raw = parseYaml(readFileSync(join(REPO_ROOT, 'connections/examples', file), 'utf8')) as Record<
    string,
    unknown
  >;
  patch(raw);
  return connectionSchema.parse(raw);
}

export const demoCommand: Command = {
  summary: 'the main job on provider simulators: sync a demo portfolio into ClickHouse and report',
  help: `Usage: meterflow demo [--meters <n>]

Starts simulators of Arcadia Plug, EnerKey and two generic REST providers on 127.0.0.1, writes
their connection files to .local/demo/connections, runs the processors and the ClickHouse sink in
this process, backfills ${FROM} to ${TO.slice(0, 10)} for every connection, waits until ClickHouse
has the daily and monthly aggregates, prints a report and writes an HTML one (meterflow report)
whose path it prints. Safe to run again: replays converge.
Needs the services: npm run demo starts them first (deploy/local/services up).`,
  async run(argv) {
    const { values } = parse(argv, { meters: { type: 'string', default: '8' } }, false);
    const meters = Number(values.meters);
    if (!Number.isInteger(meters) || meters < 1 || meters > 500)
      throw new MeterflowError('CLI_USAGE', '--meters must be 1..500');
    const started = Date.now();
    const term = terminal();
    const say = (text = '') => term.line(text);
    term.status('starting the provider simulators');

    const arcadia = await startArcadiaSimulator({
      seed: 11,
      credentials: 1,
      sites: Math.max(1, Math.ceil(meters / 2)),
      meters,
      from: FROM,
      days: DAYS,
      activationPolls: 1,
    });
    const enerkey = await startEnerKeySimulator({
      seed: 12,
      facilities: Math.max(1, Math.ceil(meters / 3)),
      metersPerFacility: [2, 4],
      from: FROM,
      days: DAYS,
    });
    const acme = await startGenericJsonSimulator({
      seed: 13,
      sites: Math.max(1, Math.ceil(meters / 3)),
      from: FROM,
      days: DAYS,
    });
    const nordic = await startGenericXmlCsvSimulator({
      seed: 14,
      buildings: Math.max(1, Math.ceil(meters / 3)),
      from: FROM,
      days: DAYS,
      auth: 'oauth2-password',
    });
    const sims = [arcadia, enerkey, acme, nordic];
    const cleanups: (() => Promise<unknown>)[] = [() => Promise.all(sims.map((s) => s.close()))];
    try {
      const fast = {
        timeoutMs: 20_000,
        maxResponseBytes: 16 * 1024 * 1024,
        maxRetries: 6,
        backoffBaseMs: 100,
        backoffMaxMs: 2_000,
      };
      const connections = [
        example('arcadia.yaml', (c) => {
          c.id = 'demo-arcadia';
          c.baseUrls = { production: arcadia.url };
          c.http = fast;
          c.options = {
            ...(c.options as object),
            correlationId: arcadia.truth().credentials.map((x) => x.correlationId),
            activationPollMs: 100,
          };
        }),
        example('enerkey.yaml', (c) => {
          c.id = 'demo-enerkey';
          c.baseUrls = { production: enerkey.url };
          c.http = fast;
          c.auth = {
            type: 'apiKey',
            in: 'header',
            name: 'Authorization',
            keys: [{ valueEnv: 'DEMO_ENERKEY_KEY_1' }, { valueEnv: 'DEMO_ENERKEY_KEY_2' }],
          };
        }),
        example('generic-json-readings.yaml', (c) => {
          c.id = 'demo-acme';
          c.baseUrls = { production: acme.url };
          c.http = fast;
          (c.auth as { keys: { valueEnv: string }[] }).keys = [{ valueEnv: 'DEMO_ACME_API_KEY' }];
        }),
        example('generic-xml-consumption.yaml', (c) => {
          c.id = 'demo-nordic';
          c.baseUrls = { production: nordic.url };
          c.http = fast;
          Object.assign(c.auth as object, {
            clientIdEnv: 'DEMO_NORDIC_CLIENT_ID',
            clientSecretEnv: 'DEMO_NORDIC_CLIENT_SECRET',
            usernameEnv: 'DEMO_NORDIC_USERNAME',
            passwordEnv: 'DEMO_NORDIC_PASSWORD',
          });
        }),
      ];
      const dir = resolve(REPO_ROOT, '.local/demo/connections');
      mkdirSync(dir, { recursive: true });
      for (const c of connections)
        writeFileSync(
          join(dir, `${c.id}.yaml`),
          `# written by meterflow demo; simulator on ${c.baseUrls.production}\n${toYaml(c)}`,
        );
      // The simulators' credentials: handed to the pollers directly, never written to a file.
      const ek = enerkey.truth().apiKeys;
      const env: Record<string, string> = {
        ARCADIA_CLIENT_ID: arcadia.options.clientId,
        ARCADIA_CLIENT_SECRET: arcadia.options.clientSecret,
        DEMO_ENERKEY_KEY_1: ek[0]?.key ?? '',
        DEMO_ENERKEY_KEY_2: ek[1]?.key ?? '',
        DEMO_ACME_API_KEY: acme.apiKey,
        DEMO_NORDIC_CLIENT_ID: nordic.credentials.clientId,
        DEMO_NORDIC_CLIENT_SECRET: nordic.credentials.clientSecret,
        DEMO_NORDIC_USERNAME: nordic.credentials.username,
        DEMO_NORDIC_PASSWORD: nordic.credentials.password,
      };

      term.status('connecting to Kafka, the schema registry and ClickHouse');
      const rt = await bootstrap({ needConnections: false });
      say(
        `meterflow demo: ${connections.length} connections (simulators on 127.0.0.1), ${FROM} to ${TO.slice(0, 10)}`,
      );
      term.status('starting the processors and the ClickHouse sink');
      const processing = processors.create({ connections }, rt);
      cleanups.unshift(() => processing.stop());
      await processing.start();
      const sink = clickhouse.create({}, rt);
      cleanups.unshift(() => sink.stop());
      await sink.start();
      await processing.ready;
      const ch = clickhouse.createChClient(rt.config.clickhouse, {});
      cleanups.unshift(() => ch.close());
      const db = rt.config.clickhouse.database;
      // 1. Backfill every connection, with a progress line.
      const chunks = new Map<string, number>(connections.map((c) => [c.id, 0]));
      const syncing = () =>
        `  syncing: ${[...chunks].map(([k, n]) => `${k.replace('demo-', '')} ${n}`).join(', ')} chunks`;
      term.status(syncing());
      const polling = producers.create(
        { connections },
        {
          ...rt,
          env,
          onEvent: (e) => {
            if (e.name !== 'sync.chunk.committed') return;
            chunks.set(e.connectionId, (chunks.get(e.connectionId) ?? 0) + 1);
            term.status(syncing());
          },
        },
      );
      const runs = await Promise.all(connections.map((c) => polling.runOnce(c.id, { from: FROM, to: TO })));
      term.endStatus(syncing());
      for (const r of runs) {
        say(
          `  ${r.connection_id}: ${r.status}, ${r.entities} entities, ${r.usage_chunks} chunks, ${r.requests} requests, ${r.retries} retries${r.errors ? `, ${r.errors} errors` : ''}`,
        );
      }
      await polling.stop();

      // 2. Wait until the stages and the sink have caught up.
      const admin = rt.kafka.admin();
      await admin.connect();
      try {
        await waitUntilQuiet(
          admin,
          rt.config.kafka.topicPrefix,
          300_000,
          (lag, peak) => term.status(`  processing: ${bar(peak - lag, peak)} ${lag} record(s) to go`),
          rt.kafka,
        );
      } finally {
        await admin.disconnect();
      }
      term.endStatus('  processing: done, every consumer group at the end of its topics');
      term.status('  reading the report from ClickHouse');
      const seconds = (Date.now() - started) / 1000;

      // 3. Report from ClickHouse: the same queries as `meterflow report`.
      const views = { ch, db };
      const byType = await metersByType(views);
      const days = await daysCovered(views);
      const totals = await totalsByType(views);
      const qual = await quality(views);
      const quarantine = await quarantineCounts(views);
      const intervals = await intervalCount(views);
      const html = await writeReport(ch, db);

      term.endStatus();
      say();
      say('Report');
      say(`  meters (active): ${byType.map((r) => `${r.meter_type} ${r.meters}`).join(', ') || 'none'}`);
      say(
        `  days: ${days?.days ?? 0} (${days?.first ?? '-'} .. ${days?.last ?? '-'}), mean daily completeness ${qual?.completeness ?? '-'}, estimated intervals ${qual?.estimated ?? 0}`,
      );
      say('  consumption by meter type (monthly totals summed):');
      for (const t of totals) {
        // Gas is Energy by type but metered by volume: without a calorific value it stays m3.
        const gas = t.meter_type === 'Energy' && t.total_unit === 'm3' ? ' (gas, by volume)' : '';
        say(
          `    ${t.meter_type.padEnd(7)} ${String(t.total).padStart(16)} ${t.total_unit.padEnd(4)} over ${t.months} month(s), from meters in ${t.units}${gas}`,
        );
      }
      say(
        `  quarantined: ${quarantine.length === 0 ? 'none' : quarantine.map((q) => `${q.reason_code} ${q.n}`).join(', ')}`,
      );
      say(
        `  intervals in ClickHouse: ${intervals}, end to end in ${seconds.toFixed(1)} s (${Math.round(intervals / seconds)} intervals/s)`,
      );
      say(`\nLook further (clickhouse-client --port 19000, or HTTP ${rt.config.clickhouse.url}):
  SELECT meter_external_id, period, value, unit, value_canonical, canonical_unit, completeness FROM ${db}.usage_daily_latest WHERE channel = 'consumption' ORDER BY meter_external_id, period LIMIT 20
  npx meterflow status      npx meterflow quarantine list      npx meterflow report`);
      say(`\nHTML report (open it in a browser): ${html.path}`);
      return 0;
    } finally {
      for (const cleanup of cleanups) await cleanup().catch(() => undefined);
    }
  },
};
