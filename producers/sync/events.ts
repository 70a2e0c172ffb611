/** Named sync events (log `event` field and the optional `onEvent` observer). */
export const SYNC_EVENTS = {
  runStarted: 'sync.run.started',
  runFinished: 'sync.run.finished',
  runSkipped: 'sync.run.skipped',
  stateLoaded: 'sync.state.loaded',
  connectionPublished: 'sync.connection.published',
  entitiesEmitted: 'sync.entities.emitted',
  snapshotComplete: 'sync.snapshot.complete',
  snapshotPartial: 'sync.snapshot.partial',
  chunkCommitted: 'sync.chunk.committed',
  batchFailed: 'sync.batch.failed',
} as const;

export type SyncEventName = (typeof SYNC_EVENTS)[keyof typeof SYNC_EVENTS];

export interface SyncEvent {
  name: SyncEventName;
  connectionId: string;
  runId: string;
  data: Record<string, unknown>;
}
