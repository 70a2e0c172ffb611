/** Shared builders for processor unit tests. */
import { readFileSync } from 'node:fs';
import {
  connectionSchema,
  type ConnectionConfig,
  type ConnectionInput,
} from '../../../schemas/connection.js';
import type { Meter, RawEnvelope, UsageBatch, UsageInterval } from '../../../schemas/records.js';

export function fixture(path: string): string {
  return readFileSync(new URL(`../../fixtures/payloads/${path}`, import.meta.url), 'utf8');
}

export function envelope(over: Partial<RawEnvelope> & Pick<RawEnvelope, 'format' | 'payload'>): RawEnvelope {
  return {
    connection_id: 'c1',
    provider: over.format.split('.')[0] ?? 'x',
    entity_kind: 'usage',
    external_id: 'mtr_1234',
    sync_run_id: 'run-1',
    request_url: 'https://example.test/x',
    request_page: null,
    received_at: 1_700_000_000_000,
    content_type: 'application/json',
    meta: {},
    ...over,
  };
}

export function connection(over: Partial<ConnectionInput> = {}): ConnectionConfig {
  return connectionSchema.parse({
    id: 'c1',
    provider: 'arcadia',
    baseUrls: { production: 'https://example.test' },
    auth: { type: 'none' },
    ...over,
  });
}

export function meter(over: Partial<Meter> = {}): Meter {
  return {
    connection_id: 'c1',
    provider: 'generic',
    external_id: 'm1',
    asset_external_id: 'a1',
    meter_type: 'Energy',
    meter_subtype: 'Off-site Electricity',
    unit: 'kWh',
    canonical_unit: 'kWh',
    description: null,
    time_zone: 'Europe/Helsinki',
    reading_type: 'consumption',
    rollover_value: null,
    metadata: {},
    active: true,
    first_seen: 0,
    last_seen: 0,
    sync_run_id: 'run-1',
    ...over,
  };
}

export function interval(
  start: number,
  end: number,
  value: number,
  over: Partial<UsageInterval> = {},
): UsageInterval {
  return {
    start,
    end,
    channel: 'consumption',
    value,
    value_canonical: value,
    currency: null,
    estimated: false,
    from_readings: false,
    metadata: {},
    ...over,
  };
}

export function batch(intervals: UsageInterval[], over: Partial<UsageBatch> = {}): UsageBatch {
  return {
    connection_id: 'c1',
    provider: 'generic',
    meter_external_id: 'm1',
    sync_run_id: 'run-1',
    unit: 'kWh',
    canonical_unit: 'kWh',
    time_zone: 'Europe/Helsinki',
    source_topic: '',
    source_partition: -1,
    source_offset: -1,
    intervals,
    ...over,
  };
}

export const iso = (s: string): number => Date.parse(s);
