/**
 * What the sink quarantines: a record that cannot be decoded (NORM_DECODE_FAILED) or rows that
 * ClickHouse refuses for their content (SINK_INSERT_REJECTED). One record per Kafka record and
 * reason, built by schemas/quarantine.ts like the processors' ones.
 */
import type { ErrorCode } from '../../lib/errors.js';

export { quarantineMessage } from '../../schemas/quarantine.js';

export const SINK_STAGE = 'sink';

export type SinkReason = Extract<ErrorCode, 'SINK_INSERT_REJECTED' | 'NORM_DECODE_FAILED'>;
