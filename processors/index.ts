/**
 * The processors: entities, usage and aggregate stages, each a consumer group with its own
 * transactional producer. Run all three in one process or each in its own (scale out by
 * running more processes: Kafka spreads the partitions).
 */
import type { Kafka } from 'kafkajs';
import type { Config } from '../lib/config.js';
import type { Logger } from '../lib/log.js';
import type { AvroRegistry } from '../lib/registry.js';
import type { ConnectionConfig } from '../schemas/connection.js';
import { AggregateStage } from './aggregate/stage.js';
import { EntitiesStage } from './entities/stage.js';
import { runStage, type RunningStage, type RunStageOptions } from './runtime/run-stage.js';
import type { Stage } from './runtime/stage.js';
import { UsageStage } from './usage/stage.js';

export type StageName = 'entities' | 'usage' | 'aggregate';
export const STAGE_NAMES: readonly StageName[] = ['entities', 'usage', 'aggregate'];

export interface ProcessorsDeps {
  config: Config;
  kafka: Kafka;
  registry: AvroRegistry;
  log: Logger;
  connections: Map<string, ConnectionConfig>;
}

export function createStage(name: StageName, deps: ProcessorsDeps): Stage {
  switch (name) {
    case 'entities':
      return new EntitiesStage(deps);
    case 'usage':
      return new UsageStage(deps);
    case 'aggregate':
      return new AggregateStage(deps);
  }
}

export interface RunningProcessors {
  stages: RunningStage[];
  ready: Promise<void>;
  stop(): Promise<void>;
}

export async function startProcessors(
  deps: ProcessorsDeps,
  names: readonly StageName[] = STAGE_NAMES,
  options: RunStageOptions = {},
): Promise<RunningProcessors> {
  const stages: RunningStage[] = [];
  try {
    for (const name of names) stages.push(await runStage(createStage(name, deps), deps, options));
  } catch (err) {
    await Promise.all(stages.map((s) => s.stop()));
    throw err;
  }
  return {
    stages,
    ready: Promise.all(stages.map((s) => s.ready)).then(() => undefined),
    async stop() {
      await Promise.all(stages.map((s) => s.stop()));
    },
  };
}
