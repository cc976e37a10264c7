// The converger's bounds on its own write path (docs/adr/0003-bounded-converger-writes.md): how many writes it has in
// flight, how far ahead of a changed DesiredLRP it may create, how many orphans one pass removes, and how long a
// removal that failed waits. The decisions are pure; converger.ts applies them.
import type { IDesiredLRP } from '../crds/models.ts';

/**
 * Instances created per wave. Between waves the converger re-reads the DesiredLRP from the cache: a scale-down (or a
 * deletion) while a large scale-up is being created stops it within one wave (it used to be honoured only after every
 * instance of the scale-up was created: 12,500 more after 100k were scaled to 0).
 */
export const CREATE_WAVE = 64;

/** Removal writes (extra instances of one LRP, orphans of a pass) in flight at once. */
export const REMOVE_CONCURRENCY = 8;

/**
 * Orphans (instances whose DesiredLRP is gone) one periodic pass removes at most; the rest wait for the next pass.
 * Each removal is a delete and then, once it comes back, the release of the container finalizer. A pass that fired one
 * removal per orphan at once (14k orphans) made 41k failed requests and cost the controller its lease.
 */
export const ORPHANS_PER_PASS = 256;

/** Writes of a fan-out that failed: the worker waits this long (doubling, capped) before its next write. */
export const FANOUT_BACKOFF = { baseMs: 50, maxMs: 5_000 } as const;

/** A removal that failed is not tried again for this long (doubling with each failure, capped). */
export const REMOVAL_BACKOFF = { baseMs: 1_000, maxMs: 5 * 60_000 } as const;

/**
 * The indices of a creation still to make after a wave, given the DesiredLRP as the cache has it now (its latest
 * version): none once it is gone, replaced (another uid) or being deleted; only those below its count after a
 * scale-down. A scale-up beyond the list is left to the reconcile its update queued.
 */
export function stillToCreate(pending: readonly number[], uid: string, latest: IDesiredLRP | undefined): number[] {
  if (!latest || latest.metadata.uid !== uid || latest.metadata.deletionTimestamp) return [];
  const instances = latest.spec.instances ?? 1;
  return pending.filter((i) => i < instances);
}

/**
 * Per-key exponential backoff for removals that failed (client-go's ItemExponentialFailureRateLimiter, as a deadline
 * instead of a delay, so a periodic pass can skip what is not due yet).
 */
export class Backoff {
  private readonly failures = new Map<string, { count: number; notBefore: number }>();
  private readonly baseMs: number;
  private readonly maxMs: number;

  constructor(opts: { baseMs: number; maxMs: number } = REMOVAL_BACKOFF) {
    this.baseMs = opts.baseMs;
    this.maxMs = opts.maxMs;
  }

  /** Whether `key` may be tried at `now`. */
  due(key: string, now: number): boolean {
    const f = this.failures.get(key);
    return !f || f.notBefore <= now;
  }

  failed(key: string, now: number): void {
    const count = (this.failures.get(key)?.count ?? 0) + 1;
    this.failures.set(key, { count, notBefore: now + Math.min(this.baseMs * 2 ** (count - 1), this.maxMs) });
  }

  succeeded(key: string): void {
    this.failures.delete(key);
  }

  /** Drops keys not in `live` (removed meanwhile), so the map never outgrows the orphans. */
  retain(live: ReadonlySet<string>): void {
    for (const key of this.failures.keys()) if (!live.has(key)) this.failures.delete(key);
  }

  get size(): number {
    return this.failures.size;
  }
}

/** The orphans one pass removes: those whose backoff is over, at most `limit`, in the order given. */
export function orphansForPass<T>(
  orphans: readonly T[],
  keyOf: (o: T) => string,
  backoff: Backoff,
  now: number,
  limit = ORPHANS_PER_PASS,
): T[] {
  const picked: T[] = [];
  for (const o of orphans) {
    if (picked.length >= limit) break;
    if (backoff.due(keyOf(o), now)) picked.push(o);
  }
  return picked;
}

/** How long a created instance is expected to show in the cache before the converger stops waiting for it. */
export const EXPECTATION_TTL_MS = 30_000;

/**
 * Instances the converger created that its cache has not shown yet (the ReplicaSet controller's "expectations"): a
 * reconcile that runs before the create's event arrives would see the index missing and create it again — a failed
 * create (AlreadyExists) that still costs the API server a write (39 % more creates at 200 instances, measured).
 * Forgotten when the record shows up, or after EXPECTATION_TTL_MS (an event lost for good: the create is tried again).
 */
export class Expectations {
  private readonly byUid = new Map<string, Map<number, number>>();

  created(uid: string, index: number, now: number): void {
    let m = this.byUid.get(uid);
    if (!m) this.byUid.set(uid, (m = new Map<number, number>()));
    m.set(index, now);
  }

  seen(uid: string, index: number): void {
    const m = this.byUid.get(uid);
    if (!m) return;
    m.delete(index);
    if (m.size === 0) this.byUid.delete(uid);
  }

  forget(uid: string): void {
    this.byUid.delete(uid);
  }

  /** The indices of `uid` still expected at `now`. */
  pending(uid: string, now: number): Set<number> {
    const out = new Set<number>();
    const m = this.byUid.get(uid);
    if (!m) return out;
    for (const [index, at] of m) {
      if (now - at < EXPECTATION_TTL_MS) out.add(index);
      else m.delete(index);
    }
    if (m.size === 0) this.byUid.delete(uid);
    return out;
  }
}
