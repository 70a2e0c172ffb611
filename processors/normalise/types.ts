/**
 * Result types shared by the normalise, validate and readings processors.
 */
import type { ErrorCode } from '../../lib/errors.js';
import type { ConnectionConfig } from '../../schemas/connection.js';
import type { Asset, Meter, UsageBatch } from '../../schemas/records.js';

/** A record (or the whole message when recordIndex is null) that goes to quarantine. */
export interface Reject {
  code: ErrorCode;
  message: string;
  /** Index of the offending record inside the chunk; null for the whole message. */
  recordIndex: number | null;
  /** The offending record as JSON text; null for the whole message. */
  detail: string | null;
}

/** A cumulative register reading, turned into consumption by processors/readings. */
export interface Reading {
  timestamp: number;
  value: number;
  estimated: boolean;
  /** Index of the record in the payload (for quarantine of a bad span). */
  index: number;
}

/**
 * What one raw envelope normalises to. For reading-format usage, `batch` carries the header
 * (meter, unit, zone) with no intervals and `readings` the register values: the caller differences
 * them against its stored last reading and appends the intervals.
 */
export interface NormaliseResult {
  assets: Asset[];
  meters: Meter[];
  batch: UsageBatch | null;
  readings: Reading[];
  rejects: Reject[];
}

export interface NormaliseContext {
  connection?: ConnectionConfig | undefined;
  /** The meter of a usage chunk (required for usage: unit, zone, reading type). */
  meter?: Meter | undefined;
}

export function emptyResult(): NormaliseResult {
  return { assets: [], meters: [], batch: null, readings: [], rejects: [] };
}

/** A result that rejects the whole message. */
export function rejectWhole(code: ErrorCode, message: string): NormaliseResult {
  return { ...emptyResult(), rejects: [{ code, message, recordIndex: null, detail: null }] };
}

export function recordReject(code: ErrorCode, message: string, index: number, record: unknown): Reject {
  return { code, message, recordIndex: index, detail: safeJson(record) };
}

function safeJson(value: unknown): string | null {
  try {
    return JSON.stringify(value) ?? null;
  } catch {
    return null;
  }
}
