/**
 * `meterflow quarantine list | inspect | redrive`: what was rejected and why, and sending it
 * back through the pipeline after a mapping or configuration fix.
 */
import { loadConfig } from '../config.js';
import { MeterflowError } from '../errors.js';
import { createKafka, readToEnd } from '../kafka.js';
import { AvroRegistry } from '../registry.js';
import { topicName } from '../../schemas/topics.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import { parse, type Command } from './args.js';

export interface QuarantineFilter {
  reason?: string | undefined;
  stage?: string | undefined;
  connection?: string | undefined;
  since?: number | undefined;
}

export function matches(q: QuarantineRecord, f: QuarantineFilter): boolean {
  return (
    (!f.reason || q.reason_code === f.reason) &&
    (!f.stage || q.stage === f.stage) &&
    (!f.connection || q.connection_id === f.connection) &&
    (!f.since || q.quarantined_at >= f.since)
  );
}

/** Reads the quarantine topic; the latest record per id (a replay re-quarantines the same id). */
export async function readQuarantine(filter: QuarantineFilter): Promise<QuarantineRecord[]> {
  const config = loadConfig();
  const kafka = createKafka(config, '-cli');
  const registry = AvroRegistry.fromConfig(config);
  const raw: Buffer[] = [];
  await readToEnd(kafka, topicName(config.kafka.topicPrefix, 'quarantine'), (m) => {
    if (m.value) raw.push(m.value);
  });
  const byId = new Map<string, QuarantineRecord>();
  for (const v of raw) {
    const q = await registry.decode<QuarantineRecord>(v);
    if (matches(q, filter)) byId.set(q.id, q);
  }
  return [...byId.values()];
}

const filterOptions = {
  reason: { type: 'string' },
  stage: { type: 'string' },
  connection: { type: 'string' },
  since: { type: 'string' },
  json: { type: 'boolean' },
  'dry-run': { type: 'boolean' },
} as const;

function filterFrom(values: {
  reason?: string | undefined;
  stage?: string | undefined;
  connection?: string | undefined;
  since?: string | undefined;
}): QuarantineFilter {
  const since = values.since ? Date.parse(values.since) : undefined;
  if (values.since && Number.isNaN(since))
    throw new MeterflowError('CLI_USAGE', `--since must be an ISO time, not "${values.since}"`);
  return { reason: values.reason, stage: values.stage, connection: values.connection, since };
}

export const quarantineCommand: Command = {
  summary: 'list, inspect and redrive quarantined records',
  help: `Usage:
  meterflow quarantine list    [--reason CODE] [--stage S] [--connection C] [--since ISO] [--json]
  meterflow quarantine inspect <id>
  meterflow quarantine redrive [--reason CODE] [--stage S] [--connection C] [--since ISO] [--dry-run]

list: counts by reason, then one line per record (id, time, stage, reason, source, message).
inspect: the whole record, with the original bytes (as text when they are UTF-8 JSON).
redrive: writes each record's original bytes back to its source topic with its key, so the stage
that rejected it sees it again (after you fixed a mapping or a connection file). Slot semantics
and versions make this safe to repeat.`,
  async run(argv) {
    const { values, positionals } = parse(argv, filterOptions);
    const action = positionals[0];
    if (action === 'inspect') {
      const id = positionals[1];
      if (!id) throw new MeterflowError('CLI_USAGE', 'quarantine inspect needs an id');
      const found = (await readQuarantine({})).find((q) => q.id === id || q.id.startsWith(id));
      if (!found) {
        console.error(`no quarantine record ${id}`);
        return 1;
      }
      const original = found.original.toString('utf8');
      const printable = /^[\x09\x0a\x0d\x20-\x7e\u00a0-\uffff]*$/.test(original);
      console.log(
        JSON.stringify(
          {
            ...found,
            quarantined_at: new Date(found.quarantined_at).toISOString(),
            original: printable ? original : `base64:${found.original.toString('base64')}`,
          },
          null,
          2,
        ),
      );
      return 0;
    }
    const filter = filterFrom(values);
    const records = await readQuarantine(filter);
    if (action === 'list') {
      if (values.json) {
        for (const q of records)
          console.log(JSON.stringify({ ...q, original: q.original.toString('base64') }));
        return 0;
      }
      const counts = new Map<string, number>();
      for (const q of records) counts.set(q.reason_code, (counts.get(q.reason_code) ?? 0) + 1);
      console.log(`${records.length} quarantined record(s)`);
      for (const [reason, n] of [...counts].sort((a, b) => b[1] - a[1]))
        console.log(`  ${reason.padEnd(28)} ${n}`);
      for (const q of records) {
        console.log(
          `${q.id.slice(0, 12)}  ${new Date(q.quarantined_at).toISOString()}  ${q.stage.padEnd(9)} ${q.reason_code.padEnd(26)} ${q.source_topic}:${q.source_partition}:${q.source_offset}${q.record_index === null ? '' : `#${q.record_index}`}  ${q.message}`,
        );
      }
      return 0;
    }
    if (action === 'redrive') {
      // One message per source message: several rejections of one chunk redrive it once.
      const unique = new Map<string, QuarantineRecord>();
      for (const q of records) unique.set(`${q.source_topic}|${q.source_partition}|${q.source_offset}`, q);
      if (values['dry-run']) {
        console.log(`would redrive ${unique.size} message(s) (${records.length} quarantine record(s))`);
        return 0;
      }
      const config = loadConfig();
      const kafka = createKafka(config, '-cli');
      const producer = kafka.producer({ idempotent: true });
      await producer.connect();
      try {
        for (const q of unique.values()) {
          await producer.send({
            topic: q.source_topic,
            messages: [{ key: q.source_key, value: q.original, headers: { 'mf.redrive.of': q.id } }],
          });
        }
      } finally {
        await producer.disconnect();
      }
      console.log(`redrove ${unique.size} message(s) to their source topics`);
      return 0;
    }
    throw new MeterflowError('CLI_USAGE', 'quarantine needs list, inspect or redrive');
  },
};
