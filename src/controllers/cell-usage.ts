// What each cell holds, kept in step with the cache's events (kube-scheduler keeps its node infos the same way), so
// an auction reads a cell's usage in O(1) instead of walking every instance placed in the cluster.
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { type Informer, keyOf } from '../lib/informer.ts';

/** The events and lookups CellUsage needs (DiegoCache has them). */
export interface UsageSource {
  actual: Pick<Informer<IActualLRP>, 'on'>;
  tasks: Pick<Informer<ITask>, 'on'>;
  desired: Pick<Informer<IDesiredLRP>, 'on'>;
  actualByDesiredUid: { get(uid: string): IActualLRP[] };
  desiredFor(a: IActualLRP): IDesiredLRP | undefined;
}

/** Whether the object uses resources on the cell it is placed on (what the auction's cell state counts). */
export function holdsCapacity(o: IActualLRP | ITask): boolean {
  if (!o.spec.cellId) return false;
  const state = o.status?.state;
  if (o.kind === 'Task' || 'taskGuid' in o.spec)
    return state === undefined || state === 'Pending' || state === 'Running';
  return state !== 'CRASHED';
}

/** One cell's usage by the work placed on it. */
export interface Usage {
  memoryMb: number;
  diskMb: number;
  containers: number;
  /** Work placed but not running yet (an instance not RUNNING, a Pending task). */
  starting: number;
  tasks: number;
  /** Instances per process guid. */
  readonly lrps: Map<string, number>;
}

/** What one object adds to its cell's usage. */
interface Share {
  cellId: string;
  memoryMb: number;
  diskMb: number;
  starting: boolean;
  /** The instance's app; undefined for a task. */
  processGuid?: string;
}

const sameShare = (a: Share | undefined, b: Share | undefined): boolean =>
  a === b ||
  (!!a &&
    !!b &&
    a.cellId === b.cellId &&
    a.memoryMb === b.memoryMb &&
    a.diskMb === b.diskMb &&
    a.starting === b.starting &&
    a.processGuid === b.processGuid);

export class CellUsage {
  private readonly shares = new Map<string, Share>();
  private readonly byCell = new Map<string, Usage>();
  private readonly cache: UsageSource;

  constructor(cache: UsageSource) {
    this.cache = cache;
    const lrp = (a: IActualLRP) => this.set(`lrp:${keyOf(a)}`, this.lrpShare(a));
    cache.actual.on('add', lrp);
    cache.actual.on('update', lrp);
    cache.actual.on('delete', (a) => this.set(`lrp:${keyOf(a)}`, undefined));
    const task = (t: ITask) => this.set(`task:${keyOf(t)}`, taskShare(t));
    cache.tasks.on('add', task);
    cache.tasks.on('update', task);
    cache.tasks.on('delete', (t) => this.set(`task:${keyOf(t)}`, undefined));
    // An instance's size is its DesiredLRP's: count again when that arrives (after its instances) or is resized.
    const resized = (d: IDesiredLRP, old?: IDesiredLRP) => {
      if (old && old.spec.memoryMb === d.spec.memoryMb && old.spec.diskMb === d.spec.diskMb) return;
      for (const a of cache.actualByDesiredUid.get(d.metadata.uid ?? '')) lrp(a);
    };
    cache.desired.on('add', (d) => resized(d));
    cache.desired.on('update', resized);
  }

  /** The cell's usage (undefined: nothing placed on it). Read-only for callers. */
  of(cellId: string): Readonly<Usage> | undefined {
    return this.byCell.get(cellId);
  }

  private lrpShare(a: IActualLRP): Share | undefined {
    if (!holdsCapacity(a) || !a.spec.cellId) return undefined;
    const d = this.cache.desiredFor(a);
    return {
      cellId: a.spec.cellId,
      memoryMb: d?.spec.memoryMb ?? 0,
      diskMb: d?.spec.diskMb ?? 0,
      starting: a.status?.state !== 'RUNNING',
      processGuid: a.spec.processGuid,
    };
  }

  private set(key: string, next: Share | undefined): void {
    const prev = this.shares.get(key);
    if (sameShare(prev, next)) return;
    if (prev) this.apply(prev, -1);
    if (next) {
      this.shares.set(key, next);
      this.apply(next, 1);
    } else this.shares.delete(key);
  }

  private apply(s: Share, sign: 1 | -1): void {
    let u = this.byCell.get(s.cellId);
    if (!u)
      this.byCell.set(
        s.cellId,
        (u = { memoryMb: 0, diskMb: 0, containers: 0, starting: 0, tasks: 0, lrps: new Map() }),
      );
    u.memoryMb += sign * s.memoryMb;
    u.diskMb += sign * s.diskMb;
    u.containers += sign;
    if (s.starting) u.starting += sign;
    if (s.processGuid === undefined) u.tasks += sign;
    else {
      const n = (u.lrps.get(s.processGuid) ?? 0) + sign;
      if (n > 0) u.lrps.set(s.processGuid, n);
      else u.lrps.delete(s.processGuid);
    }
    if (u.containers === 0) this.byCell.delete(s.cellId);
  }
}

function taskShare(t: ITask): Share | undefined {
  if (!holdsCapacity(t) || !t.spec.cellId) return undefined;
  return {
    cellId: t.spec.cellId,
    memoryMb: t.spec.memoryMb ?? 0,
    diskMb: t.spec.diskMb ?? 0,
    starting: (t.status?.state ?? 'Pending') === 'Pending',
  };
}
