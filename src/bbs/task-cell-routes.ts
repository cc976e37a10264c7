// The cell-side task routes Diego's rep and auctioneer call (start, complete, reject, and the deprecated
// fail). The transitions themselves are the fenced task operations every task writer uses (src/lifecycle/task-ops.ts),
// so a Diego rep and our own cell-agent move a Task through exactly the same compare-and-swap writes; this module only
// turns their outcomes into BBS errors.
import type { ITask } from '../crds/models.ts';
import { completeTask, failTask, type Outcome, rejectTask, retryMovedOn, startTask } from '../lifecycle/ops.ts';
import { DEFAULT_MAX_TASK_RETRIES } from '../lifecycle/task.ts';
import { BbsFailure, invalidField, notFound } from './errors.ts';
import { findTask } from './handlers.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';

function check(bad: string[]): void {
  if (bad.length > 0) throw invalidField(...bad);
}

const conflict = (message: string) => new BbsFailure(m.Error_Type.ResourceConflict, message);

/**
 * Runs a task operation on the task as read now, again while it loses a race; a refusal becomes the error
 * `refusal` gives (by rule), one that kept losing a ResourceConflict.
 */
async function onTask<T>(
  ctx: Ctx,
  taskGuid: string,
  op: (task: ITask) => Promise<Outcome<T>>,
  refusal: (rule: string, reason: string) => BbsFailure,
): Promise<T> {
  const o = await retryMovedOn(async () => op(await findTask(ctx, taskGuid)));
  if (o.outcome === 'done') return o.value;
  if (o.outcome === 'refused') throw refusal(o.rule, o.reason);
  throw o.why === 'gone' ? notFound() : conflict('the requested resource is in a conflicting state');
}

/** Diego's InvalidStateTransition for the state machine's refusals; our protocol's own (placement, cancelled) conflict. */
const byRule =
  (other: (reason: string) => BbsFailure = conflict) =>
  (rule: string, reason: string) =>
    rule === 'transition' ? new BbsFailure(m.Error_Type.InvalidStateTransition, reason) : other(reason);

async function start(req: m.StartTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.cellId ? [] : ['cell_id'])]);
  // One try: a start that loses its compare-and-swap is not retried (another starter won the task).
  const task = await findTask(ctx, req.taskGuid);
  const o = await startTask(ctx.client, task, req.cellId, new Date());
  if (o.outcome === 'done') return { $typeName: 'models.StartTaskResponse' as const, shouldStart: o.value.shouldStart };
  if (o.outcome === 'refused') throw byRule()(o.rule, o.reason);
  throw conflict(`task ${req.taskGuid} changed while starting; not started`);
}

async function complete(req: m.CompleteTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.cellId ? [] : ['cell_id'])]);
  const completion = { failed: req.failed, failureReason: req.failureReason, result: req.result };
  await onTask(
    ctx,
    req.taskGuid,
    (task) => completeTask(ctx.client, task, req.cellId, completion, new Date()),
    byRule((reason) => new BbsFailure(m.Error_Type.RunningOnDifferentCell, reason)),
  );
  return ok();
}

/** Deprecated FailTask: Pending or Running → Completed and failed. */
async function fail(req: m.FailTaskRequest, ctx: Ctx) {
  check([...(req.taskGuid ? [] : ['task_guid']), ...(req.failureReason ? [] : ['failure_reason'])]);
  await onTask(ctx, req.taskGuid, (task) => failTask(ctx.client, task, req.failureReason, new Date()), byRule());
  return ok();
}

/** RejectTask: the cell cannot run it; back to the auction (off its cell), or failed after max retries. */
function reject(maxRetries: number) {
  return async (req: m.RejectTaskRequest, ctx: Ctx) => {
    // Diego names the missing reason "failure_reason" in this message.
    check([...(req.taskGuid ? [] : ['task_guid']), ...(req.rejectionReason ? [] : ['failure_reason'])]);
    await onTask(
      ctx,
      req.taskGuid,
      (task) => rejectTask(ctx.client, task, req.rejectionReason, { maxRetries, now: new Date() }),
      // Diego: a task neither Pending nor Running cannot be rejected (a bad request, not a transition error).
      () => new BbsFailure(m.Error_Type.InvalidRequest, 'the request received is invalid'),
    );
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
