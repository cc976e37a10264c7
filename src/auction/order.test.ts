import { describe, expect, it } from 'vitest';
import { dedupeLrps, dedupeTasks, orderBatch, sortLrps, sortTasks } from './order.ts';
import { makeLrp, makeTask } from './testing.ts';

describe('dedupe', () => {
  it('keeps the first LRP per processGuid.index and the first task per guid', () => {
    const lrps = [
      makeLrp('a', 0, { key: 'first' }),
      makeLrp('a', 1),
      makeLrp('a', 0, { key: 'second' }),
      makeLrp('b', 0),
    ];
    expect(dedupeLrps(lrps).map((l) => l.key)).toEqual(['first', 'a-1', 'b-0']);
    const tasks = [makeTask('t', { key: 'one' }), makeTask('u'), makeTask('t', { key: 'two' })];
    expect(dedupeTasks(tasks).map((t) => t.key)).toEqual(['one', 'u']);
  });
});

describe('ordering', () => {
  it('sorts LRPs by index then memory descending, tasks by memory descending, stably', () => {
    const lrps = [
      makeLrp('a', 1, { memoryMb: 10 }),
      makeLrp('b', 0, { memoryMb: 5 }),
      makeLrp('c', 0, { memoryMb: 50 }),
      makeLrp('d', 1, { memoryMb: 10 }),
      makeLrp('e', 2, { memoryMb: 500 }),
    ];
    expect(sortLrps(lrps).map((l) => l.processGuid)).toEqual(['c', 'b', 'a', 'd', 'e']);
    const tasks = [makeTask('x', { memoryMb: 1 }), makeTask('y', { memoryMb: 9 }), makeTask('z', { memoryMb: 1 })];
    expect(sortTasks(tasks).map((t) => t.taskGuid)).toEqual(['y', 'x', 'z']);
  });

  it('places index-0 LRPs, then tasks, then the other LRPs', () => {
    const order = orderBatch(
      [makeLrp('a', 1, { memoryMb: 999 }), makeLrp('b', 0, { memoryMb: 1 }), makeLrp('c', 0, { memoryMb: 2 })],
      [makeTask('t1', { memoryMb: 3 }), makeTask('t2', { memoryMb: 30 })],
    );
    expect(
      order.map((o) => (o.kind === 'lrp' ? `${o.auction.processGuid}.${o.auction.index}` : o.auction.taskGuid)),
    ).toEqual(['c.0', 'b.0', 't2', 't1', 'a.1']);
  });

  it('puts index-0 LRPs before tasks even when no LRP has a higher index', () => {
    const order = orderBatch([makeLrp('a', 0)], [makeTask('t')]);
    expect(order.map((o) => o.kind)).toEqual(['lrp', 'task']);
  });
});
