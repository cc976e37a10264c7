// The auctioneer's recent decisions, kept for the live web view (web-view.ts): a small ring buffer, so recording one
// costs O(1) and the memory is bounded whatever the placement rate.
import type { Explanation } from '../auction/index.ts';

/** One auction outcome for one piece of work: where it went and with what score, or why it was not placed. */
export interface AuctionDecision {
  /** When the auction ran (ms since the epoch). */
  at: number;
  kind: 'lrp' | 'task';
  /** namespace/name of the ActualLRP or Task. */
  key: string;
  processGuid?: string;
  index?: number;
  taskGuid?: string;
  /** Set when placed. */
  cellId?: string;
  zone?: string;
  score?: number;
  /** Set when not placed. */
  placementError?: string;
  explanation: Explanation;
}

export interface DecisionSink {
  record(d: AuctionDecision): void;
}

export class RecentDecisions implements DecisionSink {
  readonly capacity: number;
  private readonly ring: AuctionDecision[] = [];
  private next = 0;
  private readonly listeners = new Set<() => void>();

  constructor(capacity = 100) {
    this.capacity = Math.max(1, capacity);
  }

  record(d: AuctionDecision): void {
    if (this.ring.length < this.capacity) this.ring.push(d);
    else this.ring[this.next] = d;
    this.next = (this.next + 1) % this.capacity;
    for (const fn of this.listeners) fn();
  }

  /** Newest first. */
  list(): AuctionDecision[] {
    const n = this.ring.length;
    const out: AuctionDecision[] = [];
    for (let i = 1; i <= n; i++) out.push(this.ring[(this.next - i + n) % n]!);
    return out;
  }

  /** Called after each record (the web view marks itself dirty); returns the unsubscribe function. */
  onRecord(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }
}
