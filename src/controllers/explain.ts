// What a user sees when something goes wrong, decided purely from objects: the Events a crash or a failed Task
// records, the DesiredLRP conditions that roll up why its instances are not running (Available, Crashing), and a
// Cell's Ready condition. The converger, the task controller and the cell status controller record and write them.
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { stateOf } from '../lifecycle/actual-lrp.ts';
import { crashPolicyFor, restartDelayMs } from '../lifecycle/crash-policy.ts';
import type { Condition } from './conditions.ts';

export interface UserEvent {
  type: 'Normal' | 'Warning';
  reason: string;
  message: string;
}

export type ConditionInput = Omit<Condition, 'lastTransitionTime'>;

/** "Exited with status N" in a crash reason (Diego's run step wording), as N. */
export function exitStatusOf(reason: string | undefined): number | undefined {
  const m = /Exited with status (\d+)/.exec(reason ?? '');
  return m ? Number(m[1]) : undefined;
}

function seconds(ms: number): string {
  if (ms < 60_000) return `${Math.round(ms / 1000)}s`;
  const m = Math.floor(ms / 60_000);
  const s = Math.round((ms % 60_000) / 1000);
  return s ? `${m}m${s}s` : `${m}m`;
}

/**
 * The Event for an instance that has just crashed (`before` not CRASHED, or crashed again with a new count; `after`
 * CRASHED): what it said, its exit status, the crash count and when Diego's restart policy starts it again — or
 * that it never will (the crash limit). Undefined when `after` is not a new crash.
 */
export function crashEvent(d: IDesiredLRP, before: IActualLRP | undefined, after: IActualLRP): UserEvent | undefined {
  if (stateOf(after) !== 'CRASHED') return undefined;
  const count = after.status?.crashCount ?? 0;
  if (before && stateOf(before) === 'CRASHED' && (before.status?.crashCount ?? 0) === count) return undefined;
  const policy = crashPolicyFor(d.spec);
  const reason = after.status?.crashReason || 'no reason given';
  const status = exitStatusOf(after.status?.crashReason);
  const where = before?.status?.cellId ? ` on cell ${before.status.cellId}` : '';
  const what = `instance ${after.spec.index}${where} crashed: ${reason}${status === undefined ? '' : ` (exit status ${status})`}`;
  const delay = restartDelayMs(count, policy);
  if (delay === undefined) {
    return {
      type: 'Warning',
      reason: 'CrashLimitReached',
      message: `${what}; crash count ${count} reached the limit of ${policy.maxRestarts}: it is not restarted any more (scale down and up, or update the DesiredLRP, to start it again)`,
    };
  }
  const since = Date.parse(after.status?.since ?? '');
  const at = Number.isFinite(since) ? new Date(since + delay).toISOString() : undefined;
  const when = delay === 0 ? 'restarting now' : `restarting in ${seconds(delay)}${at ? ` (at ${at})` : ''}`;
  return { type: 'Warning', reason: 'Crashed', message: `${what}; crash count ${count}; ${when}` };
}

/** The Event for a Task that has just completed with failed: true (`before` not yet so). */
export function taskFailedEvent(before: ITask | undefined, after: ITask): UserEvent | undefined {
  const failed = (t: ITask | undefined) =>
    !!t && (t.status?.state === 'Completed' || t.status?.state === 'Resolving') && t.status.failed === true;
  if (!failed(after) || failed(before)) return undefined;
  return {
    type: 'Warning',
    reason: 'TaskFailed',
    message: `task ${after.spec.taskGuid} failed: ${after.status?.failureReason || 'no reason given'}`,
  };
}

function countBy<T>(items: readonly T[], key: (t: T) => string): [string, number][] {
  const m = new Map<string, number>();
  for (const it of items) m.set(key(it), (m.get(key(it)) ?? 0) + 1);
  return [...m].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0]));
}

/**
 * A DesiredLRP's Available and Crashing conditions from its ORDINARY instances: Available is True when every desired
 * instance runs, else False with the most telling reason — PlacementFailed (grouped by the auctioneer's placement
 * error, "insufficient resources: memory (2 of 5)"), CrashLimitReached, Crashing, or Starting. Crashing is True while
 * an instance is CRASHED, with its latest crash reason.
 */
export function desiredConditions(d: IDesiredLRP, actuals: readonly IActualLRP[]): ConditionInput[] {
  const instances = d.spec.instances ?? 1;
  const generation = d.metadata.generation;
  const ordinary = actuals.filter(
    (a) =>
      (a.status?.presence ?? 'ORDINARY') === 'ORDINARY' && a.spec.index < instances && !a.metadata.deletionTimestamp,
  );
  const running = ordinary.filter((a) => stateOf(a) === 'RUNNING').length;
  const crashed = ordinary.filter((a) => stateOf(a) === 'CRASHED');
  const unplaced = ordinary.filter((a) => stateOf(a) === 'UNCLAIMED' && !a.spec.cellId && a.status?.placementError);
  const policy = crashPolicyFor(d.spec);
  const givenUp = crashed.filter((a) => restartDelayMs(a.status?.crashCount ?? 0, policy) === undefined);
  const latest = [...crashed].sort((a, b) => (b.status?.since ?? '').localeCompare(a.status?.since ?? ''))[0];
  const latestReason = latest
    ? `instance ${latest.spec.index}: ${latest.status?.crashReason || 'no reason given'}`
    : '';

  let available: ConditionInput;
  if (running >= instances) {
    available = {
      type: 'Available',
      status: 'True',
      reason: 'AllInstancesRunning',
      message: `${running}/${instances} running`,
    };
  } else if (unplaced.length > 0) {
    const errors = countBy(unplaced, (a) => a.status?.placementError ?? '').map(
      ([e, n]) => `${e} (${n} of ${instances})`,
    );
    available = { type: 'Available', status: 'False', reason: 'PlacementFailed', message: errors.join('; ') };
  } else if (givenUp.length > 0) {
    available = {
      type: 'Available',
      status: 'False',
      reason: 'CrashLimitReached',
      message: `${givenUp.length} of ${instances} instances crashed ${policy.maxRestarts} times and are not restarted; ${latestReason}`,
    };
  } else if (crashed.length > 0) {
    available = {
      type: 'Available',
      status: 'False',
      reason: 'Crashing',
      message: `${crashed.length} of ${instances} instances crashed; ${latestReason}`,
    };
  } else {
    available = {
      type: 'Available',
      status: 'False',
      reason: 'Starting',
      message: `${running}/${instances} running, ${instances - running} starting or waiting for a cell`,
    };
  }
  const crashing: ConditionInput =
    crashed.length > 0
      ? {
          type: 'Crashing',
          status: 'True',
          reason: givenUp.length > 0 ? 'CrashLimitReached' : 'InstancesCrashed',
          message: `${crashed.length} of ${instances} instances crashed; ${latestReason}`,
        }
      : { type: 'Crashing', status: 'False', reason: 'NoCrashedInstances', message: 'no instance is crashed' };
  return [
    { ...available, observedGeneration: generation },
    { ...crashing, observedGeneration: generation },
  ];
}

/**
 * A Cell's Ready condition: True while its agent is present (its presence Lease is renewed), it is not evacuating,
 * and it has room for at least one more container; else False with what is missing.
 */
export function cellReadyCondition(cell: ICell, present: boolean): ConditionInput {
  const generation = cell.metadata.generation;
  const not = (reason: string, message: string): ConditionInput => ({
    type: 'Ready',
    status: 'False',
    reason,
    message,
    observedGeneration: generation,
  });
  if (!present)
    return not(
      'NotPresent',
      "the cell agent's presence Lease is not renewed: the agent is down or cannot reach the API server",
    );
  if (cell.status?.evacuating) return not('Evacuating', 'the cell is evacuating: it takes no new work');
  const avail = cell.status?.available;
  if (avail) {
    const full = (['memoryMb', 'diskMb', 'containers'] as const).filter((r) => avail[r] <= 0);
    if (full.length > 0) return not('NoCapacity', `no ${full.join(', ')} left for new work`);
  }
  // No live figures in the message: each would be one more Cell write per capacity change (kubectl get dcell has them).
  return {
    type: 'Ready',
    status: 'True',
    reason: 'Ready',
    message: avail ? 'present, not evacuating, with room for more work' : 'present; capacity not reported yet',
    observedGeneration: generation,
  };
}
