/**
 * `meterflow mapping import|export`: provider meter → internal meter, as CSV.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { loadConfig } from '../lib/config.js';
import { MeterflowError } from '../lib/errors.js';
import { createKafka, ensureCatalogueTopics, readToEnd } from '../lib/kafka.js';
import { topicName } from '../schemas/topics.js';
import { AvroRegistry } from '../lib/registry.js';
import { exportMappings, importMappings, planImport } from '../producers/mapping/index.js';
import { parse, type Command } from './args.js';

export const mappingCommand: Command = {
  summary: 'import or export provider-meter to internal-meter mappings (CSV)',
  help: `Usage:
  meterflow mapping import <file.csv> [--dry-run]
  meterflow mapping export [--connection <id>] [--out <file.csv>]

CSV columns: connection_id, external_id, internal_meter_id (an empty internal_meter_id removes a
mapping). An import checks every row against the current meters: unknown meters, duplicate rows
and two meters mapped to one internal id are all reported with their line, and a file with any
problem is not applied at all (exit 1). Exported cells that begin with = + - @ are prefixed with
an apostrophe so that spreadsheets do not run them as formulas; import undoes that.`,
  async run(argv) {
    const { values, positionals } = parse(argv, {
      connection: { type: 'string' },
      out: { type: 'string' },
      'dry-run': { type: 'boolean' },
    });
    const config = loadConfig();
    const kafka = createKafka(config, '-cli');
    const registry = AvroRegistry.fromConfig(config);
    const admin = kafka.admin();
    await admin.connect();
    try {
      await ensureCatalogueTopics(admin, config, ['meters', 'meterMappings']);
    } finally {
      await admin.disconnect();
    }
    const deps = { config, kafka, registry };
    if (positionals[0] === 'import') {
      const file = positionals[1];
      if (!file) throw new MeterflowError('CLI_USAGE', 'mapping import needs a CSV file');
      const text = await readFile(file, 'utf8').catch((cause: unknown) => {
        throw new MeterflowError('CLI_USAGE', `cannot read ${file}: ${String(cause)}`);
      });
      if (values['dry-run']) {
        const known = new Set<string>();
        await readToEnd(kafka, topicName(config.kafka.topicPrefix, 'meters'), (m) => {
          if (m.key && m.value) known.add(m.key.toString('utf8'));
        });
        const plan = planImport(text, known);
        for (const p of plan.problems) console.log(`${file}:${p.line}: ${p.kind}: ${p.message}`);
        console.log(
          plan.problems.length === 0
            ? `${plan.rows.length} row(s) would be applied`
            : `${plan.problems.length} problem(s): nothing would be applied`,
        );
        return plan.problems.length === 0 ? 0 : 1;
      }
      const result = await importMappings(deps, text, `csv:${file}`);
      for (const p of result.problems) console.log(`${file}:${p.line}: ${p.kind}: ${p.message}`);
      console.log(
        result.applied
          ? `applied ${result.rows} mapping(s)`
          : `${result.problems.length} problem(s): nothing applied`,
      );
      return result.applied ? 0 : 1;
    }
    if (positionals[0] === 'export') {
      const csv = await exportMappings(deps, values.connection ? { connectionId: values.connection } : {});
      if (values.out) await writeFile(values.out, csv);
      else process.stdout.write(csv);
      return 0;
    }
    throw new MeterflowError('CLI_USAGE', 'mapping needs import or export');
  },
};
