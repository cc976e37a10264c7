// Cell presence, as Diego's Locket presences: a cell is alive while its coordination.k8s.io Lease is renewed
// within leaseDurationSeconds (Diego's TTL: 15 s). Event-driven: each lease update arms a timer for the
// moment it would expire, so a lost cell is noticed on time without polling. Like client-go's leader
// election, expiry counts from when we saw the lease change, not from the cell's own renewTime, so clock
// skew between a cell and the controller (or a late write) cannot make a live cell look dead.
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import type { DiegoCache, Lease } from './cache.ts';

export const DEFAULT_PRESENCE_TTL_S = 15;

/** Emits 'appeared'(cellId) and 'disappeared'(cellId). */
export class CellPresence extends EventEmitter<{ appeared: [string]; disappeared: [string] }> {
  private readonly cache: DiegoCache;
  private readonly log: Logger;
  private readonly present = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;

  constructor(cache: DiegoCache, log: Logger, now: () => number = Date.now) {
    super();
    this.cache = cache;
    this.log = log.child({ component: 'presence' });
    this.now = now;
    cache.leases.on('add', (l) => this.observe(l, this.renewedAt(l)));
    cache.leases.on('update', (l) => this.observe(l, this.now()));
    cache.leases.on('delete', (l) => this.lost(cellIdOf(l)));
  }

  /** Evaluates every lease already in the cache (call after the cache has synced). */
  init(): void {
    for (const lease of this.cache.leases.list()) this.observe(lease, this.renewedAt(lease));
  }

  isPresent(cellId: string): boolean {
    return this.present.has(cellId);
  }

  presentCells(): string[] {
    return [...this.present];
  }

  stop(): void {
    for (const t of this.timers.values()) clearTimeout(t);
    this.timers.clear();
  }

  /** For a lease we did not see change: its own renewTime, but never in our future. */
  private renewedAt(lease: Lease): number | undefined {
    const renew = lease.spec?.renewTime ?? lease.spec?.acquireTime;
    return renew ? Math.min(Date.parse(renew), this.now()) : undefined;
  }

  private observe(lease: Lease, renewedAt: number | undefined): void {
    const cellId = cellIdOf(lease);
    clearTimeout(this.timers.get(cellId));
    if (renewedAt === undefined || !lease.spec?.holderIdentity) return this.lost(cellId);
    const expiry = renewedAt + (lease.spec.leaseDurationSeconds ?? DEFAULT_PRESENCE_TTL_S) * 1000;
    if (expiry <= this.now()) return this.lost(cellId);
    if (!this.present.has(cellId)) {
      this.present.add(cellId);
      this.log.info({ cellId }, 'cell appeared');
      this.emit('appeared', cellId);
    }
    const timer = setTimeout(() => this.lost(cellId), expiry - this.now() + 50);
    timer.unref();
    this.timers.set(cellId, timer);
  }

  private lost(cellId: string): void {
    clearTimeout(this.timers.get(cellId));
    this.timers.delete(cellId);
    if (!this.present.delete(cellId)) return;
    this.log.warn({ cellId }, 'cell disappeared: its lease expired');
    this.emit('disappeared', cellId);
  }
}

/** The lease's holder is the cell id; the lease is named after the Cell object. */
export function cellIdOf(lease: Lease): string {
  return lease.spec?.holderIdentity || lease.metadata?.name || '';
}
