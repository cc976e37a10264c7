import { describe, expect, it } from 'vitest';
import { applyResults, reserveOnCell } from './reserve.ts';
import { runAuction } from './scheduler.ts';
import { makeCell, makeCells, makeLrp, makeTask } from './testing.ts';

describe('reservations', () => {
  it('subtract memory (plus proxy for LRPs) and disk, use a container and count a start', () => {
    const cell = makeCell('a', { tasks: 2 });
    const afterLrp = reserveOnCell(cell, { kind: 'lrp', auction: makeLrp('x', 3, { memoryMb: 10, diskMb: 5 }) }, 32);
    expect(afterLrp).toMatchObject({
      available: { memoryMb: 58, diskMb: 95, containers: 99 },
      startingContainers: 1,
      lrps: [{ processGuid: 'x', index: 3 }],
      tasks: 2,
    });
    const afterTask = reserveOnCell(cell, { kind: 'task', auction: makeTask('t', { memoryMb: 10, diskMb: 5 }) }, 32);
    expect(afterTask).toMatchObject({ available: { memoryMb: 90, diskMb: 95, containers: 99 }, tasks: 3, lrps: [] });
    expect(cell.available.memoryMb).toBe(100);
  });

  it('applyResults carries an auction over to the next one', () => {
    const cells = makeCells(4, 2);
    const first = runAuction(cells, [makeLrp('app', 0), makeLrp('app', 1)], [makeTask('t')]);
    const after = applyResults(cells, first);
    expect(after.reduce((n, c) => n + c.lrps.length, 0)).toBe(2);
    expect(after.reduce((n, c) => n + c.tasks, 0)).toBe(1);
    expect(after.reduce((n, c) => n + c.startingContainers, 0)).toBe(3);
    expect(cells.every((c) => c.lrps.length === 0 && c.startingContainers === 0)).toBe(true);
    // The next instances of the app avoid the zones and cells already holding it.
    const second = runAuction(after, [makeLrp('app', 2), makeLrp('app', 3)], []);
    const used = new Set([...first.lrps.placed, ...second.lrps.placed].map((p) => p.cellId));
    expect(used.size).toBe(4);
  });
});
