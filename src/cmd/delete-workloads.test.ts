import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { planDeletion } from './delete-workloads.ts';

const meta = (name: string, extra: Record<string, unknown> = {}) => ({ name, namespace: 'apps', ...extra });
const dlrp = (name: string, deleting = false) =>
  ({ metadata: meta(name, deleting ? { deletionTimestamp: 'now' } : {}), spec: {} }) as unknown as IDesiredLRP;
const task = (name: string) => ({ metadata: meta(name), spec: {} }) as unknown as ITask;
const alrp = (name: string, cellId: string, deleting = false) =>
  ({
    metadata: meta(name, {
      finalizers: ['diego.dev/container'],
      ...(deleting ? { deletionTimestamp: 'now' } : {}),
    }),
    spec: { cellId },
  }) as unknown as IActualLRP;

describe('planDeletion (what helm uninstall deletes first)', () => {
  it('deletes DesiredLRPs before Tasks and ActualLRPs, and only what is not being deleted already', () => {
    const plan = planDeletion({
      desiredLrps: [dlrp('web'), dlrp('gone', true)],
      tasks: [task('t')],
      actualLrps: [alrp('web-0', 'node-a'), alrp('web-1', 'node-a', true), alrp('web-2', 'node-b', true)],
    });
    expect(plan.delete.map((d) => `${d.kind}/${d.name}`)).toEqual(['DesiredLRP/web', 'Task/t', 'ActualLRP/web-0']);
    expect(plan.done).toBe(false);
    expect(plan.left).toBe(
      '2 DesiredLRPs, 1 Tasks, 3 ActualLRPs, containers not yet destroyed on cells: node-a (2), node-b (1)',
    );
  });

  it('is done when nothing is left, and not while an ActualLRP waits for its cell', () => {
    expect(planDeletion({ desiredLrps: [], tasks: [], actualLrps: [] })).toEqual({
      delete: [],
      done: true,
      left: '0 DesiredLRPs, 0 Tasks, 0 ActualLRPs',
    });
    const waiting = planDeletion({ desiredLrps: [], tasks: [], actualLrps: [alrp('web-0', 'node-a', true)] });
    expect(waiting.delete).toEqual([]);
    expect(waiting.done).toBe(false);
  });
});
