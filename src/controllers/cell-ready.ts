// The Cell Ready condition (and so `kubectl get cells`' READY column): written by the leader from the cell's presence
// Lease (controllers/presence.ts), its evacuating flag and its remaining capacity (explain.ts decides). Its agent
// writes the rest of the Cell's status; only this controller writes its conditions.
import type { Logger } from 'pino';
import type { ICell } from '../crds/models.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { isConflict, isNotFound } from '../lib/resources.ts';
import { WorkQueue, type ReconcileResult } from '../lib/workqueue.ts';
import type { DiegoCache } from './cache.ts';
import { conditionUnchanged, setCondition } from './conditions.ts';
import { cellReadyCondition } from './explain.ts';
import type { CellPresence } from './presence.ts';

export interface CellReadyOptions {
  client: DiegoClient;
  cache: DiegoCache;
  presence: CellPresence;
  log: Logger;
}

export class CellReady {
  private readonly o: CellReadyOptions;
  private readonly queue: WorkQueue;

  constructor(o: CellReadyOptions) {
    this.o = o;
    this.queue = new WorkQueue({ name: 'cell-ready', logger: o.log.child({ component: 'cell-ready' }) });
  }

  start(): void {
    const { cache, presence } = this.o;
    const enqueue = (c: ICell) => this.queue.add(c.metadata.name ?? '');
    cache.cells.on('add', enqueue);
    cache.cells.on('update', enqueue);
    const byCellId = (cellId: string) => {
      const cell = cache.cell(cellId);
      if (cell) enqueue(cell);
    };
    presence.on('appeared', byCellId);
    presence.on('disappeared', byCellId);
    for (const c of cache.cells.list()) enqueue(c);
    this.queue.run((name) => this.reconcile(name), 2);
  }

  async stop(): Promise<void> {
    await this.queue.shutDown();
  }

  private async reconcile(name: string): Promise<ReconcileResult> {
    const cell = this.o.cache.cells.get(undefined, name);
    if (!cell || cell.metadata.deletionTimestamp) return;
    const ready = cellReadyCondition(cell, this.o.presence.isPresent(cell.spec.cellId));
    if (conditionUnchanged(cell.status?.conditions, ready)) return;
    try {
      // A merge patch of conditions alone: the agent's fields (available, evacuating, ...) are left as they are.
      await this.o.client.patchStatus('Cell', { name }, { conditions: setCondition(cell.status?.conditions, ready) });
    } catch (err) {
      if (isNotFound(err)) return;
      if (isConflict(err)) return { requeueAfterMs: 1000 };
      throw err;
    }
  }
}
