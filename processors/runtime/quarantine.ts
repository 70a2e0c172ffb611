/**
 * The processors' side of quarantine: a batch's rejections are collected by (source message,
 * reason) and become one record each (schemas/quarantine.ts builds them), so a message whose
 * rows all fail costs one copy of its bytes, not one per row.
 */
import { RejectedRows, buildQuarantineRecord } from '../../schemas/quarantine.js';
import type { QuarantineRecord } from '../../schemas/records.js';
import type { InMessage, Rejection } from './stage.js';

export { connectionOfKey } from '../../schemas/topics.js';

interface Group {
  source: InMessage;
  connectionId: string | null;
  connectionVersion: number | null;
  rows: number | null;
  rejected: RejectedRows;
}

export class RejectionGroups {
  private readonly groups = new Map<string, Group>();

  get size(): number {
    return this.groups.size;
  }

  add(source: InMessage, rejection: Rejection): void {
    const k = `${source.topic}\u0000${source.partition}\u0000${source.offset}\u0000${rejection.code}`;
    let g = this.groups.get(k);
    if (!g) {
      g = {
        source,
        connectionId: null,
        connectionVersion: null,
        rows: null,
        rejected: new RejectedRows(rejection.code),
      };
      this.groups.set(k, g);
    }
    g.connectionId ??= rejection.connectionId;
    g.connectionVersion ??= rejection.connectionVersion ?? null;
    if (rejection.rows !== undefined) g.rows = Math.max(g.rows ?? 0, rejection.rows);
    g.rejected.add(rejection.recordIndex, rejection.message, rejection.detail);
  }

  /** One record per group, in the order the groups began; empties the collector. */
  take(stage: string, now: number): QuarantineRecord[] {
    const out: QuarantineRecord[] = [];
    for (const g of this.groups.values()) {
      out.push(
        buildQuarantineRecord({
          stage,
          source: g.source,
          connectionId: g.connectionId,
          rejected: g.rejected,
          rows: g.rows,
          now,
          connectionVersion: g.connectionVersion,
        }),
      );
    }
    this.groups.clear();
    return out;
  }
}
