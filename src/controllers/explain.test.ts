import { describe, expect, it } from 'vitest';
import type { IActualLRP, ICell, IDesiredLRP } from '../crds/models.ts';
import { lrp, task } from '../lifecycle/testing.ts';
import { cellReadyCondition, crashEvent, desiredConditions, exitStatusOf, taskFailedEvent } from './explain.ts';

const T = Date.UTC(2026, 11, 6, 10);
const desired = (instances: number, spec: Partial<IDesiredLRP['spec']> = {}) =>
  ({
    metadata: { name: 'web', namespace: 'ns', uid: 'u', generation: 3 },
    spec: { instances, ...spec },
  }) as IDesiredLRP;
const crashed = (index: number, count: number, reason: string, since = T): IActualLRP => {
  const a = lrp('CRASHED', { index });
  return {
    ...a,
    status: { ...a.status, crashCount: count, crashReason: reason, since: new Date(since).toISOString() },
  };
};
const unplaced = (index: number, placementError: string): IActualLRP => {
  const a = lrp('UNCLAIMED', { index });
  return { ...a, status: { ...a.status, placementError } };
};
const running = (index: number) => lrp('RUNNING', { index, instanceGuid: `g${index}`, cellId: 'c1' });

describe('crashEvent (an instance that has just crashed)', () => {
  it('says the reason, exit status, crash count and when it restarts', () => {
    const before = running(1);
    const after = crashed(1, 3, 'APP/PROC/WEB: Exited with status 7');
    expect(crashEvent(desired(2), before, after)).toEqual({
      type: 'Warning',
      reason: 'Crashed',
      message:
        'instance 1 on cell c1 crashed: APP/PROC/WEB: Exited with status 7 (exit status 7); crash count 3; ' +
        'restarting in 30s (at 2026-12-06T10:00:30.000Z)',
    });
    expect(crashEvent(desired(2), before, crashed(1, 1, 'oom'))?.message).toMatch(/crash count 1; restarting now$/);
  });

  it('says when it gives up (the crash limit, the DesiredLRP policy first)', () => {
    const e = crashEvent(desired(1, { crashRestartPolicy: { maxRestarts: 5 } }), running(0), crashed(0, 5, 'boom'));
    expect(e?.reason).toBe('CrashLimitReached');
    expect(e?.message).toMatch(/crash count 5 reached the limit of 5: it is not restarted any more/);
  });

  it('is recorded once per crash: not for an unchanged CRASHED record or another state', () => {
    const c = crashed(0, 2, 'x');
    expect(crashEvent(desired(1), c, { ...c, metadata: { ...c.metadata, resourceVersion: '2' } })).toBeUndefined();
    expect(crashEvent(desired(1), undefined, running(0))).toBeUndefined();
    expect(crashEvent(desired(1), c, crashed(0, 3, 'x'))?.reason).toBe('Crashed');
  });

  it('reads the exit status out of Diego’s wording only', () => {
    expect(exitStatusOf('APP/PROC/WEB: Exited with status 137')).toBe(137);
    expect(exitStatusOf('Instance became unhealthy: port 8080 refused')).toBeUndefined();
  });
});

describe('taskFailedEvent', () => {
  it('is recorded when a Task completes failed, once', () => {
    const done = task('Completed');
    const failed = { ...done, status: { ...done.status, failed: true, failureReason: 'Exited with status 2' } };
    expect(taskFailedEvent(task('Running'), failed)).toEqual({
      type: 'Warning',
      reason: 'TaskFailed',
      message: 'task t-guid failed: Exited with status 2',
    });
    expect(taskFailedEvent(failed, { ...failed, status: { ...failed.status, state: 'Resolving' } })).toBeUndefined();
    expect(taskFailedEvent(task('Running'), { ...done, status: { ...done.status, failed: false } })).toBeUndefined();
  });
});

describe('desiredConditions (why instances are not running)', () => {
  const byType = (d: IDesiredLRP, actuals: IActualLRP[]) =>
    Object.fromEntries(desiredConditions(d, actuals).map((c) => [c.type, c]));

  it('Available when every instance runs; nothing crashing', () => {
    const c = byType(desired(2), [running(0), running(1)]);
    expect(c.Available).toMatchObject({ status: 'True', reason: 'AllInstancesRunning', observedGeneration: 3 });
    expect(c.Crashing).toMatchObject({ status: 'False' });
  });

  it('PlacementFailed, grouped by the placement error, with how many of how many', () => {
    const d = desired(5);
    const actuals = [
      running(0),
      running(1),
      running(2),
      unplaced(3, 'insufficient resources: memory'),
      unplaced(4, 'insufficient resources: memory'),
    ];
    expect(byType(d, actuals).Available).toMatchObject({
      status: 'False',
      reason: 'PlacementFailed',
      message: 'insufficient resources: memory (2 of 5)',
    });
    const mixed = [
      unplaced(0, 'found no compatible cell'),
      unplaced(1, 'insufficient resources: memory'),
      unplaced(2, 'insufficient resources: memory'),
    ];
    expect(byType(desired(3), mixed).Available?.message).toBe(
      'insufficient resources: memory (2 of 3); found no compatible cell (1 of 3)',
    );
  });

  it('Crashing with the latest crash reason; CrashLimitReached once one is given up', () => {
    const d = desired(3);
    const c = byType(d, [running(0), crashed(1, 1, 'old', T - 1000), crashed(2, 2, 'APP: Exited with status 1')]);
    expect(c.Available).toMatchObject({
      status: 'False',
      reason: 'Crashing',
      message: '2 of 3 instances crashed; instance 2: APP: Exited with status 1',
    });
    expect(c.Crashing).toMatchObject({ status: 'True', reason: 'InstancesCrashed' });
    const given = byType(d, [running(0), running(1), crashed(2, 200, 'x')]);
    expect(given.Available?.reason).toBe('CrashLimitReached');
    expect(given.Crashing?.reason).toBe('CrashLimitReached');
  });

  it('Starting otherwise; copies and retired indices do not count', () => {
    const evac = lrp('RUNNING', { index: 0, presence: 'EVACUATING', instanceGuid: 'e', cellId: 'c2' });
    const c = byType(desired(1), [lrp('CLAIMED', { index: 0, instanceGuid: 'g', cellId: 'c1' }), evac, running(5)]);
    expect(c.Available).toMatchObject({
      status: 'False',
      reason: 'Starting',
      message: '0/1 running, 1 starting or waiting for a cell',
    });
  });
});

describe('cellReadyCondition', () => {
  const cell = (status: ICell['status']): ICell =>
    ({ metadata: { name: 'cell-1', generation: 1 }, spec: { cellId: 'cell-1' }, status }) as ICell;
  const room = { memoryMb: 100, diskMb: 100, containers: 3 };

  it('Ready while present, not evacuating, with room for a container', () => {
    expect(cellReadyCondition(cell({ available: room }), true)).toMatchObject({
      status: 'True',
      message: 'present, not evacuating, with room for more work',
    });
  });

  it('says what is missing', () => {
    expect(cellReadyCondition(cell({ available: room }), false).reason).toBe('NotPresent');
    expect(cellReadyCondition(cell({ available: room, evacuating: true }), true).reason).toBe('Evacuating');
    expect(cellReadyCondition(cell({ available: { ...room, memoryMb: 0, containers: 0 } }), true)).toMatchObject({
      reason: 'NoCapacity',
      message: 'no memoryMb, containers left for new work',
    });
  });
});
