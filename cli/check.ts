/**
 * `meterflow check [--connection ID] [--probe]`: is a connection file right, before a sync?
 *
 * Offline, every file of the connections folder goes through the loader's own checks and every
 * problem is printed with its file, field and what is valid (all files, not the first bad one).
 * With --probe each valid connection is asked for the FIRST PAGE of each endpoint (and usage of
 * two meters per usage kind over a short range) through the connector's own fetch code, and the
 * answers go through the processors' own pure chain (normalise, validate, readings): the mapped
 * records are shown, and every row the stream would quarantine with its reason code. Nothing is
 * written to Kafka, no watermark moves, and no activation is requested from the provider.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { randomBytes } from 'node:crypto';
import { loadConfig } from '../lib/config.js';
import { errorMessage, isMeterflowError, MeterflowError } from '../lib/errors.js';
import { createLogger, type Logger } from '../lib/log.js';
import { parseFileText } from '../lib/parse-file.js';
import type { ConnectionConfig } from '../schemas/connection.js';
import type { Asset, Meter, RawEnvelope } from '../schemas/records.js';
import { DAY_MS, floorTo } from '../schemas/time.js';
import {
  chunkRange,
  createConnector,
  HttpClient,
  loadConnectionFile,
  type ConnectorContext,
} from '../producers/index.js';
import {
  calendarFor,
  completeChunk,
  dayNoToDate,
  normalise,
  normaliseChunk,
  validateAsset,
  validateMeter,
  type Reject,
} from '../processors/index.js';
import { parse, type Command } from './args.js';

/** The files the loader reads (producers/sync/connections.ts). */
const EXT = /\.(ya?ml|json)$/i;
const DATE = /^\d{4}-\d{2}-\d{2}$/;
/** Meters of each usage kind whose usage is probed, and records shown per list. */
const METERS_PER_KIND = 2;
const SHOWN = 5;

export interface FileProblem {
  file: string;
  field: string;
  problem: string;
}

interface LoadedFile {
  file: string;
  connection: ConnectionConfig;
}

/** The problems of a CFG_INVALID message, one per setting the loader named. */
function splitProblems(file: string, err: MeterflowError): FileProblem[] {
  const settings = Array.isArray(err.context.settings) ? (err.context.settings as string[]) : [];
  const head = `connection file ${file}: `;
  const text = err.message.startsWith(head) ? err.message.slice(head.length) : err.message;
  if (settings.length === 0) return [{ file, field: '(file)', problem: text }];
  const starts: number[] = [];
  let from = 0;
  for (const s of settings) {
    const at = text.indexOf(`${s}: `, from);
    starts.push(at < 0 ? -1 : at);
    if (at >= 0) from = at + s.length + 2;
  }
  return settings.map((field, i) => {
    const start = starts[i]!;
    if (start < 0) return { file, field, problem: text };
    const next = starts.slice(i + 1).find((n) => n >= 0);
    const body = text.slice(start + field.length + 2, next === undefined ? undefined : next);
    return { file, field, problem: body.replace(/;\s*$/, '').trim() };
  });
}

/** The id a file declares, read without validation (to select files with --connection). */
async function declaredId(path: string): Promise<string | undefined> {
  try {
    const parsed = parseFileText(await readFile(path, 'utf8'), path);
    const id = parsed.ok ? (parsed.value as { id?: unknown } | null)?.id : undefined;
    return typeof id === 'string' ? id : undefined;
  } catch {
    return undefined;
  }
}

/** Every connection file of `dir` through the loader; problems of all files, not the first. */
export async function checkFiles(
  dir: string,
  only?: string,
): Promise<{ files: number; loaded: LoadedFile[]; problems: FileProblem[] }> {
  let names: string[];
  try {
    names = (await readdir(dir)).filter((n) => EXT.test(n)).sort();
  } catch (cause) {
    throw new MeterflowError('CLI_USAGE', `connections folder ${dir} cannot be read: ${errorMessage(cause)}`);
  }
  const loaded: LoadedFile[] = [];
  const problems: FileProblem[] = [];
  const seen = new Map<string, string>();
  let files = 0;
  for (const name of names) {
    const file = join(dir, name);
    if (only !== undefined && (await declaredId(file)) !== only && name.replace(EXT, '') !== only) continue;
    files++;
    try {
      const connection = await loadConnectionFile(file);
      const other = seen.get(connection.id);
      if (other !== undefined) {
        problems.push({ file, field: 'id', problem: `"${connection.id}" is already used by ${other}` });
        continue;
      }
      seen.set(connection.id, file);
      loaded.push({ file, connection });
    } catch (e) {
      if (isMeterflowError(e) && e.code === 'CFG_INVALID') problems.push(...splitProblems(file, e));
      else problems.push({ file, field: '(file)', problem: errorMessage(e) });
    }
  }
  return { files, loaded, problems };
}

export interface QuarantinedRow {
  endpoint: 'assets' | 'meters' | 'usage';
  code: string;
  reason: string;
  /** The meter (or entity) the row belongs to; '' when it names none. */
  externalId: string;
  recordIndex: number | null;
  record: string | null;
}

export interface UsageRow {
  meter: string;
  kind: Meter['reading_type'];
  channel: string;
  start: string;
  end: string;
  localDay: string;
  value: number;
  unit: string;
  estimated: boolean;
}

export interface ProbeReport {
  connection: string;
  range: { from: string; to: string };
  requests: number;
  assets: { id: string; name: string; derived: boolean }[];
  meters: {
    id: string;
    asset: string;
    type: string;
    subtype: string | null;
    unit: string;
    timeZone: string | null;
    usageKind: string;
  }[];
  usage: UsageRow[];
  quarantined: QuarantinedRow[];
  /** Requests that failed (their code and message; never a credential). */
  errors: { code: string; message: string }[];
  /** Endpoints with more pages than the probe reads. */
  morePages: string[];
}

/** The error a listing longer than the probe's one page ends with: not a problem of the file. */
function isPageLimit(e: unknown): e is MeterflowError {
  return isMeterflowError(e) && e.code === 'POLL_PAGINATION_LOOP' && / more than 1 pages$/.test(e.message);
}

const endpointOf = (e: MeterflowError): string =>
  typeof e.context.endpoint === 'string' ? e.context.endpoint : 'request';

export async function probe(
  configured: ConnectionConfig,
  log: Logger,
  range: { from: number; to: number },
): Promise<ProbeReport> {
  // One page per listing: paginate stops with its page limit after the first page, which is kept.
  const connection: ConnectionConfig = { ...configured, http: { ...configured.http, maxPages: 1 } };
  const connector = createConnector(connection);
  const http = new HttpClient({
    connection,
    env: process.env,
    log,
    defaultHeaders: connector.defaultHeaders?.() ?? {},
    ...(connector.onResponse ? { onResponse: connector.onResponse } : {}),
  });
  const ctx: ConnectorContext = {
    connection,
    http,
    log,
    runId: `${connection.id}-check-${randomBytes(3).toString('hex')}`,
    signal: new AbortController().signal,
    now: Date.now,
  };
  const report: ProbeReport = {
    connection: connection.id,
    range: { from: new Date(range.from).toISOString(), to: new Date(range.to).toISOString() },
    requests: 0,
    assets: [],
    meters: [],
    usage: [],
    quarantined: [],
    errors: [],
    morePages: [],
  };
  const more = new Set<string>();
  const failed = (e: unknown): void => {
    if (isPageLimit(e)) more.add(endpointOf(e));
    else if (isMeterflowError(e)) report.errors.push({ code: e.code, message: e.message });
    else report.errors.push({ code: 'POLL_HTTP_NETWORK', message: errorMessage(e) });
  };
  const entities: RawEnvelope[] = [];
  const usage: RawEnvelope[] = [];
  try {
    const snap = await connector.snapshot(ctx, (envs) => {
      entities.push(...envs);
      return Promise.resolve();
    });
    snap.errors.forEach(failed);
    const kindOf = new Map<string, string>();
    for (const env of entities.filter((e) => e.entity_kind === 'meter'))
      for (const m of normalise(env, { connection }).meters) kindOf.set(m.external_id, m.reading_type);
    // A few meters of each kind; the rest of the listing is not asked for usage.
    const perKind = new Map<string, number>();
    const chosen = snap.meters.filter((m) => {
      const kind = kindOf.get(m.externalId) ?? 'unknown';
      const n = perKind.get(kind) ?? 0;
      perKind.set(kind, n + 1);
      return n < METERS_PER_KIND;
    });
    const known = new Set(snap.meters.map((m) => m.externalId));
    for (const stream of connector.usageStreams()) {
      const first = chunkRange(range, stream.maxRangeDays)[0];
      if (!first) continue;
      for (let i = 0; i < chosen.length; i += stream.batchSize) {
        const batch = chosen.slice(i, i + stream.batchSize);
        try {
          const envs = await stream.fetch(
            ctx,
            batch,
            first,
            0,
            (page) => {
              usage.push(...page);
              return Promise.resolve();
            },
            known,
          );
          usage.push(...envs);
        } catch (e) {
          failed(e);
        }
      }
    }
  } finally {
    report.requests = http.stats.requests;
    await http.close();
  }
  report.morePages = [...more].sort();
  mapRecords(connection, entities, usage, report);
  return report;
}

/** The entities and usage stages' pure steps over the probe's answers. */
function mapRecords(
  connection: ConnectionConfig,
  entities: RawEnvelope[],
  usage: RawEnvelope[],
  report: ProbeReport,
): void {
  const quarantine = (endpoint: QuarantinedRow['endpoint'], externalId: string, r: Reject): void => {
    report.quarantined.push({
      endpoint,
      code: r.code,
      reason: r.message,
      externalId,
      recordIndex: r.recordIndex,
      record: r.detail,
    });
  };
  const assets: Asset[] = [];
  const meters = new Map<string, Meter>();
  for (const env of entities) {
    const endpoint = env.entity_kind === 'meter' ? 'meters' : 'assets';
    const result = normalise(env, { connection });
    for (const r of result.rejects) quarantine(endpoint, env.external_id, r);
    for (const a of result.assets) {
      const problems = validateAsset(a);
      problems.forEach((p) => quarantine(endpoint, a.external_id, p));
      if (problems.length === 0) assets.push(a);
    }
    for (const m of result.meters) {
      const problems = validateMeter(m);
      problems.forEach((p) => quarantine(endpoint, m.external_id, p));
      if (problems.length === 0) meters.set(m.external_id, m);
    }
  }
  report.assets = assets.map((a) => ({ id: a.external_id, name: a.name, derived: a.derived }));
  report.meters = [...meters.values()].map((m) => ({
    id: m.external_id,
    asset: m.asset_external_id,
    type: m.meter_type,
    subtype: m.meter_subtype,
    unit: m.unit,
    timeZone: m.time_zone,
    usageKind: m.reading_type,
  }));
  // Chunks in time order per meter, as the stream sees them; readings are differenced within the probe.
  const ordered = [...usage].sort((a, b) => (a.meta.range_from ?? '').localeCompare(b.meta.range_from ?? ''));
  const last = new Map<string, Parameters<typeof completeChunk>[2]['last']>();
  for (const env of ordered) {
    const meter = env.external_id ? meters.get(env.external_id) : undefined;
    if (!meter) {
      // As the usage stage: a chunk of a meter the meters stage would not have.
      const why = env.meta.unmatched ?? 'not a meter the probe mapped (quarantined itself, or not listed)';
      quarantine('usage', env.external_id, {
        code: 'VAL_UNKNOWN_METER',
        message: `meter "${env.external_id}": ${why}`,
        recordIndex: null,
        detail: null,
      });
      continue;
    }
    const chunk = normaliseChunk(env, connection, meter);
    chunk.rejects.forEach((r) => quarantine('usage', meter.external_id, r));
    if (!chunk.batch) continue;
    const done = completeChunk(chunk.batch, chunk.readings, {
      connection,
      meter,
      last: last.get(meter.external_id),
    });
    if (chunk.readings.length > 0) last.set(meter.external_id, done.last);
    done.rejects.forEach((r) => quarantine('usage', meter.external_id, r));
    const calendar = calendarFor(done.valid.time_zone); // the zone the aggregator uses
    for (const iv of done.valid.intervals)
      report.usage.push({
        meter: meter.external_id,
        kind: meter.reading_type,
        channel: iv.channel,
        start: new Date(iv.start).toISOString(),
        end: new Date(iv.end).toISOString(),
        localDay: dayNoToDate(calendar.dayOf(iv.start)),
        value: iv.value,
        unit: done.valid.unit,
        estimated: iv.estimated,
      });
  }
}

const clip = (s: string, n = 160): string => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

/** A reason without its row numbers ("12.kwh: …" → "#.kwh: …"): one mistake, one line. */
const reasonShape = (reason: string): string =>
  reason.replace(/(^|[\s.[])\d+(?=[.\]:])/g, '$1#').replace(/\b(row|record|item) \d+\b/g, '$1 #');

/** A value as people write it: float noise from differencing registers rounded away. */
const shown = (v: number): string => String(Number(v.toPrecision(12)));

const more = (n: number, shownCount: number): void => {
  if (n > shownCount) console.log(`    … ${n - shownCount} more (--json lists all)`);
};

function printProbe(r: ProbeReport): void {
  console.log(
    `\n${r.connection}: probed ${r.range.from.slice(0, 10)} .. ${r.range.to.slice(0, 10)} with ${r.requests} request(s)`,
  );
  if (r.morePages.length > 0)
    console.log(`  more pages not read (first page only): ${r.morePages.join(', ')}`);
  for (const e of r.errors) console.log(`  error: ${e.code}: ${e.message}`);
  console.log(`  assets (${r.assets.length}):`);
  for (const a of r.assets.slice(0, SHOWN))
    console.log(`    ${a.id}  "${a.name}"${a.derived ? ' (from meter fields)' : ''}`);
  console.log(`  meters (${r.meters.length}):`);
  for (const m of r.meters.slice(0, SHOWN))
    console.log(
      `    ${m.id}  asset ${m.asset}  ${m.type}/${m.subtype ?? '-'}  unit ${m.unit}  zone ${m.timeZone ?? '-'}  kind ${m.usageKind}`,
    );
  more(r.meters.length, SHOWN);
  console.log(`  usage rows (${r.usage.length}):`);
  const byMeter = new Map<string, UsageRow[]>();
  for (const u of r.usage) byMeter.set(u.meter, [...(byMeter.get(u.meter) ?? []), u]);
  for (const rows of byMeter.values())
    for (const u of rows.slice(0, 3))
      console.log(
        `    ${u.meter} (${u.kind})  ${u.localDay}  ${u.start} .. ${u.end}  ${u.channel} ${shown(u.value)} ${u.unit}${u.estimated ? ' (estimated)' : ''}`,
      );
  if (r.quarantined.length === 0) {
    console.log('  would be quarantined: none');
    return;
  }
  console.log(`  would be quarantined (${r.quarantined.length}):`);
  // Every row, grouped by reason: the same reason on thousands of rows is one mistake.
  const groups = new Map<string, QuarantinedRow[]>();
  for (const q of r.quarantined) {
    const key = `${q.endpoint} ${q.code} ${reasonShape(q.reason)}`;
    groups.set(key, [...(groups.get(key) ?? []), q]);
  }
  for (const rows of groups.values()) {
    const q = rows[0]!;
    console.log(`    ${q.code} (${q.endpoint}, ${rows.length} row(s)): ${clip(reasonShape(q.reason), 300)}`);
    for (const x of rows.slice(0, 3))
      console.log(
        `      ${x.externalId || '(no id)'}${x.recordIndex === null ? '' : ` row ${x.recordIndex}`}${x.record ? `: ${clip(x.record)}` : ''}`,
      );
    if (rows.length > 3) console.log(`      … ${rows.length - 3} more (--json lists every row)`);
  }
}

function rangeOf(fromText: string | undefined, daysText: string | undefined): { from: number; to: number } {
  const days = daysText === undefined ? 2 : Number(daysText);
  if (!Number.isInteger(days) || days < 1 || days > 31)
    throw new MeterflowError('CLI_USAGE', `--days must be a whole number from 1 to 31, not "${daysText}"`);
  if (fromText !== undefined) {
    const from = Date.parse(`${fromText}T00:00:00Z`);
    if (!DATE.test(fromText) || Number.isNaN(from))
      throw new MeterflowError('CLI_USAGE', `--from must be a date YYYY-MM-DD, not "${fromText}"`);
    return { from, to: from + days * DAY_MS };
  }
  const to = floorTo(Date.now(), DAY_MS);
  return { from: to - days * DAY_MS, to };
}

export const checkCommand: Command = {
  summary: 'check connection files offline, or probe the live provider (--probe)',
  help: `Usage: meterflow check [--connection <id>] [--connections <dir>] [--probe [--from YYYY-MM-DD] [--days N]] [--json]

Without --probe: loads every connection file of MF_CONNECTIONS_DIR (or --connections) with the
checks every component applies at start, and prints each problem with its file, the field and
what would be valid. Every file is checked, not only up to the first bad one. --connection
checks only the file of that id.

With --probe: also asks each valid connection's provider for the FIRST PAGE of each endpoint
(assets, meters, and usage of ${METERS_PER_KIND} meters per usage kind over --days days, default 2, ending today or
starting at --from), through the connector and HTTP code a sync uses (auth, budget, retries).
Prints a few mapped records (asset; meter with taxonomy type/subtype, unit, zone and usage kind;
usage rows with their local day and value) and every row the processors would quarantine, with
its reason code. Nothing is written to Kafka, no watermark moves, and Arcadia meters are not
activated. Credentials are read from the environment as for a sync and are never printed.

--json prints one JSON document: { files, problems: [{file, field, problem}], probes: [...] }.

Exit codes: 0 every file valid (and, with --probe, every probed row maps and every request
succeeded); 1 a problem in a file, a row that would be quarantined, or a failed request;
2 usage error (unknown option, bad --days/--from, unreadable folder, no such --connection).`,
  async run(argv) {
    const { values } = parse(
      argv,
      {
        connection: { type: 'string' },
        connections: { type: 'string' },
        probe: { type: 'boolean' },
        from: { type: 'string' },
        days: { type: 'string' },
        json: { type: 'boolean' },
      },
      false,
    );
    if (!values.probe && (values.from !== undefined || values.days !== undefined))
      throw new MeterflowError('CLI_USAGE', '--from and --days need --probe');
    const range = rangeOf(values.from, values.days);
    const config = loadConfig(process.env);
    const dir = values.connections ?? config.connectionsDir;
    const checked = await checkFiles(dir, values.connection);
    if (values.connection !== undefined && checked.files === 0)
      throw new MeterflowError('CLI_USAGE', `no connection file with id "${values.connection}" in ${dir}`);
    const probes: ProbeReport[] = [];
    if (values.probe) {
      const log = createLogger(config.logLevel);
      for (const { connection } of checked.loaded) probes.push(await probe(connection, log, range));
    }
    if (values.json) {
      console.log(JSON.stringify({ files: checked.files, problems: checked.problems, probes }, null, 2));
    } else {
      for (const p of checked.problems) console.log(`${p.file}: ${p.field}: ${p.problem}`);
      console.log(
        `${checked.files} connection file(s) in ${dir}: ${checked.loaded.length} valid, ${checked.files - checked.loaded.length} with problems (${checked.problems.length})`,
      );
      probes.forEach(printProbe);
    }
    const bad =
      checked.problems.length > 0 || probes.some((p) => p.quarantined.length > 0 || p.errors.length > 0);
    return bad ? 1 : 0;
  },
};
