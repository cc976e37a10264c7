// The cell-side task routes Diego's rep and auctioneer call (start, complete, reject, and the deprecated
// fail). The transitions themselves are the task controller's (controllers/task-lifecycle.ts), so a Diego
// rep and our own cell-agent move a Task through exactly the same compare-and-swap writes; this module only
// turns their outcomes into BBS errors.
import type { ITask } from '../crds/models.ts';
import {
  completedStatus,
  completeTask,
  DEFAULT_MAX_TASK_RETRIES,
  rejectedStatus,
  startTask,
  TaskTransitionError,
} from '../controllers/task-lifecycle.ts';
import { placementPatch } from '../controllers/names.ts';
import { refOf, retryOnConflict } from '../lib/resources.ts';
import { BbsFailure, invalidField } from './errors.ts';
import { findTask } from './handlers.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';

const stateOf = (t: ITask) => t.status?.state ?? 'Pending';

const transition = (from: string, to: string) =>
  new BbsFailure(m.Error_Type.InvalidStateTransition, `Cannot transition from ${from} to ${to}`);

function check(bad: string[]): void {
  if (bad.length > 0) throw invalidField(...bad);
}

/** Our protocol's own refusals (not placed on this cell, cancelled, lost the race) as a BBS conflict. */
function asBbs(err: unknown): unknown {
  return err instanceof TaskTransitionError ? new BbsFailure(m.Error_Type.ResourceConflict, err.message) : err;
}

async function start(req: m.StartTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.cellId ? [] : ['cell_id'])]);
  const task = await findTask(ctx, req.taskGuid);
  const state = stateOf(task);
  const runningHere = state === 'Running' && task.status?.cellId === req.cellId;
  if (!runningHere && state !== 'Pending') throw transition(state, 'Running');
  try {
    const shouldStart = await startTask(ctx.client, task, req.cellId);
    return { $typeName: 'models.StartTaskResponse' as const, shouldStart };
  } catch (err) {
    throw asBbs(err);
  }
}

async function complete(req: m.CompleteTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.cellId ? [] : ['cell_id'])]);
  await retryOnConflict(async () => {
    const task = await findTask(ctx, req.taskGuid);
    const state = stateOf(task);
    const cell = task.status?.cellId ?? '';
    if (state === 'Running' && cell !== req.cellId)
      throw new BbsFailure(m.Error_Type.RunningOnDifferentCell, `Running on cell ${cell} not ${req.cellId}`);
    if (state !== 'Running') throw transition(state, 'Completed');
    const completion = { failed: req.failed, failureReason: req.failureReason, result: req.result };
    await completeTask(ctx.client, task, req.cellId, completion).catch((err: unknown) => {
      throw asBbs(err);
    });
  });
  return ok();
}

/** Deprecated FailTask: Pending or Running → Completed and failed. */
async function fail(req: m.FailTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.failureReason ? [] : ['failure_reason'])]);
  await retryOnConflict(async () => {
    const task = await findTask(ctx, req.taskGuid);
    const state = stateOf(task);
    if (state !== 'Pending' && state !== 'Running') throw transition(state, 'Completed');
    await ctx.client.patchStatus(
      'Task',
      refOf(task),
      completedStatus({ failed: true, failureReason: req.failureReason }),
    );
  });
  return ok();
}

/** RejectTask: the cell cannot run it; back to the auction (off its cell), or failed after max retries. */
function reject(maxRetries: number) {
  return async (req: m.RejectTaskRequest, ctx: Ctx) => {
    // Diego names the missing reason "failure_reason" in this message.
    check([...(req.taskGuid ? [] : ['task_guid']), ...(req.rejectionReason ? [] : ['failure_reason'])]);
    const rejected = await retryOnConflict(async () => {
      const task = await findTask(ctx, req.taskGuid);
      const state = stateOf(task);
      if (state !== 'Pending' && state !== 'Running')
        throw new BbsFailure(m.Error_Type.InvalidRequest, 'the request received is invalid');
      return ctx.client.patchStatus('Task', refOf(task), rejectedStatus(task, req.rejectionReason, maxRetries));
    });
    // Then take it off the cell so the auctioneer places it again (the status write above already counts it).
    if (stateOf(rejected) === 'Pending' && rejected.spec.cellId) {
      await retryOnConflict(async () => {
        const task = await findTask(ctx, req.taskGuid);
        if (stateOf(task) === 'Pending' && task.spec.cellId)
          await ctx.client.patch('Task', refOf(task), placementPatch(null));
      });
    }
    return ok();
  };
}

const ok = () => ({ $typeName: 'models.TaskLifecycleResponse' as const });

export function taskCellRoutes(maxTaskRetries = DEFAULT_MAX_TASK_RETRIES): Record<string, Route> {
  return {
    '/v1/tasks/start': route(m.StartTaskRequestSchema, m.StartTaskResponseSchema, start),
    '/v1/tasks/complete': route(m.CompleteTaskRequestSchema, m.TaskLifecycleResponseSchema, complete),
    '/v1/tasks/fail': route(m.FailTaskRequestSchema, m.TaskLifecycleResponseSchema, fail),
    '/v1/tasks/reject': route(m.RejectTaskRequestSchema, m.TaskLifecycleResponseSchema, reject(maxTaskRetries)),
  };
}
