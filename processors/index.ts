/**
 * The processors: entities, usage and aggregate stages, each a consumer group with its own
 * transactional producer. Run all three in one process or each in its own (scale out by
 * running more processes: Kafka spreads the partitions).
 *
 *   const p = processors.create({ stages: ['usage'], connections }, runtime);
 *   await p.start();   // every stage connected and consuming
 *   await p.ready;     // every stage joined its group
 *   await p.stop();    // in-flight transactions commit, consumers leave their groups
 */
import { z } from 'zod';
import { lifecycle, readiness, type Component, type ComponentDeps } from '../lib/component.js';
import { parseOrThrow } from '../lib/parse-or-throw.js';
import { connectionSchema, type ConnectionConfig } from '../schemas/connection.js';
import { AggregateStage } from './aggregate/stage.js';
import { EntitiesStage } from './entities/stage.js';
import { runStage, type RunningStage, type RunStageOptions } from './runtime/run-stage.js';
import type { Stage } from './runtime/stage.js';
import { ConnectionSource, type ConnectionResolver } from './runtime/connections.js';
import { UsageStage } from './usage/stage.js';

export { usageMonthTotals, normaliseChunk, completeChunk } from './usage/pipeline.js';
// The entities stage's pure steps and the local calendar, for `meterflow check --probe`.
export { normalise, type Reject } from './normalise/index.js';
export { validateAsset, validateMeter } from './validate/index.js';
export { calendarFor, dayNoToDate } from './aggregate/core/zone.js';

export const STAGE_NAMES = ['entities', 'usage', 'aggregate'] as const;
export type StageName = (typeof STAGE_NAMES)[number];

const count = z.number().int().min(1);

/** Tuning left out takes the runtime's default (processors/runtime/run-stage.ts). */
export const configSchema = z
  .object({
    stages: z
      .array(z.enum(STAGE_NAMES))
      .min(1)
      .default([...STAGE_NAMES])
      .describe('stages this process runs; each is its own consumer group'),
    connections: z
      .array(connectionSchema)
      .default([])
      .describe(
        'connection files, a fallback: the stages apply the versions on the connections topic, and these only for connections the topic does not have',
      ),
    maxAttempts: count
      .optional()
      .describe('a message whose processing fails with a retriable error this many times is quarantined'),
    sessionTimeoutMs: count.optional().describe('ms: consumer session timeout'),
    maxBytesPerPartition: count.optional().describe('bytes fetched per partition per request'),
    fetchMinBytes: count
      .optional()
      .describe(
        'a fetch waits for this many bytes or fetchMaxWaitMs: larger batches, fewer transactions (256 KiB)',
      ),
    fetchMaxWaitMs: count.optional().describe('ms a fetch waits for fetchMinBytes (250)'),
    maxRequestBytes: count.optional().describe('uncompressed bytes per produce request inside a transaction'),
    concurrentPartitions: count
      .optional()
      .describe('input partitions processed (and committed) at the same time'),
    maxTransactionBytes: count
      .optional()
      .describe(
        'encoded output bytes after which a batch commits what it processed and goes on in a new transaction (default: the settings’ processors.maxTransactionBytes)',
      ),
  })
  .strict();

export type ProcessorsConfig = z.input<typeof configSchema>;

export interface ProcessorsDeps extends ComponentDeps {
  /** The clock of quarantine records (tests). */
  now?: () => number;
}

/** What a stage needs: the shared runtime and the connections (topic `connections`, then files). */
export interface StageDeps extends ComponentDeps {
  connections: ConnectionResolver;
}

export function createStage(name: StageName, deps: StageDeps): Stage {
  switch (name) {
    case 'entities':
      return new EntitiesStage(deps);
    case 'usage':
      return new UsageStage(deps);
    case 'aggregate':
      return new AggregateStage(deps);
  }
}

export type Processors = Component;

export function create(input: ProcessorsConfig, deps: ProcessorsDeps): Processors {
  const {
    stages: names,
    connections,
    ...tuning
  } = parseOrThrow(configSchema, input, 'invalid processors configuration');
  // Only what was given: an absent setting leaves the runtime's default (or the settings') alone.
  const options: RunStageOptions = Object.fromEntries(
    Object.entries(tuning).filter(([, v]) => v !== undefined),
  );
  if (deps.now) options.now = deps.now;
  const files = new Map<string, ConnectionConfig>(connections.map((c) => [c.id, c]));
  // Catch-up timing runs on the wall clock, not on the records' clock (deps.now).
  const source = new ConnectionSource(deps, files);
  const stageDeps: StageDeps = { ...deps, connections: source };
  const { ready, markReady } = readiness();
  let markFailed: (err: Error) => void = () => undefined;
  const failed = new Promise<Error>((resolve) => (markFailed = resolve));
  const running: RunningStage[] = [];
  const stopAll = async (): Promise<void> => {
    await Promise.all(running.splice(0).map((s) => s.stop()));
    await source.stop();
  };
  return {
    ready,
    failed,
    ...lifecycle({
      async start(signal) {
        try {
          // The connections table first: the stages read versions from it as soon as they consume.
          await source.start();
          for (const name of names) {
            if (signal.aborted) return;
            const stage = await runStage(createStage(name, stageDeps), stageDeps, options);
            void stage.failed.then(markFailed);
            running.push(stage);
          }
        } catch (err) {
          await stopAll();
          throw err;
        }
        void Promise.all(running.map((s) => s.ready)).then(markReady);
      },
      stop: stopAll,
    }),
  };
}
