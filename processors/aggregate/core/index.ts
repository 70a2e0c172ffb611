/**
 * Aggregation core: slots → day and month aggregates in local time. Pure; see state.ts.
 */
export {
  AggregateState,
  DEFAULT_AGGREGATE_OPTIONS,
  type AggregateOptions,
  type ApplyResult,
  type ChangelogEntry,
} from './state.js';
export { channelKey, type ChannelIdentity } from './channel.js';
export {
  calendarFor,
  dateToDayNo,
  dayNoToDate,
  isValidTimeZone,
  offsetAt,
  wallToInstant,
  ZoneCalendar,
} from './zone.js';
