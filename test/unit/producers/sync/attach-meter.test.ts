import { describe, expect, it } from 'vitest';
import { attachMeter } from '../../../../producers/sync/engine.js';
import type { RawEnvelope } from '../../../../schemas/records.js';

const base: RawEnvelope = {
  connection_id: 'c',
  provider: 'enerkey',
  entity_kind: 'usage',
  format: 'enerkey.hourly',
  external_id: '42',
  sync_run_id: 'r',
  request_url: 'http://127.0.0.1/values',
  request_page: null,
  received_at: 0,
  content_type: 'application/json',
  payload: '{}',
  meta: { range_from: '2024-01-01T00:00:00Z' },
};
const meter: RawEnvelope = {
  ...base,
  entity_kind: 'meter',
  format: 'enerkey.meter',
  payload: '{"id":42}',
  meta: { quantity: '{"id":1}', time_zone: 'Europe/Helsinki' },
};

describe('attachMeter', () => {
  it('puts the meter format, payload and meta on a usage chunk, keeping the chunk meta', () => {
    const out = attachMeter(base, meter);
    expect(out.meta).toEqual({
      quantity: '{"id":1}',
      time_zone: 'Europe/Helsinki',
      range_from: '2024-01-01T00:00:00Z',
      meter_format: 'enerkey.meter',
      meter_payload: '{"id":42}',
    });
    expect(out.payload).toBe(base.payload);
  });

  it('leaves entities, chunks without a known meter and chunks that already carry one alone', () => {
    expect(attachMeter(meter, meter)).toBe(meter);
    expect(attachMeter(base, undefined)).toBe(base);
    const carried = { ...base, meta: { meter_payload: 'x' } };
    expect(attachMeter(carried, meter)).toBe(carried);
  });
});
