// Cell presence, as Diego's Locket presences: a cell is alive while its coordination.k8s.io Lease is renewed
// within leaseDurationSeconds (Diego's TTL: 15 s). Event-driven: each lease update arms a timer for the
// moment it would expire, so a lost cell is noticed on time without polling. Like client-go's leader
// election, expiry counts from when we saw the lease change, not from the cell's own renewTime, so clock
// skew between a cell and the controller (or a late write) cannot make a live cell look dead.
// Not on stale evidence either: a new leader times every lease from its own first look (renewals it did not see
// prove nothing either way), and before a cell is declared lost its lease is read once more — a renewal the
// watch has not delivered keeps it, an API server that cannot answer postpones the verdict, and after an outage
// every cell gets a full TTL from the API's return to renew (its renewals failed for the same reason ours did).
import { EventEmitter } from 'node:events';
import type { Logger } from 'pino';
import { DEFAULT_PRESENCE_TTL_S } from '../lifecycle/names.ts';
import type { DiegoCache, Lease } from './cache.ts';

/** Emits 'appeared'(cellId) and 'disappeared'(cellId). */
export class CellPresence extends EventEmitter<{ appeared: [string]; disappeared: [string] }> {
  private readonly cache: DiegoCache;
  private readonly log: Logger;
  private readonly present = new Set<string>();
  private readonly timers = new Map<string, NodeJS.Timeout>();
  private readonly now: () => number;

  /** Reads a lease by name from the API server (undefined: gone); absent: the cache's word is final. */
  private readonly readLease?: (name: string) => Promise<Lease | undefined>;
  /** When a confirming read last failed (the API server was unreachable). */
  private apiFailedAt = -Infinity;
  /** Bumped at each observation of a cell: an expiry check started before a newer observation gives up. */
  private readonly epochs = new Map<string, number>();

  constructor(
    cache: DiegoCache,
    log: Logger,
    now: () => number = Date.now,
    readLease?: (name: string) => Promise<Lease | undefined>,
  ) {
    super();
    this.cache = cache;
    this.log = log.child({ component: 'presence' });
    this.now = now;
    this.readLease = readLease;
    cache.leases.on('add', (l) => this.observe(l, this.renewedAt(l)));
    cache.leases.on('update', (l) => this.observe(l, this.now()));
    cache.leases.on('delete', (l) => this.lost(cellIdOf(l)));
  }

  /**
   * Evaluates every lease already in the cache (call after the cache has synced). With a confirming read (a
   * leader), each lease is timed from now, the leader's own first look; a lease long expired then gets one TTL.
   */
  init(): void {
    for (const lease of this.cache.leases.list())
      this.observe(lease, this.readLease ? this.now() : this.renewedAt(lease));
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
    const seen = lease.metadata?.resourceVersion;
    const epoch = (this.epochs.get(cellId) ?? 0) + 1;
    this.epochs.set(cellId, epoch);
    const timer = setTimeout(() => void this.expire(lease, seen, epoch), expiry - this.now() + 50);
    timer.unref();
    this.timers.set(cellId, timer);
  }

  /** A cell's lease looks expired: confirm with a fresh read (when we can) before declaring it lost. */
  private async expire(lease: Lease, seenVersion: string | undefined, epoch: number): Promise<void> {
    const cellId = cellIdOf(lease);
    if (!this.readLease) return this.lost(cellId);
    const ttlMs = (lease.spec?.leaseDurationSeconds ?? DEFAULT_PRESENCE_TTL_S) * 1000;
    const later = (ms: number) => {
      const timer = setTimeout(() => void this.expire(lease, seenVersion, epoch), ms);
      timer.unref();
      this.timers.set(cellId, timer);
    };
    let fresh: Lease | undefined;
    try {
      fresh = await this.readLease(lease.metadata?.name ?? cellId);
    } catch (err) {
      this.apiFailedAt = this.now();
      this.log.warn({ err, cellId }, 'cannot read the lease of a cell that looks lost: not judging it yet');
      return later(1000);
    }
    if (this.epochs.get(cellId) !== epoch || !this.timers.has(cellId)) return; // observed (or lost) meanwhile
    if (fresh && fresh.metadata?.resourceVersion !== seenVersion) return this.observe(fresh, this.now());
    const graceUntil = this.apiFailedAt + ttlMs;
    if (fresh && graceUntil > this.now()) return later(graceUntil - this.now() + 50);
    this.lost(cellId);
  }

  private lost(cellId: string): void {
    clearTimeout(this.timers.get(cellId));
    this.timers.delete(cellId);
    this.epochs.set(cellId, (this.epochs.get(cellId) ?? 0) + 1);
    if (!this.present.delete(cellId)) return;
    this.log.warn({ cellId }, 'cell disappeared: its lease expired');
    this.emit('disappeared', cellId);
  }
}

/** The lease's holder is the cell id; the lease is named after the Cell object. */
export function cellIdOf(lease: Lease): string {
  return lease.spec?.holderIdentity || lease.metadata?.name || '';
}
