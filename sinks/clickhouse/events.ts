/** Log event names of the ClickHouse sink, in one place (dashboards and alerts key on them). */
export const SINK_EVENTS = {
  started: 'ch.sink.started',
  flushed: 'ch.sink.flushed',
  insertRetry: 'ch.sink.insert.retry',
  insertRecovered: 'ch.sink.insert.recovered',
  bisect: 'ch.sink.insert.bisect',
  quarantined: 'ch.sink.quarantined',
  quarantineRetry: 'ch.sink.quarantine.retry',
  decodeDeferred: 'ch.sink.decode.deferred',
  paused: 'ch.sink.paused',
  resumed: 'ch.sink.resumed',
  commitFailed: 'ch.sink.commit.failed',
  unexpected: 'ch.sink.unexpected',
  draining: 'ch.sink.draining',
  drainIncomplete: 'ch.sink.drain.incomplete',
  stopped: 'ch.sink.stopped',
} as const;
