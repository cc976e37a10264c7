// The converger (Diego's LRP convergence): keeps exactly spec.instances ORDINARY ActualLRPs per DesiredLRP,
// restarts crashed ones per the crash policy, handles instances on lost cells (SUSPECT), and removes what
// is no longer desired. Event-driven per DesiredLRP, plus Diego's periodic full pass that repairs drift.
import type { Logger } from 'pino';
import type { EventRecorder } from '../lib/events.ts';
import { withDefaults } from '../lib/options.ts';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { keyOf } from '../lib/informer.ts';
import { DiegoClient, isConflict, isNamespaceTerminating, isNotFound } from '../lib/resources.ts';
import { pool } from '../lib/pool.ts';
import { WorkQueue, type ReconcileResult } from '../lib/workqueue.ts';
import { describeErrors, validateSpec } from '../webhooks/validate.ts';
import type { DiegoCache } from './cache.ts';
import { conditionUnchanged, setCondition, type Condition } from './conditions.ts';
import { crashEvent, desiredConditions } from './explain.ts';
import { evacuatedByOf, type PlacementAtCreation } from '../lifecycle/actual-lrp.ts';
import { decide, type InstanceAction } from './converge-decision.ts';
import { judgeEvacuatingCopy } from '../lifecycle/evacuation.ts';
import { actualLRPName, LABEL_DESIRED_LRP_UID, selectorFor } from '../lifecycle/names.ts';
import {
  CREATE_CONCURRENCY,
  createInstance,
  createSuspect,
  forgetEvacuation,
  getOrUndefined,
  type Outcome,
  promoteSuspect,
  releaseContainer,
  remove,
  removeCopy,
  unclaim,
  unplace,
} from '../lifecycle/ops.ts';
import {
  Backoff,
  CREATE_WAVE,
  Expectations,
  FANOUT_BACKOFF,
  orphansForPass,
  REMOVE_CONCURRENCY,
  stillToCreate,
} from './converge-plan.ts';
import { metrics } from './metrics.ts';
import type { CellPresence } from './presence.ts';

export interface ConvergerOptions {
  client: DiegoClient;
  cache: DiegoCache;
  presence: CellPresence;
  log: Logger;
  /** Diego: convergence.repeat_interval 30 s. */
  convergeIntervalMs?: number;
  /** Called when instances may need placing (the auctioneer's kick). */
  onUnplacedWork?: () => void;
  /**
   * Chooses cells for instances about to be created (the auctioneer), so each is created on its cell in one write.
   * Without it, instances are created unplaced and placed by the auction afterwards (two writes).
   */
  placer?: Placer;
  /** Warning events on a DesiredLRP (a forged EVACUATING copy of one of its instances removed). */
  events?: EventRecorder;
  now?: () => number;
  concurrency?: number;
}

/** What the converger asks of the auctioneer when it creates instances (Auctioneer implements it). */
export interface Placer {
  placeAtCreation(d: IDesiredLRP, indices: readonly number[]): Map<number, PlacementAtCreation>;
  creationFailed(namespace: string, name: string): void;
}

const CONFLICT_RETRY_MS = 50;
/** DesiredLRP status is rewritten at most this often, however many instances change meanwhile. */
const STATUS_COALESCE_MS = 500;

/**
 * When to look at an instance again after a write: a lost race (someone, a cell or the auctioneer, moved it on)
 * shortly, with the newer version; a refusal (the cache's view was behind the rules) when its next event comes.
 */
function lookAgain(o: Outcome<unknown>): number | undefined {
  return o.outcome === 'moved-on' && o.why !== 'exists' ? CONFLICT_RETRY_MS : undefined;
}

export class Converger {
  private readonly o: Required<Omit<ConvergerOptions, 'onUnplacedWork' | 'events' | 'placer'>> &
    Pick<ConvergerOptions, 'onUnplacedWork' | 'events' | 'placer'>;
  private readonly log: Logger;
  private readonly queue: WorkQueue;
  private readonly statusQueue: WorkQueue;
  private readonly removed = new RemovedIndices();
  /** Instances created whose records the cache has not shown yet. */
  private readonly expected = new Expectations();
  /**
   * Uids of forged copies this converger deleted: their finalizer is its to release (the forger will not). Only
   * these: a real copy being deleted waits for its cell to stop the container, whatever its ORDINARY record says.
   */
  private readonly forged = new Set<string>();
  private timer?: NodeJS.Timeout;
  /** Aborted when the converger stops (this replica stops leading): no fan-out starts another write. */
  private readonly stopping = new AbortController();
  /** Orphan removals that failed wait before they are tried again (not at once, every pass). */
  private readonly orphanBackoff = new Backoff();
  /** The orphan batch of a pass still running: the next pass does not start another on top of it. */
  private orphanBatch?: Promise<void>;
  /**
   * The running full pass: the DesiredLRPs it queued that have not been reconciled since, and the end of its timer.
   * ConvergenceLRPDuration covers the pass up to its last reconcile, as Diego's covers convergence and its actions.
   */
  private pass?: { pending: Set<string>; end: () => void };

  constructor(opts: ConvergerOptions) {
    this.o = withDefaults({ convergeIntervalMs: 30_000, now: Date.now, concurrency: 4 }, opts);
    this.log = opts.log.child({ component: 'converger' });
    this.queue = new WorkQueue({ name: 'converger', logger: this.log });
    this.statusQueue = new WorkQueue({ name: 'converger-status', logger: this.log });
  }

  start(): void {
    const { cache, presence } = this.o;
    const enqueueDesired = (d: IDesiredLRP) => this.queue.add(keyOf(d));
    cache.desired.on('add', enqueueDesired);
    cache.desired.on('update', enqueueDesired);
    cache.desired.on('delete', (d: IDesiredLRP) => {
      this.expected.forget(d.metadata.uid ?? '');
      enqueueDesired(d);
    });
    const enqueueOwner = (a: IActualLRP) => {
      const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP');
      if (owner) this.queue.add(`${a.metadata.namespace}/${owner.name}`);
    };
    cache.actual.on('add', (a: IActualLRP) => {
      const uid = a.metadata.labels?.[LABEL_DESIRED_LRP_UID];
      if (uid) this.expected.seen(uid, a.spec.index);
      enqueueOwner(a);
    });
    cache.actual.on('update', (a: IActualLRP, old?: IActualLRP) => {
      this.noteCrash(a, old);
      enqueueOwner(a);
    });
    cache.actual.on('delete', (a: IActualLRP) => {
      const uid = a.metadata.labels?.[LABEL_DESIRED_LRP_UID];
      if (uid) this.expected.seen(uid, a.spec.index); // gone already: nothing to wait for
      this.noteRemoved(a);
      this.forged.delete(a.metadata.uid ?? '');
      enqueueOwner(a);
    });
    // Diego converges at once when a cell disappears; a returning cell may let us promote its suspects.
    const onCell = (cellId: string) => cache.actualByCell.get(cellId).forEach(enqueueOwner);
    presence.on('disappeared', onCell);
    presence.on('appeared', onCell);
    this.queue.run((key) => this.reconcile(key).finally(() => this.reconciled(key)), this.o.concurrency);
    this.statusQueue.run((key) => this.reconcileStatus(key), 2);
    this.fullPass();
    this.timer = setInterval(() => this.fullPass(), this.o.convergeIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    this.stopping.abort();
    await Promise.all([this.queue.shutDown(), this.statusQueue.shutDown(), this.orphanBatch]);
  }

  /** Diego's periodic pass: every DesiredLRP, orphans, and the convergence metrics. */
  fullPass(): void {
    this.pass?.end(); // still reconciling when the next pass starts: it ends here
    const timer = metrics.convergenceLRPDuration.startTimer();
    const pass = { pending: new Set<string>(), end: () => {} };
    pass.end = () => {
      if (this.pass === pass) this.pass = undefined;
      timer();
    };
    this.pass = pass;
    const { cache } = this.o;
    this.removed.clear(); // Diego's pass creates every missing index, removed ones included
    for (const d of cache.desired.list()) {
      pass.pending.add(keyOf(d));
      this.queue.add(keyOf(d));
    }
    const total = { desired: 0, RUNNING: 0, CLAIMED: 0, UNCLAIMED: 0, CRASHED: 0, missing: 0, extra: 0, suspects: 0 };
    let crashing = 0;
    for (const d of cache.desired.list()) {
      const n = d.spec.instances ?? 1;
      const t = tally(n, cache.actualByDesiredUid.get(d.metadata.uid ?? ''));
      total.desired += n;
      for (const k of ['RUNNING', 'CLAIMED', 'UNCLAIMED', 'CRASHED', 'missing', 'extra'] as const) total[k] += t[k];
      total.suspects += t.suspectRunning;
      if (t.CRASHED > 0) crashing++;
    }
    // Instances whose DesiredLRP is gone (the garbage collector does this too, when it runs): a bounded batch.
    if (cache.desired.synced && !this.orphanBatch) {
      const orphans = cache.actual.list().filter((a) => !cache.desiredFor(a));
      if (orphans.length > 0 || this.orphanBackoff.size > 0) {
        this.orphanBackoff.retain(new Set(orphans.map((a) => keyOf(a))));
        const batch = orphansForPass(orphans, keyOf, this.orphanBackoff, this.o.now());
        if (batch.length > 0)
          this.orphanBatch = this.removeOrphans(batch).finally(() => (this.orphanBatch = undefined));
      }
    }
    metrics.lrpsDesired.set(total.desired);
    metrics.lrpsRunning.set(total.RUNNING);
    metrics.lrpsClaimed.set(total.CLAIMED);
    metrics.lrpsUnclaimed.set(total.UNCLAIMED);
    metrics.crashedActualLRPs.set(total.CRASHED);
    metrics.lrpsMissing.set(total.missing);
    metrics.lrpsExtra.set(total.extra);
    metrics.crashingDesiredLRPs.set(crashing);
    metrics.suspectRunningActualLRPs.set(total.suspects);
    metrics.presentCells.set(this.o.presence.presentCells().length);
    metrics.convergenceLRPRuns.inc();
    if (pass.pending.size === 0) pass.end();
    // Stale UNCLAIMED instances are re-auctioned on every pass, as in Diego.
    this.o.onUnplacedWork?.();
  }

  /** A DesiredLRP was reconciled (or failed to be: it is retried with backoff, outside the pass). */
  private reconciled(key: string): void {
    const pass = this.pass;
    if (pass?.pending.delete(key) && pass.pending.size === 0) pass.end();
  }

  /** One pass's batch of orphans, REMOVE_CONCURRENCY at a time; one that fails backs off. */
  private async removeOrphans(batch: IActualLRP[]): Promise<void> {
    const removals = batch.map((a) => async () => {
      try {
        const wait = await this.ensureGone(a);
        // A lost race (the record moved on) is looked at again in the next pass, with the newer version.
        if (wait === undefined) this.orphanBackoff.succeeded(keyOf(a));
      } catch (err) {
        this.orphanBackoff.failed(keyOf(a), this.o.now());
        if (!isConflict(err) && !isNotFound(err)) throw err;
      }
    });
    await pool(removals, REMOVE_CONCURRENCY, { signal: this.stopping.signal, backoff: FANOUT_BACKOFF }).catch(
      (err: unknown) => this.log.warn({ err, batch: batch.length }, 'removing orphans: some failed, they back off'),
    );
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const { cache } = this.o;
    const [namespace = '', name = ''] = key.split('/');
    const d = cache.desired.get(namespace, name);
    const fanOut = (thunks: (() => Promise<void>)[], limit: number) =>
      pool(thunks, limit, { signal: this.stopping.signal, backoff: FANOUT_BACKOFF });
    if (!d) {
      // Deleted: remove instances that still point at it.
      let again: number | undefined;
      const removals: (() => Promise<void>)[] = [];
      for (const a of cache.actual.list()) {
        const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP');
        if (a.metadata.namespace !== namespace || owner?.name !== name) continue;
        removals.push(async () => {
          const wait = await this.ensureGone(a);
          if (wait !== undefined) again = Math.min(again ?? wait, wait);
        });
      }
      await fanOut(removals, REMOVE_CONCURRENCY);
      return again === undefined ? undefined : { requeueAfterMs: again };
    }
    if (d.metadata.deletionTimestamp) return;
    const errors = validateSpec('DesiredLRP', d.spec);
    if (errors.length > 0) {
      // Never act on an invalid LRP (one stored while the admission webhook was not installed).
      await this.setDesiredStatus(d, [], {
        type: 'Ready',
        status: 'False',
        reason: 'InvalidSpec',
        message: describeErrors(errors),
      });
      return;
    }
    const instances = d.spec.instances ?? 1;
    const actuals = cache.actualByDesiredUid.get(d.metadata.uid ?? '');
    const ordinary = new Map<number, IActualLRP>();
    const copies: IActualLRP[] = [];
    for (const a of actuals) {
      if ((a.status?.presence ?? 'ORDINARY') === 'ORDINARY' && a.metadata.name === actualLRPName(name, a.spec.index))
        ordinary.set(a.spec.index, a);
      else copies.push(a);
    }
    let requeueAfterMs: number | undefined;
    const later = (ms: number) => (requeueAfterMs = Math.min(requeueAfterMs ?? ms, ms));
    // Each instance is a compare-and-swap of its own: a conflict means someone (a cell, the auctioneer)
    // moved it on; look again shortly with the newer version instead of failing the whole LRP.
    const guarded = async (what: () => Promise<number | void | undefined>) => {
      try {
        const wait = await what();
        if (typeof wait === 'number') later(wait);
      } catch (err) {
        if (isNamespaceTerminating(err)) return;
        if (!isConflict(err) && !isNotFound(err)) throw err;
        later(CONFLICT_RETRY_MS);
      }
    };
    const uid = d.metadata.uid ?? '';
    // Not created again: indices removed since the last pass (Diego's), and those created whose events are on the way.
    const waiting = this.expected.pending(uid, this.o.now());
    for (const i of this.removed.waiting(uid, instances)) waiting.add(i);
    const decision = decide({
      desired: d,
      ordinary,
      waiting,
      isPresent: (cellId) => this.o.presence.isPresent(cellId),
      now: this.o.now(),
    });
    let missing = decision.create;
    // In waves: between two, the DesiredLRP is read again from the cache (its latest version), so a scale-down or a
    // deletion during a large scale-up stops the creation within one wave.
    while (missing.length > 0 && !this.stopping.signal.aborted) {
      const wave = missing.slice(0, CREATE_WAVE);
      const placements = this.o.placer?.placeAtCreation(d, wave);
      await fanOut(
        wave.map((i) => () => guarded(() => this.createInstance(d, i, placements?.get(i)))),
        CREATE_CONCURRENCY,
      );
      const latest = cache.desired.get(namespace, name);
      missing = stillToCreate(missing.slice(CREATE_WAVE), uid, latest);
      // Changed meanwhile: its update queued this key again, and that reconcile acts on the newer version.
      if (latest !== d && missing.length > 0 && (latest?.spec.instances ?? 0) !== instances) break;
    }
    if (this.stopping.signal.aborted) return;
    for (const { record, action } of decision.act) await guarded(() => this.apply(record, action));
    // Scale down retires the highest indices.
    await fanOut(
      decision.retire.map((a) => () => guarded(() => this.ensureGone(a))),
      REMOVE_CONCURRENCY,
    );
    for (const copy of copies) await guarded(() => this.stepCopy(d, copy, ordinary.get(copy.spec.index), instances));
    this.statusQueue.addAfter(key, STATUS_COALESCE_MS);
    return requeueAfterMs === undefined ? undefined : { requeueAfterMs };
  }

  /** A Warning Event on the DesiredLRP when one of its instances has just crashed (once per crash: a transition). */
  private noteCrash(a: IActualLRP, old: IActualLRP | undefined): void {
    if (!this.o.events || a.status?.state !== 'CRASHED') return;
    const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP');
    const d = owner && this.o.cache.desired.get(a.metadata.namespace ?? '', owner.name);
    const event = d && crashEvent(d, old, a);
    if (d && event) this.o.events.record(d, event.type, event.reason, event.message);
  }

  /** Writes the DesiredLRP's instance counts and Ready, Available and Crashing conditions from the cache (coalesced). */
  private async reconcileStatus(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    const d = this.o.cache.desired.get(namespace, name);
    if (!d || d.metadata.deletionTimestamp) return;
    try {
      await this.setDesiredStatus(d, this.o.cache.actualByDesiredUid.get(d.metadata.uid ?? ''));
    } catch (err) {
      if (isConflict(err)) return { requeueAfterMs: CONFLICT_RETRY_MS };
      if (!isNotFound(err) && !isNamespaceTerminating(err)) throw err;
    }
  }

  private async createInstance(
    d: IDesiredLRP,
    index: number,
    placed: PlacementAtCreation | undefined,
  ): Promise<number | undefined> {
    const namespace = d.metadata.namespace ?? '';
    const name = actualLRPName(d.metadata.name ?? '', index);
    // An older cache may miss an index that exists: the create moves on (exists) and the event follows.
    let created;
    try {
      created = await createInstance(this.o.client, d, index, placed);
    } finally {
      if (placed && created?.outcome !== 'done') this.o.placer?.creationFailed(namespace, name);
    }
    if (created.outcome !== 'done') return lookAgain(created);
    // Unless its event came before the answer (the watch can be faster than the create's response).
    const shown = this.o.cache.actual.get(namespace, name);
    if (shown?.metadata.uid !== created.value.metadata.uid)
      this.expected.created(d.metadata.uid ?? '', index, this.o.now());
    this.log.info({ key: `${namespace}/${name}`, cellId: placed?.cellId }, 'instance desired');
    if (!placed) this.o.onUnplacedWork?.();
  }

  /**
   * An ORDINARY record of an index that is still desired was removed (retired, removed by its cell after a stop,
   * stopped while evacuating): Diego re-creates it in its next convergence pass, not at once.
   */
  private noteRemoved(a: IActualLRP): void {
    const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP');
    if (!owner || a.metadata.name !== actualLRPName(owner.name, a.spec.index)) return; // a copy, or not ours
    const d = this.o.cache.desired.get(a.metadata.namespace ?? '', owner.name);
    if (!d || d.metadata.uid !== owner.uid || d.metadata.deletionTimestamp) return;
    if (a.spec.index < (d.spec.instances ?? 1)) this.removed.add(owner.uid, a.spec.index);
  }

  /** Applies the decision for one ORDINARY instance (converge-decision.ts); returns ms until another look, if timed. */
  private async apply(a: IActualLRP, action: InstanceAction): Promise<number | undefined> {
    const { client } = this.o;
    switch (action.do) {
      case 'remove':
        return this.ensureGone(a);
      case 'unplace':
        return lookAgain(await unplace(client, a)); // the update comes back as an event
      case 'auction':
        this.o.onUnplacedWork?.();
        return;
      case 'forget-evacuation': {
        const forgotten = await forgetEvacuation(client, a);
        return forgotten.outcome !== 'done' ? lookAgain(forgotten) : undefined; // the write comes back as an event
      }
      case 'cell-lost':
        return this.cellLost(a, action.cellId);
      case 'wait':
        return action.afterMs;
      case 'restart': {
        const restarted = await unclaim(client, a, { now: this.o.now() });
        if (restarted.outcome !== 'done') return lookAgain(restarted);
        this.log.info({ key: keyOf(a), crashCount: a.status?.crashCount }, 'restarting crashed instance');
        this.o.onUnplacedWork?.();
        return;
      }
    }
  }

  /**
   * Diego's SUSPECT path: a RUNNING instance whose cell vanished keeps serving (as far as we know) as a
   * SUSPECT copy while a replacement is auctioned; CLAIMED ones were not serving and are simply re-placed.
   */
  private async cellLost(a: IActualLRP, cellId: string): Promise<number | undefined> {
    const { client } = this.o;
    if (a.status?.state === 'RUNNING') {
      // The copy first: an instance is never re-placed without the record of the container that may still serve.
      const suspect = await createSuspect(client, a, cellId);
      if (suspect.outcome === 'moved-on') return lookAgain(suspect);
    }
    this.log.warn({ key: keyOf(a), cellId, state: a.status?.state }, 'cell lost: re-placing instance');
    const replaced = await unclaim(client, a, { now: this.o.now() });
    if (replaced.outcome !== 'done') return lookAgain(replaced);
    this.o.onUnplacedWork?.();
    return;
  }

  /** A SUSPECT (or EVACUATING) copy lives until its replacement runs, or comes back if its cell does. */
  private async stepCopy(
    d: IDesiredLRP,
    copy: IActualLRP,
    ordinary: IActualLRP | undefined,
    instances: number,
  ): Promise<number | undefined> {
    const { client, presence } = this.o;
    if (copy.metadata.deletionTimestamp && this.forged.has(copy.metadata.uid ?? ''))
      return lookAgain(await releaseContainer(client, copy));
    if (copy.metadata.deletionTimestamp) return this.ensureGone(copy);
    const evacuating = copy.status?.presence === 'EVACUATING';
    const cellId = copy.spec.cellId;
    // A copy is created, then given its status (a second write): until then, leave it to its creator
    // unless that creator's cell is gone.
    if (!copy.status?.presence) return cellId && presence.isPresent(cellId) ? undefined : this.ensureGone(copy, true);
    // Diego's pruneEvacuatingActualLRPs: an EVACUATING copy whose cell is gone serves nothing any more.
    if (evacuating && cellId && !presence.isPresent(cellId)) return this.ensureGone(copy, true);
    // The replacement runs when the ORDINARY record is RUNNING as another instance (a stale cache may still
    // show the original, with the suspect's own instance guid). An evacuating copy also ends when the
    // replacement crashed (Diego's EvacuateRunningActualLRP).
    const replaced = ordinary?.status?.state === 'RUNNING' || (evacuating && ordinary?.status?.state === 'CRASHED');
    const replacementRunning = replaced && ordinary?.status?.instanceGuid !== copy.status?.instanceGuid;
    if (!ordinary || copy.spec.index >= instances || replacementRunning) return this.ensureGone(copy, true);
    if (evacuating && judgeEvacuatingCopy(copy, ordinary) === 'forged') return this.forgedCopy(d, copy, ordinary);
    if (copy.status?.presence === 'SUSPECT' && cellId && presence.isPresent(cellId)) {
      const replacement = ordinary.status;
      const claimedElsewhere =
        replacement?.state !== 'UNCLAIMED' &&
        replacement?.instanceGuid &&
        replacement.instanceGuid !== copy.status.instanceGuid;
      if (claimedElsewhere) {
        // The replacement is claimed already (it starts on another cell): the suspect goes, and its cell stops the
        // container once it sees the copy go (never two containers of one index, nor the record overwritten).
        this.log.info(
          { key: keyOf(copy), cellId },
          'cell returned after its instance was claimed elsewhere: suspect retired',
        );
        return this.ensureGone(copy, true);
      }
      if (replacement?.state !== 'UNCLAIMED') return; // a stale view (the suspect's own status): look again
      // The cell is back before the replacement was claimed: promote the suspect, drop the replacement. The write
      // is a compare-and-swap on the UNCLAIMED replacement: a cell claiming it first wins, and the suspect is
      // retired on the next look.
      const promotedBack = await promoteSuspect(client, ordinary, copy);
      if (promotedBack.outcome !== 'done') return lookAgain(promotedBack);
      this.log.info({ key: keyOf(ordinary), cellId }, 'cell returned: suspect instance promoted');
      return this.ensureGone(copy);
    }
    return;
  }

  /**
   * An EVACUATING copy nothing vouches for as the cache sees it (judgeEvacuatingCopy). The cache may be behind the
   * evacuation (the copy seen, not yet the unclaim that records it): the ORDINARY record is read from the API server
   * before the copy is judged forged. A forged copy is removed with its container finalizer (the cell that forged it
   * will not release it), with a Warning event on the DesiredLRP.
   */
  private async forgedCopy(d: IDesiredLRP, copy: IActualLRP, cached: IActualLRP): Promise<number | undefined> {
    const { client } = this.o;
    const fresh = await getOrUndefined(client, 'ActualLRP', cached.metadata.namespace, cached.metadata.name ?? '');
    const verdict = judgeEvacuatingCopy(copy, fresh);
    if (verdict === 'retire') return this.ensureGone(copy, true);
    if (verdict === 'keep') return;
    const by = evacuatedByOf(fresh);
    const what = {
      key: keyOf(copy),
      cellId: copy.status?.cellId,
      instanceGuid: copy.status?.instanceGuid,
      ordinary: {
        state: fresh?.status?.state,
        cellId: fresh?.status?.cellId,
        instanceGuid: fresh?.status?.instanceGuid,
      },
      evacuatedBy: by,
    };
    this.forged.add(copy.metadata.uid ?? '');
    const removed = await removeCopy(client, copy, { containerGone: true });
    if (removed.outcome !== 'done') {
      this.forged.delete(copy.metadata.uid ?? '');
      return lookAgain(removed);
    }
    this.log.warn(what, 'forged EVACUATING copy removed: its ORDINARY record was never evacuated by that container');
    this.o.events?.record(
      d,
      'Warning',
      'ForgedEvacuatingCopy',
      `removed ${copy.metadata.name}: cell ${copy.status?.cellId ?? ''} reported instance ` +
        `${copy.status?.instanceGuid ?? ''} EVACUATING, but ${fresh?.metadata.name ?? ''} ` +
        `(${fresh?.status?.state ?? 'UNCLAIMED'} on "${fresh?.status?.cellId ?? ''}") was never evacuated by it`,
    );
    return;
  }

  /**
   * Deletes an ActualLRP and releases the container finalizer when no live cell still runs it (the cell's
   * agent releases it after stopping the container otherwise). `asSeen`: the decision rests on this version's
   * status (a copy), so delete only that version: one changed since the cache saw it (a copy finished earlier
   * in this very pass, say) is a conflict and is looked at again, not removed on stale grounds.
   */
  private async ensureGone(a: IActualLRP, asSeen = false): Promise<number | undefined> {
    const { client, presence } = this.o;
    // The deletion comes back as an update with deletionTimestamp; the finalizer is handled then.
    if (!a.metadata.deletionTimestamp) return lookAgain(await remove(client, a, { asSeen }));
    // The cell's agent stops the container of a live cell, then releases; otherwise nobody runs it any more.
    const released = await releaseContainer(client, a, (current) => {
      const state = current.status?.state;
      const runningOn = state === 'CLAIMED' || state === 'RUNNING' ? current.status?.cellId : undefined;
      return !runningOn || !presence.isPresent(runningOn);
    });
    return lookAgain(released);
  }

  private async setDesiredStatus(
    d: IDesiredLRP,
    actuals: IActualLRP[],
    override?: Omit<Condition, 'lastTransitionTime'>,
  ): Promise<void> {
    const instances = d.spec.instances ?? 1;
    const count = tally(instances, actuals);
    const ready: Omit<Condition, 'lastTransitionTime'> = override ?? {
      type: 'Ready',
      status: count.RUNNING >= instances ? 'True' : 'False',
      reason:
        count.RUNNING >= instances
          ? 'AllInstancesRunning'
          : count.CRASHED > 0
            ? 'InstancesCrashed'
            : 'InstancesStarting',
      message: `${count.RUNNING}/${instances} running, ${count.CLAIMED} starting, ${count.UNCLAIMED} waiting for placement, ${count.CRASHED} crashed`,
      observedGeneration: d.metadata.generation,
    };
    if (override) ready.observedGeneration = d.metadata.generation;
    const status = d.status ?? {};
    const next = {
      observedGeneration: d.metadata.generation,
      runningInstances: count.RUNNING,
      claimedInstances: count.CLAIMED,
      unclaimedInstances: count.UNCLAIMED,
      crashedInstances: count.CRASHED,
      selector: selectorFor(d.metadata.uid ?? ''),
    };
    // Available and Crashing say why instances are not running (an invalid spec: Ready says it, they stay as were).
    const conditions = [ready, ...(override ? [] : desiredConditions(d, actuals))];
    const same =
      Object.entries(next).every(([k, v]) => (status as Record<string, unknown>)[k] === v) &&
      conditions.every((c) => conditionUnchanged(status.conditions, c));
    if (same) return;
    const at = new Date(this.o.now());
    await this.o.client.patchStatus(
      'DesiredLRP',
      { namespace: d.metadata.namespace, name: d.metadata.name ?? '' },
      { ...next, conditions: conditions.reduce((list, c) => setCondition(list, c, at), status.conditions) },
    );
  }
}

/**
 * Indices whose ORDINARY record was removed while still desired, per DesiredLRP uid. Diego creates a missing index
 * only in a convergence pass (bbs db/sqldb/lrp_convergence.go, missing indices) or when UpdateDesiredLRP scales up
 * past it; nothing re-creates it when its record is removed (RetireActualLRP, RemoveActualLRP,
 * EvacuateStoppedActualLRP). Each full pass forgets them all.
 */
export class RemovedIndices {
  private readonly byUid = new Map<string, Set<number>>();

  add(uid: string, index: number): void {
    let set = this.byUid.get(uid);
    if (!set) this.byUid.set(uid, (set = new Set()));
    set.add(index);
  }

  /**
   * The removed indices still waiting for a pass. Those at or past `instances` are forgotten: the LRP was scaled
   * down past them, and scaling up again creates them at once, as Diego's UpdateDesiredLRP does.
   */
  waiting(uid: string, instances: number): ReadonlySet<number> {
    const set = this.byUid.get(uid);
    if (!set) return EMPTY;
    for (const i of set) if (i >= instances) set.delete(i);
    if (set.size === 0) this.byUid.delete(uid);
    return set;
  }

  clear(): void {
    this.byUid.clear();
  }
}

const EMPTY: ReadonlySet<number> = new Set();

/**
 * Counts one LRP's instances by state, and what is missing or extra (for status and metrics). Each index counts
 * once, as Diego resolves an instance: the ORDINARY record, unless it is not yet RUNNING (nor CRASHED) while its
 * EVACUATING copy still runs and serves (a drain is not an outage).
 */
export function tally(instances: number, actuals: IActualLRP[]) {
  const t = { RUNNING: 0, CLAIMED: 0, UNCLAIMED: 0, CRASHED: 0, missing: 0, extra: 0, suspectRunning: 0 };
  const indices = new Set<number>();
  const evacuatingRunning = new Set<number>();
  for (const a of actuals)
    if (a.status?.presence === 'EVACUATING' && a.status.state === 'RUNNING' && !a.metadata.deletionTimestamp)
      evacuatingRunning.add(a.spec.index);
  for (const a of actuals) {
    if (a.status?.presence === 'SUSPECT' && a.status.state === 'RUNNING') t.suspectRunning++;
    if ((a.status?.presence ?? 'ORDINARY') !== 'ORDINARY') continue;
    if (a.spec.index >= instances) {
      t.extra++;
      continue;
    }
    indices.add(a.spec.index);
    const state = a.status?.state ?? 'UNCLAIMED';
    const served = evacuatingRunning.has(a.spec.index) && state !== 'RUNNING' && state !== 'CRASHED';
    t[served ? 'RUNNING' : state]++;
  }
  t.missing = instances - indices.size;
  return t;
}
