// Diego's rep bulk sync (rep/harmonizer/bulker.go): every polling interval (Diego: 30 s) compare the containers
// present in the backend with the work assigned to this cell, and repair what events missed:
// * a container that no ActualLRP or Task of this cell accounts for is an orphan: destroy it;
// * an ActualLRP CLAIMED or RUNNING here without its container goes back to the auction (Diego removes the
//   ActualLRP and convergence creates it UNCLAIMED again; here it is unclaimed in place, lifecycle/ops.ts);
// * a Task Running here without its container fails with Diego's "task container does not exist";
// * a container the rep runs whose index another cell now owns (or whose records are gone) is stopped;
// * work placed here and still UNCLAIMED / Pending (a claim lost to an API error, an event missed) is handled
//   again: claimed, or handed back.
// Work the rep is running (or creating, or destroying) right now is left alone.
import type { Logger } from 'pino';
import { Histogram } from 'prom-client';
import type { IActualLRP, ITask } from '../crds/models.ts';
import { keyOf } from '../lib/informer.ts';
import { registry } from '../lib/metrics.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { isUnclaimedOrdinary } from '../lifecycle/actual-lrp.ts';
import { removeEvacuating } from '../lifecycle/evacuation.ts';
import { completeTask, unclaim } from '../lifecycle/ops.ts';
import type { ContainerBackend } from './backends/types.ts';
import { lrpKey, ownerOf, taskKey } from './container-tags.ts';

/** Diego rep polling_interval. */
export const DEFAULT_POLLING_INTERVAL_MS = 30_000;
/** rep/generator/internal task_processor.go: a Running task whose container is gone. */
export const TASK_CONTAINER_MISSING = 'task container does not exist';

export const repBulkSyncDuration = new Histogram({
  name: 'RepBulkSyncDuration',
  help: 'Time the rep took to compare its containers with the work assigned to its cell (s)',
  registers: [registry],
  buckets: [0.01, 0.05, 0.1, 0.5, 1, 5, 10, 30],
});

export interface BulkSyncDeps {
  cellId: string;
  /** The containers (the executor's store: destroying one releases what it holds). */
  backend: Pick<ContainerBackend, 'list' | 'lookup' | 'destroy'>;
  client: DiegoClient;
  log: Logger;
  /** ActualLRPs placed on this cell (the rep's watch). */
  lrps(): IActualLRP[];
  /** Tasks placed on this cell (the rep's watch). */
  tasks(): ITask[];
  /** Handles of containers the rep is working on right now, and keys of work it runs. */
  busy(): { handles: ReadonlySet<string>; keys: ReadonlySet<string> };
  /** Work assigned here whose container is present but which nobody supervises (e.g. a failed re-adoption). */
  unsupervised?(work: IActualLRP | ITask): Promise<void>;
  /** Checks every container the rep runs against its records; stops those this cell no longer owns. */
  checkRuns?(): Promise<void>;
  /** Work placed here but not claimed (UNCLAIMED instance, Pending task): handle it again. */
  unclaimed?(work: IActualLRP | ITask): Promise<void>;
  /**
   * Work claimed by this cell without a container whose claim this agent sent and never heard back about (its answer
   * lost to an API error): the rep runs it now (true) instead of its being failed or sent back to the auction.
   */
  landedUnseen?(work: IActualLRP | ITask): boolean;
  /** Reports the outcome kept on disk for a task whose container is gone; false when there is none. */
  reportKept?(t: ITask): Promise<boolean>;
}

export interface BulkSyncResult {
  orphansDestroyed: string[];
  lrpsMissing: string[];
  tasksMissing: string[];
}

/** One pass. Never throws for one bad object: it logs and goes on with the rest. */
export async function bulkSync(d: BulkSyncDeps): Promise<BulkSyncResult> {
  const done = repBulkSyncDuration.startTimer();
  const result: BulkSyncResult = { orphansDestroyed: [], lrpsMissing: [], tasksMissing: [] };
  try {
    await d.checkRuns?.().catch((err: unknown) => d.log.warn({ err }, 'bulk sync: checking running instances'));
    const handles = await d.backend.list();
    const present = new Set(handles);
    // What the cluster says this cell should be running, by container handle.
    const wanted = new Set<string>();
    for (const a of d.lrps()) {
      const guid = a.status?.instanceGuid;
      if (guid && a.status?.cellId === d.cellId && (a.status.state === 'CLAIMED' || a.status.state === 'RUNNING')) {
        wanted.add(guid);
      }
    }
    const taskHandles = new Map<string, ITask>();
    for (const t of d.tasks()) {
      if (t.status?.state === 'Running' && t.status.cellId === d.cellId) taskHandles.set(taskHandle(t), t);
    }
    const busy = d.busy();

    for (const handle of handles) {
      if (busy.handles.has(handle) || wanted.has(handle) || taskHandles.has(handle)) continue;
      const container = await d.backend.lookup(handle).catch(() => undefined);
      const owner = container ? ownerOf(container.properties) : undefined;
      try {
        await d.backend.destroy(handle);
        result.orphansDestroyed.push(handle);
        d.log.info({ handle, owner }, 'bulk sync: destroyed an orphaned container');
      } catch (err) {
        d.log.warn({ err, handle }, 'bulk sync: could not destroy an orphaned container');
      }
    }

    for (const a of d.lrps()) {
      const guid = a.status?.instanceGuid;
      if (!guid || !wanted.has(guid) || busy.keys.has(lrpKey(a)) || a.metadata.deletionTimestamp) continue;
      if (a.status?.presence === 'EVACUATING') {
        // Diego's RemoveEvacuatingActualLRP: an evacuated instance whose container is gone serves nothing.
        if (!present.has(guid))
          await removeEvacuating(d.client, a, true).catch((err: unknown) =>
            d.log.warn({ err, key: keyOf(a) }, 'bulk sync: evacuating instance'),
          );
        continue;
      }
      // A SUSPECT copy is the converger's to promote or remove.
      if (a.status?.presence === 'SUSPECT') continue;
      if (present.has(guid)) {
        await d.unsupervised?.(a).catch((err: unknown) => d.log.warn({ err, key: keyOf(a) }, 'bulk sync: adopt'));
        continue;
      }
      if (d.landedUnseen?.(a)) continue;
      try {
        // Only while the record still names this cell's container (the instance key fences a stale view).
        const back = await unclaim(d.client, a, { now: Date.now(), owner: { instanceGuid: guid, cellId: d.cellId } });
        if (back.outcome !== 'done') continue; // moved on meanwhile: the next pass looks again
        result.lrpsMissing.push(keyOf(a));
        d.log.warn({ key: keyOf(a), instanceGuid: guid }, 'bulk sync: instance has no container: back to the auction');
      } catch (err) {
        d.log.warn({ err, key: keyOf(a) }, 'bulk sync: instance');
      }
    }

    // Placed here, never claimed: the event that should have led to a claim failed or went missing.
    const busyKeys = d.busy().keys;
    for (const work of [...d.lrps(), ...d.tasks()]) {
      const isTask = 'taskGuid' in work.spec;
      const waiting = isTask ? (work as ITask).status?.state === 'Pending' : isUnclaimedOrdinary(work as IActualLRP);
      const key = isTask ? taskKey(work as ITask) : lrpKey(work as IActualLRP);
      if (!waiting || work.spec.cellId !== d.cellId || work.metadata.deletionTimestamp || busyKeys.has(key)) continue;
      await d.unclaimed?.(work).catch((err: unknown) => d.log.warn({ err, key: keyOf(work) }, 'bulk sync: claim'));
    }

    for (const [handle, t] of taskHandles) {
      if (busy.keys.has(taskKey(t))) continue;
      if (present.has(handle)) {
        await d.unsupervised?.(t).catch((err: unknown) => d.log.warn({ err, key: keyOf(t) }, 'bulk sync: adopt'));
        continue;
      }
      if (d.landedUnseen?.(t)) continue;
      try {
        // The container finished and went, but its outcome was not reported (an agent killed in between).
        if (await d.reportKept?.(t)) continue;
        const failed = await completeTask(
          d.client,
          t,
          d.cellId,
          { failed: true, failureReason: TASK_CONTAINER_MISSING },
          new Date(),
        );
        if (failed.outcome !== 'done') continue; // moved on meanwhile: the next pass looks again
        result.tasksMissing.push(keyOf(t));
        d.log.warn({ key: keyOf(t) }, 'bulk sync: running task has no container: failed');
      } catch (err) {
        d.log.warn({ err, key: keyOf(t) }, 'bulk sync: task');
      }
    }
  } finally {
    done();
  }
  return result;
}

/** The container handle of a task (one container per task, named after its object's uid). */
export function taskHandle(t: ITask): string {
  return `task-${t.metadata.uid ?? t.spec.taskGuid}`;
}

/** Runs bulkSync every intervalMs (first pass after one interval) until stopped; passes never overlap. */
export class BulkSyncLoop {
  readonly #deps: BulkSyncDeps;
  readonly #intervalMs: number;
  #timer?: NodeJS.Timeout;
  #running?: Promise<unknown>;
  #stopped = false;

  constructor(deps: BulkSyncDeps, intervalMs = DEFAULT_POLLING_INTERVAL_MS) {
    this.#deps = deps;
    this.#intervalMs = intervalMs;
  }

  start(): void {
    this.#schedule();
  }

  /** Runs a pass now (waits for the one in progress first). */
  syncNow(): Promise<BulkSyncResult> {
    // Queued behind the pass in progress (set at once, so two callers never run side by side).
    const pass = Promise.resolve(this.#running).then(() => bulkSync(this.#deps));
    this.#running = pass.catch(() => undefined);
    return pass;
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      void this.syncNow()
        .catch((err: unknown) => this.#deps.log.warn({ err }, 'bulk sync failed'))
        .finally(() => this.#schedule());
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
