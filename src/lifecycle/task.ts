// Diego's Task state machine (bbs models/task.go ValidateTransitionTo, and the db operations that go around it:
// FailTask, CancelTask, RejectTask, the task convergence), pure: which event may move a task from which state, and
// the status each event writes. The fenced writes that use them are in ops.ts; every task writer goes through them.
import { TASK_STATES, type TaskState } from '../crds/task.ts';
import type { ITask } from '../crds/models.ts';
import { truncateReason } from './names.ts';

export { TASK_STATES, type TaskState };

/**
 * The events that move a task, each with the states it may start from and the states it leads to. Diego's
 * ValidateTransitionTo is start, complete and resolve; the others are the db operations that bypass it on purpose
 * (a pending task may be failed or cancelled; a rejected one goes back to Pending) and the convergence's.
 */
export const TASK_EVENTS = {
  /** The cell's StartTask. */
  start: { from: ['Pending'], to: ['Running'] },
  /** The cell's CompleteTask (succeeded or failed while it ran). */
  complete: { from: ['Running'], to: ['Completed'] },
  /** FailTask, a cancellation, an expired pending task, a lost cell, an invalid spec. */
  fail: { from: ['Pending', 'Running'], to: ['Completed'] },
  /** RejectTask: back to the auction, or failed once it was rejected max-retries times. */
  reject: { from: ['Pending', 'Running'], to: ['Pending', 'Completed'] },
  /** ResolvingTask: a resolver (or our callback) takes the completed task. */
  resolve: { from: ['Completed'], to: ['Resolving'] },
  /** The convergence's kick: a resolver that stalled gives the task back. */
  demote: { from: ['Resolving'], to: ['Completed'] },
  /** DeleteTask: a resolver is done with it. */
  delete: { from: ['Resolving'], to: [] },
  /** The convergence's expiry of a completed task nobody resolved. */
  expire: { from: ['Completed'], to: [] },
} as const satisfies Record<string, { from: readonly TaskState[]; to: readonly TaskState[] }>;

export type TaskEvent = keyof typeof TASK_EVENTS;

/** Whether `event` may happen to a task in state `from`. */
export function allows(event: TaskEvent, from: TaskState): boolean {
  return (TASK_EVENTS[event].from as readonly TaskState[]).includes(from);
}

/** Whether any event moves a task from `from` to `to` (the state machine as a table of pairs). */
export function canTransition(from: TaskState, to: TaskState): boolean {
  return Object.values(TASK_EVENTS).some(
    (e) => (e.from as readonly TaskState[]).includes(from) && (e.to as readonly TaskState[]).includes(to),
  );
}

/** A task's state; one not yet given its status (the task controller writes Pending first) counts as Pending. */
export const taskStateOf = (t: ITask): TaskState => t.status?.state ?? 'Pending';

/** Diego's messages for the failures the task lifecycle itself decides. */
export const REASON_CANCELLED = 'task was cancelled';
export const REASON_NOT_STARTED = 'not started within time limit';
export const REASON_CELL_DISAPPEARED = 'cell disappeared before completion';

/** Diego's default max_task_retries: a task rejected this many times fails on the next rejection. */
export const DEFAULT_MAX_TASK_RETRIES = 3;

export interface Completion {
  failed: boolean;
  failureReason?: string;
  result?: string;
}

const iso = (d: Date) => d.toISOString();

/** The first status of a new task (the task controller's). */
export function pendingStatus(now = new Date()): Record<string, unknown> {
  return { state: 'Pending', updatedAt: iso(now), rejectionCount: 0 };
}

/** Running on `cellId` (StartTask). */
export function runningStatus(cellId: string, now = new Date()): Record<string, unknown> {
  return { state: 'Running', cellId, updatedAt: iso(now) };
}

/** Completed status fields, as Diego's CompleteTask/FailTask set them (cell id cleared, first completion stamped). */
export function completedStatus(c: Completion, now = new Date()): Record<string, unknown> {
  const t = iso(now);
  return {
    state: 'Completed',
    failed: c.failed,
    failureReason: c.failed ? truncateReason(c.failureReason ?? '') : null,
    result: c.failed ? null : (c.result ?? ''),
    cellId: null,
    updatedAt: t,
    firstCompletedAt: t,
  };
}

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
  const rejected = { rejectionCount: count + 1, rejectionReason: truncateReason(reason) };
  if (count >= maxRetries) return { ...completedStatus({ failed: true, failureReason: reason }, now), ...rejected };
  return { ...rejected, state: 'Pending', cellId: null, updatedAt: iso(now) };
}

/** Resolving (ResolvingTask). */
export function resolvingStatus(now = new Date()): Record<string, unknown> {
  return { state: 'Resolving', updatedAt: iso(now) };
}

/** Back to Completed from a stalled Resolving (the convergence's kick). */
export function demotedStatus(now = new Date()): Record<string, unknown> {
  return { state: 'Completed', updatedAt: iso(now) };
}
