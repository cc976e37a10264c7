import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { lrp, task } from '../lifecycle/testing.ts';
import { CellUsage, type UsageSource } from './cell-usage.ts';

type Handler<T> = (obj: T, old?: T) => void;

/** Informer-like event sources the test fires by hand. */
function source() {
  const handlers = {
    actual: new Map<string, Handler<IActualLRP>[]>(),
    tasks: new Map<string, Handler<ITask>[]>(),
    desired: new Map<string, Handler<IDesiredLRP>[]>(),
  };
  const on =
    <T>(m: Map<string, Handler<T>[]>) =>
    (event: string, fn: Handler<T>) =>
      m.set(event, [...(m.get(event) ?? []), fn]);
  const desired = new Map<string, IDesiredLRP>();
  const actuals: IActualLRP[] = [];
  const src: UsageSource = {
    actual: { on: on(handlers.actual) },
    tasks: { on: on(handlers.tasks) },
    desired: { on: on(handlers.desired) },
    actualByDesiredUid: { get: () => actuals },
    desiredFor: () => desired.get('web'),
  };
  const fire = <T>(m: Map<string, Handler<T>[]>, event: string, obj: T, old?: T) =>
    (m.get(event) ?? []).forEach((fn) => fn(obj, old));
  return { src, handlers, fire, desired, actuals };
}

const app = (memoryMb: number, diskMb: number): IDesiredLRP =>
  ({ metadata: { name: 'web', namespace: 'ns', uid: 'u' }, spec: { memoryMb, diskMb } }) as IDesiredLRP;

describe('CellUsage (each cell’s usage kept from events, not recounted per auction)', () => {
  it('counts an instance from placement to crash, moves it with its cell, and forgets it when deleted', () => {
    const { src, handlers, fire, desired } = source();
    desired.set('web', app(256, 1024));
    const usage = new CellUsage(src);
    const placed = lrp('UNCLAIMED', { placedOn: 'c1' });
    fire(handlers.actual, 'add', placed);
    expect(usage.of('c1')).toMatchObject({ memoryMb: 256, diskMb: 1024, containers: 1, starting: 1, tasks: 0 });
    expect(usage.of('c1')?.lrps.get('web')).toBe(1);
    const running = lrp('RUNNING', { placedOn: 'c1', instanceGuid: 'g', cellId: 'c1' });
    fire(handlers.actual, 'update', running, placed);
    expect(usage.of('c1')).toMatchObject({ containers: 1, starting: 0 });
    // The same event twice (a relist) changes nothing.
    fire(handlers.actual, 'update', running, running);
    expect(usage.of('c1')).toMatchObject({ containers: 1, memoryMb: 256 });
    const moved = lrp('UNCLAIMED', { placedOn: 'c2' });
    fire(handlers.actual, 'update', moved, running);
    expect(usage.of('c1')).toBeUndefined();
    expect(usage.of('c2')).toMatchObject({ containers: 1, starting: 1 });
    fire(handlers.actual, 'update', lrp('CRASHED', { placedOn: 'c2' }), moved);
    expect(usage.of('c2')).toBeUndefined();
    fire(handlers.actual, 'update', moved);
    fire(handlers.actual, 'delete', moved);
    expect(usage.of('c2')).toBeUndefined();
  });

  it('sizes instances again when their DesiredLRP arrives after them', () => {
    const { src, handlers, fire, desired, actuals } = source();
    const usage = new CellUsage(src);
    const a = lrp('RUNNING', { placedOn: 'c1', instanceGuid: 'g', cellId: 'c1' });
    actuals.push(a);
    fire(handlers.actual, 'add', a);
    expect(usage.of('c1')).toMatchObject({ memoryMb: 0, containers: 1 });
    const d = app(128, 64);
    desired.set('web', d);
    fire(handlers.desired, 'add', d);
    expect(usage.of('c1')).toMatchObject({ memoryMb: 128, diskMb: 64, containers: 1 });
  });

  it('counts tasks while Pending or Running on their cell', () => {
    const { src, handlers, fire } = source();
    const usage = new CellUsage(src);
    const pending = {
      ...task('Pending', { placedOn: 'c1' }),
      spec: { ...task('Pending').spec, cellId: 'c1', memoryMb: 64 },
    };
    fire(handlers.tasks, 'add', pending);
    expect(usage.of('c1')).toMatchObject({ memoryMb: 64, containers: 1, starting: 1, tasks: 1 });
    const runningTask = { ...pending, status: { state: 'Running' as const, cellId: 'c1' } };
    fire(handlers.tasks, 'update', runningTask, pending);
    expect(usage.of('c1')).toMatchObject({ containers: 1, starting: 0, tasks: 1 });
    fire(handlers.tasks, 'update', { ...runningTask, status: { state: 'Completed' as const } }, runningTask);
    expect(usage.of('c1')).toBeUndefined();
  });
});
