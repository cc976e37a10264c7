import { describe, expect, it } from 'vitest';
import {
  ERROR_CELL_COMMUNICATION,
  ERROR_EXCEEDED_INFLIGHT_CREATION,
  ERROR_ROOTFS_MISMATCH,
  ERROR_VOLUME_DRIVER_MISMATCH,
} from './errors.ts';
import { runAuction } from './scheduler.ts';
import { makeCell, makeCells, makeLrp, makeTask, rng, withRunningLrps } from './testing.ts';
import type { AuctionResults, CellState } from './types.ts';

const placedOn = (r: AuctionResults): Record<string, string> =>
  Object.fromEntries([...r.lrps.placed, ...r.tasks.placed].map((p) => [p.auction.key, p.cellId] as const));
const errors = (r: AuctionResults): Record<string, string> =>
  Object.fromEntries([...r.lrps.failed, ...r.tasks.failed].map((f) => [f.auction.key, f.placementError] as const));

function deepFreeze<T>(o: T): T {
  if (o !== null && typeof o === 'object' && !Object.isFrozen(o)) {
    Object.freeze(o);
    for (const v of Object.values(o)) deepFreeze(v);
  }
  return o;
}

describe('runAuction: cells taking part', () => {
  it('fails everything with the communication error when there are no cells', () => {
    const r = runAuction([], [makeLrp('a', 0)], [makeTask('t')]);
    expect(errors(r)).toEqual({ 'a-0': ERROR_CELL_COMMUNICATION, t: ERROR_CELL_COMMUNICATION });
    expect(r.lrps.failed[0]?.explanation.cellsConsidered).toBe(0);
  });

  it('leaves evacuating cells out (all evacuating = no cells)', () => {
    const busy = withRunningLrps(makeCell('busy'), 90);
    const evac = makeCell('evac', { evacuating: true });
    const r = runAuction([evac, busy], [makeLrp('a', 0)], []);
    expect(placedOn(r)).toEqual({ 'a-0': 'busy' });
    expect(r.lrps.placed[0]?.explanation.cellsConsidered).toBe(1);
    expect(errors(runAuction([evac], [makeLrp('a', 0)], []))).toEqual({ 'a-0': ERROR_CELL_COMMUNICATION });
  });
});

describe('runAuction: filters and errors', () => {
  it('reports the rootfs error when no cell has the stack', () => {
    const r = runAuction(
      makeCells(3),
      [makeLrp('a', 0, { rootFs: 'preloaded:windows' })],
      [makeTask('t', { rootFs: 'oci:///x' })],
    );
    expect(errors(r)).toEqual({ 'a-0': ERROR_ROOTFS_MISMATCH, t: ERROR_ROOTFS_MISMATCH });
  });

  it('places docker rootfs only on cells listing the docker provider', () => {
    const cells = [
      makeCell('a', { rootfsProviders: [{ name: 'preloaded', properties: ['linux'] }] }),
      withRunningLrps(makeCell('b'), 50),
    ];
    expect(placedOn(runAuction(cells, [makeLrp('x', 0, { rootFs: 'docker:///busybox' })], []))).toEqual({ 'x-0': 'b' });
  });

  it('reports the volume driver error when the stack matches but drivers do not', () => {
    const cells = [makeCell('a', { volumeDrivers: ['nfs'] })];
    const r = runAuction(cells, [makeLrp('a', 0, { volumeDrivers: ['nfs', 'smb'] })], []);
    expect(errors(r)).toEqual({ 'a-0': ERROR_VOLUME_DRIVER_MISMATCH });
    expect(placedOn(runAuction(cells, [makeLrp('a', 0, { volumeDrivers: ['nfs'] })], []))).toEqual({ 'a-0': 'a' });
  });

  it('reports placement tag errors with the requested tags', () => {
    const cells = [makeCell('a', { placementTags: ['isolated'] })];
    const r = runAuction(
      cells,
      [makeLrp('none', 0), makeLrp('one', 0, { placementTags: ['x'] })],
      [makeTask('many', { placementTags: ['x', 'y', 'z'] })],
    );
    expect(errors(r)).toEqual({
      'none-0': 'found no compatible cell with no placement tags',
      'one-0': 'found no compatible cell with placement tag "x"',
      many: 'found no compatible cell with placement tags "x", "y" and "z"',
    });
  });

  it('keeps the furthest filter error across zones, whatever the zone order', () => {
    for (const [rootfsZone, tagsZone] of [
      ['a', 'b'],
      ['b', 'a'],
    ]) {
      const cells = [
        makeCell('no-stack', { zone: rootfsZone, rootfsProviders: [] }),
        makeCell('no-driver', { zone: tagsZone }),
        makeCell('tagged', { zone: tagsZone, volumeDrivers: ['nfs'], placementTags: ['t'] }),
      ];
      const r = runAuction(
        cells,
        [makeLrp('x', 0, { volumeDrivers: ['nfs'] })],
        [makeTask('y', { volumeDrivers: ['nfs'] })],
      );
      expect(errors(r)).toEqual({
        'x-0': 'found no compatible cell with no placement tags',
        y: 'found no compatible cell with no placement tags',
      });
      const onlyDrivers = runAuction(cells.slice(0, 2), [makeLrp('x', 0, { volumeDrivers: ['nfs'] })], []);
      expect(errors(onlyDrivers)).toEqual({ 'x-0': ERROR_VOLUME_DRIVER_MISMATCH });
    }
  });

  it('names only the resource problems every failing cell shares', () => {
    const lowMem = makeCell('m', { available: { memoryMb: 10, diskMb: 100, containers: 100 } });
    const lowBoth = makeCell('md', { zone: 'z1', available: { memoryMb: 10, diskMb: 10, containers: 100 } });
    const lowDisk = makeCell('d', { available: { memoryMb: 100, diskMb: 10, containers: 100 } });
    const full = makeCell('c', { available: { memoryMb: 100, diskMb: 100, containers: 0 } });
    const big = { memoryMb: 50, diskMb: 50 };
    expect(errors(runAuction([lowMem, lowBoth], [makeLrp('a', 0, big)], [makeTask('t', big)]))).toEqual({
      'a-0': 'insufficient resources: memory',
      t: 'insufficient resources: memory',
    });
    expect(errors(runAuction([lowMem, lowDisk], [makeLrp('a', 0, big)], []))).toEqual({
      'a-0': 'insufficient resources',
    });
    expect(errors(runAuction([full], [makeLrp('a', 0)], []))).toEqual({ 'a-0': 'insufficient resources: containers' });
    expect(errors(runAuction([lowBoth], [makeLrp('a', 0, big)], []))).toEqual({
      'a-0': 'insufficient resources: disk, memory',
    });
  });

  it('adds proxy memory to LRPs (not tasks) for fit and reservation', () => {
    const cell = makeCell('a');
    const cfg = { proxyMemoryMb: 32 };
    expect(errors(runAuction([cell], [makeLrp('a', 0, { memoryMb: 80 })], [], cfg))).toEqual({
      'a-0': 'insufficient resources: memory',
    });
    expect(placedOn(runAuction([cell], [], [makeTask('t', { memoryMb: 80 })], cfg))).toEqual({ t: 'a' });
    // 2 × (30 + 32) > 100: the second instance no longer fits once the first is reserved with its proxy.
    const r = runAuction([cell], [makeLrp('a', 0, { memoryMb: 30 }), makeLrp('b', 0, { memoryMb: 30 })], [], cfg);
    expect(r.lrps.placed).toHaveLength(1);
    expect(r.lrps.failed[0]?.placementError).toBe('insufficient resources: memory');
  });

  it('fails work at once when the in-flight start limit is reached', () => {
    const cells = [makeCell('a', { startingContainers: 1 }), makeCell('b', { zone: 'z1', startingContainers: 1 })];
    const r = runAuction(cells, [makeLrp('a', 0), makeLrp('a', 1)], [makeTask('t')], {
      startingContainerCountMaximum: 4,
    });
    expect(r.lrps.placed.map((p) => p.auction.key)).toEqual(['a-0']);
    expect(r.tasks.placed.map((p) => p.auction.key)).toEqual(['t']);
    expect(errors(r)).toEqual({ 'a-1': ERROR_EXCEEDED_INFLIGHT_CREATION });
  });
});

describe('runAuction: scoring', () => {
  it('picks the least used cell and reports its score', () => {
    const cells = [withRunningLrps(makeCell('full'), 60), withRunningLrps(makeCell('light'), 10)];
    const r = runAuction(cells, [makeLrp('a', 0, { memoryMb: 10, diskMb: 10 })], []);
    expect(r.lrps.placed[0]).toMatchObject({ cellId: 'light', zone: 'z0' });
    // memory 1 - 80/100, disk 1 - 80/100, containers 1 - 89/100
    expect(r.lrps.placed[0]?.score).toBeCloseTo((0.2 + 0.2 + 0.11) / 3, 12);
    expect(r.lrps.placed[0]?.explanation.winner).toEqual({
      cellId: 'light',
      zone: 'z0',
      score: r.lrps.placed[0]?.score,
    });
  });

  it('names the next best cells that competed (best first, at most three), not cells without room', () => {
    const cells = [
      withRunningLrps(makeCell('c50'), 50),
      withRunningLrps(makeCell('c10'), 10),
      withRunningLrps(makeCell('c30'), 30),
      withRunningLrps(makeCell('full'), 95),
      withRunningLrps(makeCell('c20'), 20),
      withRunningLrps(makeCell('c40'), 40),
    ];
    const r = runAuction(cells, [makeLrp('a', 0, { memoryMb: 10, diskMb: 10 })], []);
    const e = r.lrps.placed[0]!.explanation;
    expect(e.winner?.cellId).toBe('c10');
    expect(e.runnersUp?.map((c) => c.cellId)).toEqual(['c20', 'c30', 'c40']);
    const scores = [e.winner!.score, ...e.runnersUp!.map((c) => c.score)];
    expect(scores).toEqual([...scores].sort((a, b) => a - b));
    expect(e.filteredOut.resources).toBe(1); // 'full' had no room: not a runner-up
    // Alone, a winner has no runners-up; a task's explanation has them too.
    expect(runAuction([makeCell('only')], [makeLrp('a', 0)], []).lrps.placed[0]!.explanation.runnersUp).toBeUndefined();
    expect(runAuction(cells, [], [makeTask('t')]).tasks.placed[0]!.explanation.runnersUp).toHaveLength(3);
  });

  it('steers away from cells busy starting containers', () => {
    const cells = [makeCell('starting', { startingContainers: 2 }), withRunningLrps(makeCell('loaded'), 40)];
    expect(placedOn(runAuction(cells, [makeLrp('a', 0)], []))).toEqual({ 'a-0': 'loaded' });
    expect(placedOn(runAuction(cells, [makeLrp('a', 0)], [], { startingContainerWeight: 0 }))).toEqual({
      'a-0': 'starting',
    });
  });

  it('spreads instances of one app across cells even onto much fuller cells', () => {
    const cells = [makeCell('empty'), withRunningLrps(makeCell('full'), 90)];
    const r = runAuction(cells, [makeLrp('a', 0), makeLrp('a', 1)], []);
    expect(placedOn(r)).toEqual({ 'a-0': 'empty', 'a-1': 'full' });
    expect(r.lrps.placed[1]?.score).toBeLessThan(1000);
  });

  it('counts instances already on the cell for locality', () => {
    const cells = [makeCell('has-a', { lrps: [{ processGuid: 'a', index: 0 }] }), withRunningLrps(makeCell('b'), 80)];
    expect(placedOn(runAuction(cells, [makeLrp('a', 1)], []))).toEqual({ 'a-1': 'b' });
  });

  it('spreads tasks by the number of tasks on the cell', () => {
    const cells = [makeCell('with-task', { tasks: 1 }), withRunningLrps(makeCell('loaded'), 80)];
    expect(placedOn(runAuction(cells, [], [makeTask('t')]))).toEqual({ t: 'loaded' });
  });

  it('sees earlier reservations in the batch', () => {
    const r = runAuction(makeCells(2, 1), [makeLrp('a', 0), makeLrp('b', 0), makeLrp('c', 0)], [makeTask('t')]);
    expect(placedOn(r)).toEqual({ 'a-0': 'cell-0', 'b-0': 'cell-1', 'c-0': 'cell-0', t: 'cell-1' });
  });

  it('breaks ties by zone name, then cell index, then cellId, whatever the input order', () => {
    const cells = [
      makeCell('b', { zone: 'z1' }),
      makeCell('a', { zone: 'z1' }),
      makeCell('c', { zone: 'z1', index: 5 }),
      makeCell('d', { zone: 'z0' }),
    ];
    expect(placedOn(runAuction(cells, [], [makeTask('t')]))).toEqual({ t: 'd' });
    expect(placedOn(runAuction(cells.slice(0, 3), [], [makeTask('t')]))).toEqual({ t: 'c' });
    expect(placedOn(runAuction(cells.slice(0, 2).reverse(), [], [makeTask('t')]))).toEqual({ t: 'a' });
  });

  it('prefers low cell indices with bin-pack first fit', () => {
    const cells = [makeCell('x', { index: 9 }), makeCell('y', { index: 2 }), makeCell('z', { index: 5 })];
    const lrps = Array.from({ length: 6 }, (_, i) => makeLrp(`app${i}`, 0));
    const r = runAuction(cells, lrps, [], { binPackFirstFitWeight: 0.75, startingContainerWeight: 0.5 });
    const counts = { x: 0, y: 0, z: 0 } as Record<string, number>;
    for (const p of r.lrps.placed) counts[p.cellId]!++;
    expect(counts.y).toBeGreaterThanOrEqual(counts.z!);
    expect(counts.z).toBeGreaterThanOrEqual(counts.x!);
    expect(counts.y).toBeGreaterThan(counts.x!);
  });
});

describe('runAuction: zones', () => {
  it('puts the next instance in the zone with fewest instances of the app, even on a fuller cell', () => {
    const cells = [
      makeCell('a1', { zone: 'a', lrps: [{ processGuid: 'app', index: 0 }] }),
      makeCell('a2', { zone: 'a' }),
      withRunningLrps(makeCell('b1', { zone: 'b' }), 90),
    ];
    expect(placedOn(runAuction(cells, [makeLrp('app', 1)], []))).toEqual({ 'app-1': 'b1' });
  });

  it('lets tied zones compete on score', () => {
    const cells = [withRunningLrps(makeCell('a1', { zone: 'a' }), 50), makeCell('b1', { zone: 'b' })];
    expect(placedOn(runAuction(cells, [makeLrp('app', 0)], []))).toEqual({ 'app-0': 'b1' });
  });

  it('skips a zone without compatible or roomy cells', () => {
    const cells = [
      makeCell('a1', { zone: 'a', rootfsProviders: [] }),
      makeCell('b1', { zone: 'b', available: { memoryMb: 0, diskMb: 100, containers: 100 } }),
      makeCell('c1', { zone: 'c', lrps: [{ processGuid: 'app', index: 0 }] }),
    ];
    const r = runAuction(cells, [makeLrp('app', 1)], []);
    expect(placedOn(r)).toEqual({ 'app-1': 'c1' });
    expect(r.lrps.placed[0]?.explanation.filteredOut).toEqual({
      rootfs: 1,
      volumeDrivers: 0,
      placementTags: 0,
      resources: 1,
    });
  });

  it('does not zone-balance tasks', () => {
    const cells = [
      makeCell('a1', { zone: 'a' }),
      makeCell('a2', { zone: 'a' }),
      withRunningLrps(makeCell('b1', { zone: 'b' }), 90),
    ];
    const r = runAuction(cells, [], [makeTask('t1'), makeTask('t2')]);
    expect(placedOn(r)).toEqual({ t1: 'a1', t2: 'a2' });
  });
});

describe('runAuction: batch handling', () => {
  it('dedupes the batch (first wins)', () => {
    const r = runAuction(
      makeCells(2),
      [makeLrp('a', 0, { key: 'first' }), makeLrp('a', 0, { key: 'second' })],
      [makeTask('t', { key: 'one' }), makeTask('t', { key: 'two' })],
    );
    expect(Object.keys(placedOn(r)).sort()).toEqual(['first', 'one']);
    expect(r.lrps.failed).toEqual([]);
  });

  it('places index-0 LRPs, then tasks, then other instances, big items first', () => {
    const cell = makeCell('c', { total: { memoryMb: 100, diskMb: 1000, containers: 100 } });
    const r = runAuction(
      [cell],
      [
        makeLrp('extra', 1, { memoryMb: 40 }),
        makeLrp('small', 0, { memoryMb: 10 }),
        makeLrp('big', 0, { memoryMb: 40 }),
      ],
      [makeTask('t', { memoryMb: 40 })],
    );
    expect(r.lrps.placed.map((p) => p.auction.key)).toEqual(['big-0', 'small-0']);
    expect(r.tasks.placed.map((p) => p.auction.key)).toEqual(['t']);
    expect(errors(r)).toEqual({ 'extra-1': 'insufficient resources: memory' });
  });

  it('does not mutate its inputs', () => {
    const cells = deepFreeze([makeCell('a'), makeCell('b', { zone: 'z1', lrps: [{ processGuid: 'x', index: 0 }] })]);
    const lrps = deepFreeze([makeLrp('x', 1), makeLrp('y', 0)]);
    const tasks = deepFreeze([makeTask('t')]);
    const before = JSON.stringify([cells, lrps, tasks]);
    const r = runAuction(cells, lrps, tasks);
    expect(r.lrps.placed).toHaveLength(2);
    expect(JSON.stringify([cells, lrps, tasks])).toBe(before);
    expect(r.lrps.placed.find((p) => p.auction.key === 'x-1')?.auction).toBe(lrps[0]);
  });

  it('is deterministic and independent of cell input order', () => {
    const random = rng(7);
    const cells: CellState[] = Array.from({ length: 30 }, (_, i) =>
      withRunningLrps(makeCell(`cell-${i}`, { zone: `z${i % 3}`, index: i }), Math.floor(random() * 20)),
    );
    const lrps = Array.from({ length: 200 }, (_, i) => makeLrp(`app-${i % 17}`, Math.floor(i / 17)));
    const tasks = Array.from({ length: 40 }, (_, i) => makeTask(`task-${i}`, { memoryMb: 1 + (i % 3) }));
    const first = runAuction(cells, lrps, tasks);
    const shuffled = [...cells].sort(() => random() - 0.5);
    expect(runAuction(shuffled, lrps, tasks)).toEqual(first);
    expect(runAuction(cells, lrps, tasks)).toEqual(first);
  });
});
