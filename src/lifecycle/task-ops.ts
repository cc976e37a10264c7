// The fenced writes of Tasks (see ops.ts): every task writer — the task controller, the auctioneer, the rep, the BBS
// routes, the simulated cell — moves a task through these, and each checks the event against the state machine
// (task.ts TASK_EVENTS) before its compare-and-swap.
import type { ITask } from '../crds/models.ts';
import { type DiegoClient, refOf } from '../lib/resources.ts';
import { placedOn } from './actual-lrp.ts';
import { placementPatch } from './names.ts';
import { cas, done, getOrUndefined, lostRace, type Outcome, refused, uncertain } from './outcome.ts';
import {
  allows,
  completedStatus,
  type Completion,
  demotedStatus,
  pendingStatus,
  rejectedStatus,
  resolvingStatus,
  runningStatus,
  type TaskEvent,
  taskStateOf,
} from './task.ts';

const nameOf = (o: { metadata: { name?: string } }) => o.metadata.name ?? '';
const taskGuidOf = (t: ITask) => t.spec.taskGuid;

/** Refused by the task state machine (Diego's InvalidStateTransition wording). */
function notAllowed<T>(event: TaskEvent, t: ITask, to: string): Outcome<T> | undefined {
  const state = taskStateOf(t);
  return allows(event, state) ? undefined : refused('transition', `Cannot transition from ${state} to ${to}`);
}

/** The task controller's first write: a new task is Pending. */
export async function initializeTask(client: DiegoClient, t: ITask, now: Date): Promise<Outcome<ITask>> {
  if (t.status?.state) return done(t);
  return cas(() => client.patchStatus('Task', refOf(t), pendingStatus(now)));
}

/**
 * The cell's StartTask: Pending → Running on `cellId`, only by the cell the task is placed on and not once it was
 * cancelled: of two claimers exactly one wins (at most once). `shouldStart` false: it runs on this cell already
 * (Diego's should_start=false). A write that failed on a network error is read back before it is called lost.
 */
export async function startTask(
  client: DiegoClient,
  t: ITask,
  cellId: string,
  now: Date,
): Promise<Outcome<{ task: ITask; shouldStart: boolean }>> {
  const state = taskStateOf(t);
  if (state === 'Running' && t.status?.cellId === cellId) return done({ task: t, shouldStart: false });
  const no = notAllowed<{ task: ITask; shouldStart: boolean }>('start', t, 'Running');
  if (no) return no;
  if (!placedOn(t, cellId)) return refused('placement', `task ${taskGuidOf(t)} is not placed on ${cellId}`);
  if (t.spec.cancelled) return refused('cancelled', `task ${taskGuidOf(t)} was cancelled`);
  try {
    const task = await client.patchStatus('Task', refOf(t), runningStatus(cellId, now));
    return done({ task, shouldStart: true });
  } catch (err) {
    const lost = lostRace(err);
    if (lost) return lost;
    if (!uncertain(err)) throw err;
    const current = await getOrUndefined(client, 'Task', t.metadata.namespace, nameOf(t)).catch(() => undefined);
    const landed = current?.metadata.uid === t.metadata.uid && current?.status?.state === 'Running';
    if (current && landed && current.status?.cellId === cellId) return done({ task: current, shouldStart: true });
    throw err;
  }
}

/** The cell's CompleteTask: Running on `cellId` → Completed (Diego: refused when it runs on another cell). */
export async function completeTask(
  client: DiegoClient,
  t: ITask,
  cellId: string,
  c: Completion,
  now: Date,
): Promise<Outcome<ITask>> {
  const cell = t.status?.cellId ?? '';
  if (taskStateOf(t) === 'Running' && cell !== cellId)
    return refused('other-cell', `Running on cell ${cell} not ${cellId}`);
  const no = notAllowed<ITask>('complete', t, 'Completed');
  if (no) return no;
  return cas(() => client.patchStatus('Task', refOf(t), completedStatus(c, now)));
}

/**
 * Diego's FailTask (and a cancellation, an expiry, a lost cell, an invalid spec): Pending or Running → Completed
 * and failed with `reason`.
 */
export async function failTask(client: DiegoClient, t: ITask, reason: string, now: Date): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>('fail', t, 'Completed');
  if (no) return no;
  return cas(() => client.patchStatus('Task', refOf(t), completedStatus({ failed: true, failureReason: reason }, now)));
}

/**
 * Diego's RejectTask: back to the auction with the rejection counted, or failed once it was rejected `maxRetries`
 * times. Two writes (the count is status, the placement spec), ordered so nobody can act on the task in between and
 * no rejection is lost: a Pending task is counted first, while still placed (the auction leaves it alone; the
 * rejecting cell's stale views lose their compare-and-swap), then taken off its cell, retried over a fresh read while
 * it is still that rejected task; a Running task is taken off its cell first (nobody auctions a Running task), then
 * counted. `byCell`: a cell rejecting work of its own — refused unless the task is placed or running there.
 */
export async function rejectTask(
  client: DiegoClient,
  t: ITask,
  reason: string,
  opts: { maxRetries: number; now: Date; byCell?: string },
): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>('reject', t, 'Pending');
  if (no) return no;
  if (opts.byCell !== undefined && !placedOn(t, opts.byCell) && t.status?.cellId !== opts.byCell)
    return refused('placement', `task ${taskGuidOf(t)} is not ${opts.byCell}'s`);
  const counting = (x: ITask) => () =>
    client.patchStatus('Task', refOf(x), rejectedStatus(x, reason, opts.maxRetries, opts.now));
  if (taskStateOf(t) === 'Running') {
    let current = t;
    if (t.spec.cellId) {
      const off = await cas(() => client.patch('Task', refOf(t), placementPatch(null)));
      if (off.outcome !== 'done') return off;
      current = off.value;
    }
    return cas(counting(current));
  }
  const counted = await cas(counting(t));
  if (counted.outcome !== 'done') return counted;
  const placedCell = t.spec.cellId;
  let current: ITask | undefined = counted.value;
  for (let i = 1; i <= 5 && current; i++) {
    // Still the task this rejection counted, waiting on the rejecting cell: take it off.
    const same =
      current.spec.cellId === placedCell &&
      taskStateOf(current) === 'Pending' &&
      current.status?.rejectionCount === counted.value.status?.rejectionCount;
    if (!placedCell || !same) break;
    const seen: ITask = current;
    const off = await cas(() => client.patch('Task', refOf(seen), placementPatch(null)));
    if (off.outcome === 'done') return off;
    if (off.outcome !== 'moved-on' || off.why !== 'changed') break;
    current = await getOrUndefined(client, 'Task', t.metadata.namespace, nameOf(t));
  }
  return counted; // counted; a placement left behind is rejected again by its cell
}

/** Diego's ResolvingTask: Completed → Resolving (one resolver handles it). */
export async function resolveTask(client: DiegoClient, t: ITask, now: Date): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>('resolve', t, 'Resolving');
  if (no) return no;
  return cas(() => client.patchStatus('Task', refOf(t), resolvingStatus(now)));
}

/** The convergence's kick: a Resolving task whose resolver stalled goes back to Completed. */
export async function demoteTask(client: DiegoClient, t: ITask, now: Date): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>('demote', t, 'Completed');
  if (no) return no;
  return cas(() => client.patchStatus('Task', refOf(t), demotedStatus(now)));
}

/**
 * Diego's DeleteTask of a resolved task (`delete`, from Resolving), or the convergence's expiry of a completed task
 * nobody resolved (`expire`, from Completed). `asSeen` (default): only the version read; false deletes by name.
 */
export async function deleteTask(
  client: DiegoClient,
  t: ITask,
  opts: { event?: 'delete' | 'expire'; asSeen?: boolean } = {},
): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>(opts.event ?? 'delete', t, 'deleted');
  if (no) return no;
  const ref = opts.asSeen === false ? { namespace: t.metadata.namespace, name: nameOf(t) } : refOf(t);
  const deleted = await cas(() => client.delete('Task', ref));
  return deleted.outcome === 'done' ? done(t) : deleted;
}

/**
 * Diego's CancelTask, our way: spec.cancelled on a Pending or Running task (a compare-and-swap, so a task that just
 * completed is not cancelled after the fact); the task controller then fails it and its cell stops it.
 */
export async function cancelTask(client: DiegoClient, t: ITask): Promise<Outcome<ITask>> {
  const no = notAllowed<ITask>('fail', t, 'Completed');
  if (no) return no;
  return cas(() => client.patch('Task', refOf(t), { spec: { cancelled: true } }));
}
