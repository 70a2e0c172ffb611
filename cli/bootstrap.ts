/**
 * What every command needs: configuration, logger, Kafka, the registry, and the connections.
 */
import { existsSync } from 'node:fs';
import type { ComponentDeps } from '../lib/component.js';
import { loadConfig } from '../lib/config.js';
import { createKafka, ensureCatalogueTopics } from '../lib/kafka.js';
import { createLogger } from '../lib/log.js';
import { AvroRegistry } from '../lib/registry.js';
import type { ConnectionConfig } from '../schemas/connection.js';
import { loadConnections } from '../producers/index.js';

/** The shared runtime every component is created with, and the connections read from files. */
export interface Runtime extends ComponentDeps {
  connections: Map<string, ConnectionConfig>;
}

export async function bootstrap(
  options: {
    connectionsDir?: string;
    needConnections?: boolean;
    /** A missing folder means no files (processors work from the connections topic). */
    optionalConnections?: boolean;
  } = {},
): Promise<Runtime> {
  const config = loadConfig(process.env);
  const log = createLogger(config.logLevel);
  const kafka = createKafka(config);
  const registry = AvroRegistry.fromConfig(config);
  const dir = options.connectionsDir ?? config.connectionsDir;
  const list =
    options.needConnections === false
      ? []
      : options.optionalConnections && !existsSync(dir)
        ? []
        : await loadConnections(dir);
  const connections = new Map(list.map((c) => [c.id, c]));
  const admin = kafka.admin();
  await admin.connect();
  try {
    await ensureCatalogueTopics(admin, config);
  } finally {
    await admin.disconnect();
  }
  return { config, log, kafka, registry, connections };
}

/** Resolves on SIGINT or SIGTERM, once. */
export function untilSignal(): Promise<NodeJS.Signals> {
  return new Promise((resolve) => {
    const on = (s: NodeJS.Signals) => {
      process.off('SIGINT', on);
      process.off('SIGTERM', on);
      resolve(s);
    };
    process.on('SIGINT', on);
    process.on('SIGTERM', on);
  });
}
