/**
 * What a stream stage is, as the runtime sees it: one input topic, per-partition state that
 * the runtime restores from a changelog, and a process step that writes outputs. The runtime
 * commits outputs, changelog entries and input offsets in one Kafka transaction.
 */
import type { ErrorCode } from '../../lib/errors.js';

export interface InMessage {
  topic: string;
  partition: number;
  offset: string;
  key: string | null;
  value: Buffer | null;
  headers: Record<string, string>;
  timestamp: string;
}

export interface OutMessage {
  topic: string;
  key: string | null;
  value: Buffer | null;
  partition?: number;
  headers?: Record<string, string>;
}

export interface Rejection {
  code: ErrorCode;
  message: string;
  connectionId: string | null;
  /** Index of the offending record inside a chunk; null for the whole message. */
  recordIndex: number | null;
  /** The offending record as JSON text. */
  detail: string | null;
  /**
   * Rows of the source message, when the stage knows them: the record says how many of them
   * failed ("… in 2,976 of 2,976 rows").
   */
  rows?: number;
  /** The connection version applied, or named by the envelope (topic `connections`). */
  connectionVersion?: number | null;
}

export interface Output {
  send(message: OutMessage): void;
  /**
   * Routes (part of) the input message to the quarantine topic with a reason. Rejections of one
   * message with one reason become one record (the message's bytes once, the rows counted).
   */
  reject(source: InMessage, rejection: Rejection): void;
  /** A state change of the input partition, written to the stage's changelog. */
  changelog(partition: number, key: string, value: Buffer | null): void;
}

export interface Stage {
  /** Short name: quarantine records say which stage rejected them. */
  readonly name: string;
  readonly groupId: string;
  readonly inputTopic: string;
  /** Compacted topic holding the stage's state, partitioned like the input. */
  readonly changelogTopic: string | null;
  /** Topics the stage writes to (created if missing). */
  readonly outputTopics: { name: string; cleanup: 'compact' | 'delete' }[];
  /** Registers serdes and loads reference data; called once before consuming. */
  setup(): Promise<void>;
  /** Rebuilds state of a partition from one changelog record (called in offset order). */
  restore(partition: number, key: string, value: Buffer | null): void;
  /** Forgets the state of a partition that this instance no longer owns or must rebuild. */
  drop(partition: number): void;
  /** Handles one input message; throws only for retriable failures (registry down...). */
  process(message: InMessage, out: Output): Promise<void>;
  /** Called once per batch after process: emit what the batch changed (aggregates, changelog). */
  flush(partition: number, out: Output): void;
  close?(): Promise<void>;
}
