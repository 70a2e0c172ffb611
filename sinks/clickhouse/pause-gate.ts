/**
 * Why a family's consumption is paused. Several reasons can hold at once (ClickHouse failing, the
 * buffer full, the registry unreachable, a consuming error, stopping); the topics are paused when
 * the first reason arrives and resumed when the last one goes, never once the gate is closed.
 */
export type PauseReason = 'clickhouse' | 'buffer' | 'registry' | 'kafka';

export interface GateActions {
  /** Pause the family's topics; `reason` is the one that closed an open gate. */
  pause(reason: PauseReason): void;
  /** Resume them; `reason` is the last one to go. */
  resume(reason: PauseReason): void;
}

export class PauseGate {
  private readonly reasons = new Set<PauseReason>();
  private closed = false;

  constructor(private readonly actions: GateActions) {}

  get paused(): boolean {
    return this.reasons.size > 0;
  }

  pause(reason: PauseReason): void {
    const wasPaused = this.reasons.size > 0;
    this.reasons.add(reason);
    if (!wasPaused) this.actions.pause(reason);
  }

  resume(reason: PauseReason): void {
    if (!this.reasons.delete(reason)) return;
    if (this.reasons.size === 0 && !this.closed) this.actions.resume(reason);
  }

  /** Pauses for `ms`, then lets this reason go (an unref'd timer: it never holds the process). */
  pauseFor(reason: PauseReason, ms: number): void {
    this.pause(reason);
    setTimeout(() => this.resume(reason), ms).unref();
  }

  /** Stopping: reasons still come and go, but the topics are never resumed again. */
  close(): void {
    this.closed = true;
  }
}
