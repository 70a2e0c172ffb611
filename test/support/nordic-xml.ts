/**
 * The shipped XML example connection (connections/examples/generic-xml-consumption.yaml) on a
 * generic XML/CSV simulator: two buildings of four meters each (electricity in kWh, heat in MWh,
 * water and gas in m3), a month from `from`, its file written to a fresh folder.
 */
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { parse, stringify } from 'yaml';
import { REPO_ROOT } from '../../lib/config.js';
import {
  startGenericXmlCsvSimulator,
  type GenericXmlCsvSimulator,
} from '../../simulators/generic-xml-csv.js';

export interface NordicXml {
  sim: GenericXmlCsvSimulator;
  /** The folder holding `<id>.yaml`. */
  dir: string;
  /** The variables its credentials are read from. */
  env: Record<string, string>;
}

export async function startNordicXml(opts: {
  id: string;
  envPrefix: string;
  seed: number;
  from: string;
}): Promise<NordicXml> {
  const sim = await startGenericXmlCsvSimulator({
    seed: opts.seed,
    buildings: 2,
    metersPerBuilding: [4, 4],
    from: opts.from,
    days: 31,
    auth: 'oauth2-password',
    timeZones: ['Europe/Berlin', 'UTC'],
  });
  const p = opts.envPrefix;
  const env = {
    [`${p}_CLIENT_ID`]: sim.credentials.clientId,
    [`${p}_CLIENT_SECRET`]: sim.credentials.clientSecret,
    [`${p}_USERNAME`]: sim.credentials.username,
    [`${p}_PASSWORD`]: sim.credentials.password,
  };
  const conn = parse(
    readFileSync(join(REPO_ROOT, 'connections/examples/generic-xml-consumption.yaml'), 'utf8'),
  ) as Record<string, unknown>;
  conn.id = opts.id;
  conn.baseUrls = { production: sim.url };
  conn.usageStart = opts.from;
  conn.http = { timeoutMs: 10_000, maxRetries: 4, backoffBaseMs: 10, backoffMaxMs: 100 };
  Object.assign(conn.auth as object, {
    clientIdEnv: `${p}_CLIENT_ID`,
    clientSecretEnv: `${p}_CLIENT_SECRET`,
    usernameEnv: `${p}_USERNAME`,
    passwordEnv: `${p}_PASSWORD`,
  });
  const dir = mkdtempSync(join(tmpdir(), `mf-${opts.id}-`));
  writeFileSync(join(dir, `${opts.id}.yaml`), stringify(conn));
  return { sim, dir, env };
}
