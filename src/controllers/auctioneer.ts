// The auctioneer: places unplaced ActualLRPs and pending Tasks on cells with Diego's auction (src/auction).
// A batch is whatever became unplaced while the previous auction ran, as in Diego. A placement is a
// compare-and-swap write of spec.cellId; the chosen cell's agent then claims the work. Work that finds no
// cell waits for a capacity change (a cell appears, frees resources, or changes) instead of Diego's 30-60 s.
import type { Logger } from 'pino';
import { withDefaults } from '../lib/options.ts';
import {
  type AuctionConfig,
  type AuctionResults,
  type CellState,
  explain,
  type LRPAuction,
  type Placement,
  type PlacementFailure,
  runAuction,
  type TaskAuction,
} from '../auction/index.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import type { EventRecorder } from '../lib/events.ts';
import { keyOf } from '../lib/informer.ts';
import { DiegoClient, isConflict, isNotFound, refOf } from '../lib/resources.ts';
import { isUnclaimedOrdinary, type PlacementAtCreation } from '../lifecycle/actual-lrp.ts';
import { ANNOTATION_PLACEMENT, actualLRPName } from '../lifecycle/names.ts';
import { failPlacement, place, rejectTask } from '../lifecycle/ops.ts';
import { DEFAULT_MAX_TASK_RETRIES } from '../lifecycle/task.ts';
import type { DiegoCache } from './cache.ts';
import { setCondition, type Condition } from './conditions.ts';
import { pool } from '../lib/pool.ts';
import { metrics } from './metrics.ts';
import type { CellPresence } from './presence.ts';
import { CellUsage, holdsCapacity } from './cell-usage.ts';
import type { AuctionDecision, DecisionSink } from './auction-decisions.ts';

export interface AuctioneerOptions {
  client: DiegoClient;
  cache: DiegoCache;
  presence: CellPresence;
  log: Logger;
  config?: Partial<AuctionConfig>;
  /** Diego: tasks.max_retries 3. */
  maxTaskRetries?: number;
  commitConcurrency?: number;
  /** Where "why here / why not placed" events go (kubectl describe); none if absent. */
  events?: EventRecorder;
  /** Parked work is retried at least this often even without a capacity change (Diego: 30 s convergence). */
  retryIntervalMs?: number;
  now?: () => number;
  /** Where each placement and failure is also recorded (the web view's recent decisions); none if absent. */
  decisions?: DecisionSink;
}

interface Assumed {
  cellId: string;
  processGuid?: string;
  index?: number;
  memoryMb: number;
  diskMb: number;
}

export class Auctioneer {
  private readonly o: AuctioneerOptions & {
    maxTaskRetries: number;
    commitConcurrency: number;
    retryIntervalMs: number;
    now: () => number;
  };
  private retryTimer?: NodeJS.Timeout;
  /** An auction asked for after a placement write failed on an API error (one at a time). */
  private retrySoon?: NodeJS.Timeout;
  private readonly log: Logger;
  /** Bumped whenever capacity may have appeared; parked work is retried when it moves. */
  private capacityVersion = 0;
  private readonly parked = new Map<string, number>();
  /**
   * Placements written but not yet seen in the cache (kube-scheduler's "assumed" pods): the next auction
   * must count them, or back-to-back auctions would overfill cells and unbalance zones.
   */
  private readonly assumed = new Map<string, Assumed>();
  /** Each cell's usage, kept from the cache's events (registered before start(), so it is current when an auction runs). */
  private readonly usage: CellUsage;
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(opts: AuctioneerOptions) {
    this.o = withDefaults(
      { maxTaskRetries: DEFAULT_MAX_TASK_RETRIES, commitConcurrency: 32, retryIntervalMs: 30_000, now: Date.now },
      opts,
    );
    this.log = opts.log.child({ component: 'auctioneer' });
    this.usage = new CellUsage(opts.cache);
  }

  start(): void {
    const { cache, presence } = this.o;
    const capacity = () => this.capacityChanged();
    cache.cells.on('add', capacity);
    cache.cells.on('update', capacity);
    cache.cells.on('delete', capacity);
    presence.on('appeared', capacity);
    presence.on('disappeared', capacity);
    const seen = (o: IActualLRP | ITask) => {
      if (o.spec.cellId || o.metadata.deletionTimestamp) this.assumed.delete(keyOf(o));
    };
    // Work that stops holding resources on a cell (left it, crashed, completed, deleted) frees capacity.
    const onChange = <T extends IActualLRP | ITask>(obj: T, old: T | undefined, unplaced: (o: T) => boolean) => {
      seen(obj);
      if (old && holdsCapacity(old) && !holdsCapacity(obj)) this.capacityChanged();
      else if (unplaced(obj)) this.kick();
    };
    const lrpUnplaced = (a: IActualLRP) => this.isUnplacedLRP(a);
    const taskUnplaced = (t: ITask) => this.isUnplacedTask(t);
    cache.actual.on('add', (a) => onChange(a, undefined, lrpUnplaced));
    cache.actual.on('update', (a, old) => onChange(a, old, lrpUnplaced));
    cache.tasks.on('add', (t) => onChange(t, undefined, taskUnplaced));
    cache.tasks.on('update', (t, old) => onChange(t, old, taskUnplaced));
    const onDelete = (o: IActualLRP | ITask) => {
      this.assumed.delete(keyOf(o));
      if (holdsCapacity(o)) this.capacityChanged();
    };
    cache.actual.on('delete', onDelete);
    cache.tasks.on('delete', onDelete);
    this.retryTimer = setInterval(() => this.capacityChanged(), this.o.retryIntervalMs);
    this.retryTimer.unref();
    this.kick();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.retryTimer);
    clearTimeout(this.retrySoon);
    await this.running;
  }

  capacityChanged(): void {
    this.capacityVersion++;
    this.kick();
  }

  /** Asks for an auction; if one is running, another runs right after it with whatever arrived meanwhile. */
  kick(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = (async () => {
      do {
        this.again = false;
        try {
          await this.auction();
        } catch (err) {
          this.log.error({ err }, 'auction failed; retrying on the next change');
        }
      } while (this.again && !this.stopped);
      this.running = undefined;
    })();
  }

  private isUnplacedLRP(a: IActualLRP): boolean {
    return (
      !a.metadata.deletionTimestamp && !a.spec.cellId && isUnclaimedOrdinary(a) // a new record has no status yet: UNCLAIMED
    );
  }

  private isUnplacedTask(t: ITask): boolean {
    return (
      !t.metadata.deletionTimestamp &&
      !t.spec.cellId &&
      !t.spec.cancelled &&
      (t.status?.state ?? 'Pending') === 'Pending'
    );
  }

  private isParked(key: string): boolean {
    const at = this.parked.get(key);
    if (at === undefined) return false;
    if (at < this.capacityVersion) {
      this.parked.delete(key);
      return false;
    }
    return true;
  }

  /** One auction: collect the batch, fetch cell states, run the pure auction, commit. */
  private async auction(): Promise<void> {
    const { cache } = this.o;
    const lrps: LRPAuction[] = [];
    const lrpObjects = new Map<string, IActualLRP>();
    for (const a of cache.actual.list()) {
      const key = keyOf(a);
      if (!this.isUnplacedLRP(a) || this.isParked(key) || this.assumed.has(key)) continue;
      const d = cache.desiredFor(a);
      if (!d || d.metadata.deletionTimestamp || this.suspectIsBack(d.metadata.name ?? '', a)) continue;
      lrps.push({
        key,
        processGuid: a.spec.processGuid,
        index: a.spec.index,
        rootFs: d.spec.rootFs,
        memoryMb: d.spec.memoryMb ?? 0,
        diskMb: d.spec.diskMb ?? 0,
        placementTags: d.spec.placementTags ?? [],
        volumeDrivers: (d.spec.volumeMounts ?? []).map((v) => v.driver),
      });
      lrpObjects.set(key, a);
    }
    const tasks: TaskAuction[] = [];
    const taskObjects = new Map<string, ITask>();
    for (const t of cache.tasks.list()) {
      const key = keyOf(t);
      if (!t.status?.state || !this.isUnplacedTask(t) || this.isParked(key) || this.assumed.has(key)) continue;
      tasks.push({
        key,
        taskGuid: t.spec.taskGuid,
        rootFs: t.spec.rootFs,
        memoryMb: t.spec.memoryMb ?? 0,
        diskMb: t.spec.diskMb ?? 0,
        placementTags: t.spec.placementTags ?? [],
        volumeDrivers: (t.spec.volumeMounts ?? []).map((v) => v.driver),
      });
      taskObjects.set(key, t);
    }
    if (lrps.length === 0 && tasks.length === 0) return;
    const done = metrics.auctionDuration.startTimer();
    const fetched = metrics.fetchStatesDuration.startTimer();
    const cells = this.cellStates();
    fetched();
    const results = runAuction(cells, lrps, tasks, this.o.config);
    this.log.info(
      {
        lrps: lrps.length,
        tasks: tasks.length,
        cells: cells.length,
        lrpsPlaced: results.lrps.placed.length,
        tasksPlaced: results.tasks.placed.length,
      },
      'auction ran',
    );
    const writes: (() => Promise<void>)[] = [];
    for (const p of results.lrps.placed) {
      const a = lrpObjects.get(p.auction.key)!;
      const { processGuid, index, memoryMb, diskMb } = p.auction;
      this.assumed.set(p.auction.key, { cellId: p.cellId, processGuid, index, memoryMb, diskMb });
      writes.push(() => this.place('ActualLRP', a, p.cellId, explain(p.explanation)));
    }
    for (const p of results.tasks.placed) {
      const t = taskObjects.get(p.auction.key)!;
      this.assumed.set(p.auction.key, { cellId: p.cellId, memoryMb: p.auction.memoryMb, diskMb: p.auction.diskMb });
      writes.push(() => this.place('Task', t, p.cellId, explain(p.explanation)));
    }
    for (const f of results.lrps.failed) {
      const a = lrpObjects.get(f.auction.key)!;
      this.parked.set(f.auction.key, this.capacityVersion);
      writes.push(() => this.failLRP(a, f.placementError, explain(f.explanation)));
    }
    for (const f of results.tasks.failed) {
      const t = taskObjects.get(f.auction.key)!;
      this.parked.set(f.auction.key, this.capacityVersion);
      writes.push(() => this.rejectTask(t, f.placementError, explain(f.explanation)));
    }
    this.recordDecisions(results);
    metrics.lrpAuctionsStarted.inc(results.lrps.placed.length);
    metrics.lrpAuctionsFailed.inc(results.lrps.failed.length);
    metrics.taskAuctionsStarted.inc(results.tasks.placed.length);
    metrics.taskAuctionsFailed.inc(results.tasks.failed.length);
    await pool(writes, this.o.commitConcurrency);
    done();
  }

  /**
   * Places new instances of `d` before they exist, so the converger creates each one already on its cell: one write
   * for creation and placement instead of two. The same auction as for unplaced work, over the same cell states
   * (what is placed, plus what is assumed), run synchronously, so it cannot interleave with another auction's
   * choice. Indices it cannot place are left out: they are created unplaced and the regular auction says why.
   * Each placement is assumed until the created record is seen; the caller calls creationFailed when it was not
   * created.
   */
  placeAtCreation(d: IDesiredLRP, indices: readonly number[]): Map<number, PlacementAtCreation> {
    const out = new Map<number, PlacementAtCreation>();
    if (this.stopped || indices.length === 0 || d.metadata.deletionTimestamp) return out;
    const namespace = d.metadata.namespace ?? '';
    const desiredName = d.metadata.name ?? '';
    const lrps: LRPAuction[] = [];
    for (const index of indices) {
      const name = actualLRPName(desiredName, index);
      // The index's SUSPECT copy is on a cell that came back: the converger promotes it; do not start another.
      if (this.suspectIsBack(desiredName, { metadata: { namespace }, spec: { index } })) continue;
      lrps.push({
        key: `${namespace}/${name}`,
        processGuid: d.spec.processGuid,
        index,
        rootFs: d.spec.rootFs,
        memoryMb: d.spec.memoryMb ?? 0,
        diskMb: d.spec.diskMb ?? 0,
        placementTags: d.spec.placementTags ?? [],
        volumeDrivers: (d.spec.volumeMounts ?? []).map((v) => v.driver),
      });
    }
    if (lrps.length === 0) return out;
    const done = metrics.auctionDuration.startTimer();
    const fetched = metrics.fetchStatesDuration.startTimer();
    const cells = this.cellStates();
    fetched();
    const results = runAuction(cells, lrps, [], this.o.config);
    done();
    this.recordDecisions(results);
    for (const p of results.lrps.placed) {
      const { key, processGuid, index, memoryMb, diskMb } = p.auction;
      this.assumed.set(key, { cellId: p.cellId, processGuid, index, memoryMb, diskMb });
      out.set(index, { cellId: p.cellId, annotations: { [ANNOTATION_PLACEMENT]: explain(p.explanation) } });
    }
    metrics.lrpAuctionsStarted.inc(results.lrps.placed.length);
    return out;
  }

  private recordDecisions(results: AuctionResults): void {
    const sink = this.o.decisions;
    if (!sink) return;
    const at = this.o.now();
    // Placed, then failed, in the order the auction returned them.
    for (const r of [...results.lrps.placed, ...results.lrps.failed]) {
      const { key, processGuid, index } = r.auction;
      sink.record({ at, kind: 'lrp', key, processGuid, index, ...outcome(r), explanation: r.explanation });
    }
    for (const r of [...results.tasks.placed, ...results.tasks.failed]) {
      const { key, taskGuid } = r.auction;
      sink.record({ at, kind: 'task', key, taskGuid, ...outcome(r), explanation: r.explanation });
    }
  }

  /** A placement made by placeAtCreation whose record was not created (it existed, or the write failed). */
  creationFailed(namespace: string, name: string): void {
    this.assumed.delete(`${namespace}/${name}`);
  }

  /** An auction in a second (not at once: the API server that just failed a write may still be down). */
  private auctionSoon(): void {
    if (this.retrySoon || this.stopped) return;
    this.retrySoon = setTimeout(() => {
      this.retrySoon = undefined;
      this.kick();
    }, 1000);
    this.retrySoon.unref();
  }

  /** The index's SUSPECT copy is on a cell that came back: the converger promotes it; don't start another. */
  private suspectIsBack(
    desiredName: string,
    a: { metadata: { namespace?: string }; spec: { index: number } },
  ): boolean {
    const copy = this.o.cache.actual.get(a.metadata.namespace, actualLRPName(desiredName, a.spec.index, 'SUSPECT'));
    return !!copy?.spec.cellId && !copy.metadata.deletionTimestamp && this.o.presence.isPresent(copy.spec.cellId);
  }

  /**
   * Cell states from the cache: capacity from the Cell, usage from the work placed on it (kept incrementally) and
   * the placements assumed. Costs O(cells + assumed), whatever the number of instances.
   */
  cellStates(): CellState[] {
    const { cache, presence } = this.o;
    const assumedOn = new Map<string, Assumed[]>();
    for (const p of this.assumed.values()) {
      const list = assumedOn.get(p.cellId);
      if (list) list.push(p);
      else assumedOn.set(p.cellId, [p]);
    }
    const states: CellState[] = [];
    for (const cell of cache.cells.list()) {
      const cellId = cell.spec.cellId;
      if (!presence.isPresent(cellId) || cell.metadata.deletionTimestamp) continue;
      const total = cell.spec.capacity;
      const used = this.usage.of(cellId);
      let memoryMb = used?.memoryMb ?? 0,
        diskMb = used?.diskMb ?? 0,
        containers = used?.containers ?? 0,
        starting = used?.starting ?? 0,
        taskCount = used?.tasks ?? 0;
      const lrps: { processGuid: string; index: number }[] = [];
      for (const p of assumedOn.get(cellId) ?? []) {
        memoryMb += p.memoryMb;
        diskMb += p.diskMb;
        containers++;
        starting++;
        if (p.processGuid !== undefined) lrps.push({ processGuid: p.processGuid, index: p.index ?? 0 });
        else taskCount++;
      }
      // What the cell's rep reports it has left also bounds it: containers the auction does not count (still being
      // destroyed, adopted after a restart) hold real resources, and the rep would hand back what does not fit.
      const reported = cell.status?.available;
      states.push({
        cellId,
        zone: cell.spec.zone ?? '',
        rootfsProviders: cell.spec.rootfsProviders ?? [],
        volumeDrivers: cell.spec.volumeDrivers ?? [],
        placementTags: cell.spec.placementTags ?? [],
        optionalPlacementTags: cell.spec.optionalPlacementTags ?? [],
        total,
        available: {
          memoryMb: Math.min(total.memoryMb - memoryMb, reported?.memoryMb ?? Infinity),
          diskMb: Math.min(total.diskMb - diskMb, reported?.diskMb ?? Infinity),
          containers: Math.min(total.containers - containers, reported?.containers ?? Infinity),
        },
        startingContainers: starting,
        lrps,
        ...(used ? { lrpCounts: used.lrps } : {}),
        tasks: taskCount,
        evacuating: cell.status?.evacuating ?? false,
      });
    }
    return states;
  }

  private async place(kind: 'ActualLRP' | 'Task', obj: IActualLRP | ITask, cellId: string, why: string): Promise<void> {
    let placement;
    try {
      placement = await place(this.o.client, obj, cellId, { [ANNOTATION_PLACEMENT]: why });
    } catch (err) {
      // No answer (the API server restarting, etcd down): the placement may or may not have landed. Not assumed any
      // more, so the work is auctioned again — a compare-and-swap on the version this auction saw, which a landed
      // placement has moved on from (moved-on, and the cache then shows where it went).
      this.assumed.delete(keyOf(obj));
      this.auctionSoon();
      throw err;
    }
    if (placement.outcome !== 'done') {
      // Someone else changed it since the auction read it (another leader, the converger): it comes back
      // through the cache and is auctioned again if it still needs a cell.
      this.assumed.delete(keyOf(obj));
      return;
    }
    // Why here is on the record (the placement annotation): no Event per placement, which would be one more write
    // per instance and, under load, mostly dropped by the recorder's spam filter anyway.
    const placed = placement.value;
    const conditions = placed.status?.conditions;
    if (conditions?.some((c) => c.type === 'Scheduled' && c.status === 'False')) {
      // It failed before: say it is placed now (one more write, only for work that had waited).
      try {
        await this.o.client.patchStatus(kind, refOf(placed), {
          conditions: setCondition(conditions, { type: 'Scheduled', status: 'True', reason: 'Placed', message: why }),
        });
      } catch (err) {
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    }
  }

  private async failLRP(a: IActualLRP, placementError: string, why: string): Promise<void> {
    if (a.status?.placementError === placementError) return;
    const scheduled: Omit<Condition, 'lastTransitionTime'> = {
      type: 'Scheduled',
      status: 'False',
      reason: 'PlacementFailed',
      message: why,
    };
    const failed = await failPlacement(this.o.client, a, placementError, {
      now: this.o.now(),
      extra: { conditions: setCondition(a.status?.conditions, scheduled) },
    });
    if (failed.outcome !== 'done') return; // moved on meanwhile: the cache brings the newer version
    this.log.info({ key: keyOf(a), placementError }, 'instance not placed');
    this.o.events?.record(a, 'Warning', 'PlacementFailed', `${placementError}: ${why}`);
  }

  /** Diego's RejectTask: count the rejection; past max retries the task fails with the reason. */
  private async rejectTask(t: ITask, reason: string, why: string): Promise<void> {
    const count = t.status?.rejectionCount ?? 0;
    const rejected = await rejectTask(this.o.client, t, reason, {
      maxRetries: this.o.maxTaskRetries,
      now: new Date(this.o.now()),
    });
    if (rejected.outcome !== 'done') return; // moved on meanwhile: the cache brings the newer version
    this.log.info(
      { key: keyOf(t), reason, rejections: count + 1, failed: count >= this.o.maxTaskRetries },
      'task not placed',
    );
    this.o.events?.record(t, 'Warning', 'PlacementFailed', `${reason}: ${why}`);
  }
}

/** A decision's outcome fields: where it went, or why it was not placed. */
function outcome(
  r: Placement<unknown> | PlacementFailure<unknown>,
): Pick<AuctionDecision, 'cellId' | 'zone' | 'score' | 'placementError'> {
  return 'placementError' in r
    ? { placementError: r.placementError }
    : { cellId: r.cellId, zone: r.zone, score: r.score };
}
