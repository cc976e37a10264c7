// The task controller (Diego's task lifecycle and task convergence): Pending → Running → Completed →
// Resolving → deleted, cancellation, lost cells, completion callbacks and the expiry timers.
import type { Logger } from 'pino';
import { withDefaults } from '../lib/options.ts';
import type { ITask } from '../crds/models.ts';
import { keyOf } from '../lib/informer.ts';
import { DiegoClient, isConflict, isNotFound } from '../lib/resources.ts';
import { WorkQueue, type ReconcileResult } from '../lib/workqueue.ts';
import { describeErrors, validateSpec } from '../webhooks/validate.ts';
import type { DiegoCache } from './cache.ts';
import { metrics } from './metrics.ts';
import type { CellPresence } from './presence.ts';
import type { EventRecorder } from '../lib/events.ts';
import { taskFailedEvent } from './explain.ts';
import { httpFetch } from '../lib/http.ts';
import { type CallbackFetch, postCallback } from './task-callback.ts';
import { deleteTask, demoteTask, failTask, initializeTask, resolveTask, unplace } from '../lifecycle/ops.ts';
import { REASON_CANCELLED, REASON_CELL_DISAPPEARED, REASON_NOT_STARTED } from '../lifecycle/task.ts';

export interface TaskControllerOptions {
  client: DiegoClient;
  cache: DiegoCache;
  presence: CellPresence;
  log: Logger;
  /** Diego: expire_pending_task_duration 30 min. */
  expirePendingMs?: number;
  /** Diego: expire_completed_task_duration 120 s. */
  expireCompletedMs?: number;
  /** Diego: kick_task_duration 30 s (stuck Resolving tasks go back to Completed). */
  kickMs?: number;
  /** Diego: convergence.repeat_interval 30 s. */
  convergeIntervalMs?: number;
  now?: () => number;
  fetch?: CallbackFetch;
  /** Where a failed Task's Warning Event goes (kubectl describe); none if absent. */
  events?: EventRecorder;
}

export class TaskController {
  private readonly o: Required<Omit<TaskControllerOptions, 'events'>> & Pick<TaskControllerOptions, 'events'>;
  private readonly log: Logger;
  private readonly queue: WorkQueue;
  private timer?: NodeJS.Timeout;

  constructor(opts: TaskControllerOptions) {
    this.o = withDefaults(
      {
        expirePendingMs: 30 * 60_000,
        expireCompletedMs: 120_000,
        kickMs: 30_000,
        convergeIntervalMs: 30_000,
        now: Date.now,
        fetch: httpFetch,
      },
      opts,
    );
    this.log = opts.log.child({ component: 'tasks' });
    this.queue = new WorkQueue({ name: 'tasks', logger: this.log });
  }

  start(): void {
    const enqueue = (t: ITask) => this.queue.add(keyOf(t));
    this.o.cache.tasks.on('add', enqueue);
    this.o.cache.tasks.on('update', (t: ITask, old?: ITask) => {
      const failed = this.o.events && taskFailedEvent(old, t);
      if (failed) this.o.events?.record(t, failed.type, failed.reason, failed.message);
      enqueue(t);
    });
    this.o.presence.on('disappeared', (cellId) => this.o.cache.tasksByCell.get(cellId).forEach(enqueue));
    this.queue.run((key) => this.reconcile(key), 4);
    this.fullPass();
    this.timer = setInterval(() => this.fullPass(), this.o.convergeIntervalMs);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    clearInterval(this.timer);
    await this.queue.shutDown();
  }

  fullPass(): void {
    const end = metrics.convergenceTaskDuration.startTimer();
    const count = { Pending: 0, Running: 0, Completed: 0, Resolving: 0 };
    for (const t of this.o.cache.tasks.list()) {
      count[t.status?.state ?? 'Pending']++;
      this.queue.add(keyOf(t));
    }
    metrics.tasksPending.set(count.Pending);
    metrics.tasksRunning.set(count.Running);
    metrics.tasksCompleted.set(count.Completed);
    metrics.tasksResolving.set(count.Resolving);
    end();
  }

  async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace = '', name = ''] = key.split('/');
    const t = this.o.cache.tasks.get(namespace, name);
    if (!t || t.metadata.deletionTimestamp) return;
    try {
      return await this.step(t);
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return; // a newer version is on its way through the cache
      throw err;
    }
  }

  private async step(t: ITask): Promise<ReconcileResult> {
    const { client, presence } = this.o;
    const now = this.o.now();
    const state = t.status?.state;
    // Each write is a fenced compare-and-swap: one that lost a race is not retried, the newer version's event follows.
    const complete = (failureReason: string) => failTask(client, t, failureReason, new Date(now));
    if (!state) {
      const errors = validateSpec('Task', t.spec);
      if (errors.length > 0) return void (await complete(`invalid task: ${describeErrors(errors)}`));
      await initializeTask(client, t, new Date(now));
      return;
    }
    if (t.spec.cancelled && (state === 'Pending' || state === 'Running')) {
      this.log.info({ key: keyOf(t) }, 'task cancelled');
      return void (await complete(REASON_CANCELLED));
    }
    const created = Date.parse(t.metadata.creationTimestamp?.toString() ?? '') || now;
    switch (state) {
      case 'Pending': {
        const age = now - created;
        if (age >= this.o.expirePendingMs) return void (await complete(REASON_NOT_STARTED));
        if (t.spec.cellId && !presence.isPresent(t.spec.cellId)) await unplace(client, t); // its cell went away before starting it
        return { requeueAfterMs: this.o.expirePendingMs - age };
      }
      case 'Running': {
        const cell = t.status?.cellId;
        // At most once: a task whose cell vanished is failed, never run again.
        if (cell && !presence.isPresent(cell)) return void (await complete(REASON_CELL_DISAPPEARED));
        return;
      }
      case 'Completed': {
        const first = Date.parse(t.status?.firstCompletedAt ?? '') || now;
        const expiresIn = first + this.o.expireCompletedMs - now;
        if (expiresIn <= 0) {
          const expired = await deleteTask(client, t, { event: 'expire', asSeen: false });
          if (expired.outcome === 'done') this.log.info({ key: keyOf(t) }, 'completed task expired unresolved');
          return;
        }
        if (t.spec.completionCallbackUrl) return this.resolveWithCallback(t, now);
        return { requeueAfterMs: expiresIn };
      }
      case 'Resolving': {
        const updated = Date.parse(t.status?.updatedAt ?? '') || now;
        const wait = updated + this.o.kickMs - now;
        if (wait > 0) return { requeueAfterMs: wait };
        await demoteTask(client, t, new Date(now));
        return;
      }
    }
  }

  /** BBS's callback path: take the task to Resolving (so only we handle it), POST, then delete. */
  private async resolveWithCallback(t: ITask, now: number): Promise<ReconcileResult> {
    const taken = await resolveTask(this.o.client, t, new Date(now));
    if (taken.outcome !== 'done') return; // another resolver has it, or it moved on: its event follows
    const resolving = taken.value;
    metrics.taskCallbacks.inc();
    const outcome = await postCallback(resolving, this.o.fetch);
    if (outcome.done) {
      await deleteTask(this.o.client, resolving, { asSeen: false });
      this.log.info({ key: keyOf(t), status: outcome.status }, 'task resolved by its completion callback');
      return;
    }
    // Left Resolving: after kickMs it goes back to Completed and the callback is tried again.
    this.log.warn({ key: keyOf(t), reason: outcome.reason }, 'completion callback failed; will retry');
    return { requeueAfterMs: this.o.kickMs };
  }
}
