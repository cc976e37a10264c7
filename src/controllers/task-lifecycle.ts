// Diego's task state machine (bbs models/task.go ValidateTransitionTo) and the cell-side transitions, each a
// compare-and-swap on the Task's status so a task starts at most once.
import type { ITask } from '../crds/models.ts';
import type { TaskState } from '../crds/task.ts';
import { REASON_MAX_LENGTH } from '../crds/common.ts';
import { DiegoClient, isConflict, refOf } from '../lib/resources.ts';

const ALLOWED: Record<TaskState, TaskState[]> = {
  Pending: ['Running', 'Completed'], // Completed: cancelled, expired, or failed placement
  Running: ['Completed'],
  Completed: ['Resolving'],
  Resolving: ['Completed'], // demoted when a resolver (or callback) stalls
};

export function canTransition(from: TaskState, to: TaskState): boolean {
  return ALLOWED[from].includes(to);
}

export const REASON_CANCELLED = 'task was cancelled';
export const REASON_NOT_STARTED = 'not started within time limit';
export const REASON_CELL_DISAPPEARED = 'cell disappeared before completion';

export class TaskTransitionError extends Error {}

/**
 * The cell's StartTask: Pending → Running on this cell. Returns true if this caller won the task and must
 * run it; false if it is already Running on this cell (Diego's should_start=false). Throws otherwise.
 */
export async function startTask(client: DiegoClient, task: ITask, cellId: string, now = new Date()): Promise<boolean> {
  const state = task.status?.state ?? 'Pending';
  if (state === 'Running' && task.status?.cellId === cellId) return false;
  if (state !== 'Pending') throw new TaskTransitionError(`cannot start task ${task.spec.taskGuid}: it is ${state}`);
  if (task.spec.cellId !== cellId)
    throw new TaskTransitionError(`task ${task.spec.taskGuid} is not placed on ${cellId}`);
  if (task.spec.cancelled) throw new TaskTransitionError(`task ${task.spec.taskGuid} was cancelled`);
  try {
    await client.patchStatus('Task', refOf(task), { state: 'Running', cellId, updatedAt: now.toISOString() });
    return true;
  } catch (err) {
    if (isConflict(err))
      throw new TaskTransitionError(`task ${task.spec.taskGuid} changed while starting; not started`);
    throw err;
  }
}

export interface Completion {
  failed: boolean;
  failureReason?: string;
  result?: string;
}

/** Completed status fields, as Diego's CompleteTask/FailTask set them (cell id cleared, first completion stamped). */
export function completedStatus(c: Completion, now = new Date()): Record<string, unknown> {
  const t = now.toISOString();
  return {
    state: 'Completed',
    failed: c.failed,
    failureReason: c.failed ? (c.failureReason ?? '').slice(0, REASON_MAX_LENGTH) : null,
    result: c.failed ? null : (c.result ?? ''),
    cellId: null,
    updatedAt: t,
    firstCompletedAt: t,
  };
}

/** Diego's default max_task_retries: a task rejected this many times fails on the next rejection. */
export const DEFAULT_MAX_TASK_RETRIES = 3;

/**
 * Diego's RejectTask: back to Pending with the rejection counted, off its cell; once it has been rejected
 * maxRetries times before, it fails with the rejection reason instead (a status patch; placement is the caller's).
 */
export function rejectedStatus(
  task: ITask,
  reason: string,
  maxRetries: number,
  now = new Date(),
): Record<string, unknown> {
  const count = task.status?.rejectionCount ?? 0;
  const rejected = { rejectionCount: count + 1, rejectionReason: reason.slice(0, REASON_MAX_LENGTH) };
  if (count >= maxRetries) return { ...completedStatus({ failed: true, failureReason: reason }, now), ...rejected };
  return { ...rejected, state: 'Pending', cellId: null, updatedAt: now.toISOString() };
}

/** The cell's CompleteTask: Running on this cell → Completed. */
export async function completeTask(
  client: DiegoClient,
  task: ITask,
  cellId: string,
  c: Completion,
  now = new Date(),
): Promise<void> {
  if (task.status?.state !== 'Running')
    throw new TaskTransitionError(
      `cannot complete task ${task.spec.taskGuid}: it is ${task.status?.state ?? 'Pending'}`,
    );
  if (task.status.cellId !== cellId)
    throw new TaskTransitionError(`task ${task.spec.taskGuid} is running on a different cell`);
  await client.patchStatus('Task', refOf(task), completedStatus(c, now));
}
