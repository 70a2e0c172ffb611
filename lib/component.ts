/**
 * The one shape of a component (producers, processors, the ClickHouse sink). Each exports a zod
 * `configSchema` for what it does and `create(config, deps)`, where `config` is validated by that
 * schema and `deps` is the shared runtime (settings, logger, Kafka, registry) that the CLI builds
 * once, so every component is started the same way:
 *
 *   const c = processors.create({ stages: ['usage'] }, runtime);
 *   await c.start();   // running: connected, subscribed, schedules armed
 *   await c.ready;     // serving: consumer groups joined
 *   await c.stop();    // drains; a second call waits for the first
 */
import type { Kafka } from 'kafkajs';
import type { Config } from './config.js';
import type { Logger } from './log.js';
import type { AvroRegistry } from './registry.js';

/** The clients and settings every component shares (built once by the CLI, or by a test). */
export interface ComponentDeps {
  /** The application settings (lib/config.ts): endpoints, topic prefix, limits. */
  config: Config;
  log: Logger;
  kafka: Kafka;
  registry: AvroRegistry;
}

export interface Component {
  /** Resolves once the component runs; rejects when it cannot start. After stop(): does nothing. */
  start(): Promise<void>;
  /** Resolves once it serves (consumer groups joined). Never rejects: a failed start rejects start(). */
  readonly ready: Promise<void>;
  /** Drains and disconnects; idempotent. Waits for a start in progress, which it cuts short. */
  stop(): Promise<void>;
  /**
   * Resolves (never rejects) when the component stopped working on its own and cannot recover:
   * the process should drain what is left and exit non-zero, so its supervisor restarts it.
   */
  readonly failed?: Promise<Error>;
}

/**
 * The start/stop rules of `Component`, written once: start runs `run.start` at most once (never
 * after a stop), stop aborts `signal`, waits for the start, then runs `run.stop` once.
 */
export function lifecycle(run: {
  start(signal: AbortSignal): Promise<void>;
  stop(): Promise<void>;
}): Pick<Component, 'start' | 'stop'> {
  const abort = new AbortController();
  let started: Promise<void> | undefined;
  let stopped: Promise<void> | undefined;
  return {
    start() {
      if (stopped) return Promise.resolve();
      return (started ??= run.start(abort.signal));
    },
    stop() {
      return (stopped ??= (async () => {
        abort.abort();
        await started?.catch(() => undefined);
        await run.stop();
      })());
    },
  };
}

/** A promise and the function that resolves it (a component's `ready`). */
export function readiness(): { ready: Promise<void>; markReady: () => void } {
  let markReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (markReady = resolve));
  return { ready, markReady };
}
