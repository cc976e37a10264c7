import { describe, expect, it } from 'vitest';
import { makeCell } from './testing.ts';
import { compareCells, groupByZone, normaliseCellIndices, sortZonesByInstances, tiedZoneGroups } from './zones.ts';

describe('cell order', () => {
  it('sorts by zone, then index (missing last), then cellId', () => {
    const cells = [
      makeCell('b', { zone: 'z2', index: 1 }),
      makeCell('x', { zone: 'z1' }),
      makeCell('a', { zone: 'z1' }),
      makeCell('c', { zone: 'z1', index: 7 }),
      makeCell('d', { zone: 'z1', index: 3 }),
    ];
    expect([...cells].sort(compareCells).map((c) => c.cellId)).toEqual(['d', 'c', 'a', 'x', 'b']);
    expect(groupByZone(cells).map((z) => [z.name, z.cells.map((c) => c.cellId)])).toEqual([
      ['z1', ['d', 'c', 'a', 'x']],
      ['z2', ['b']],
    ]);
  });

  it('normalises indices to 0..n-1 per zone', () => {
    const cells = [
      makeCell('a', { zone: 'z1', index: 10 }),
      makeCell('b', { zone: 'z1', index: 4 }),
      makeCell('c', { zone: 'z2', index: 99 }),
    ];
    expect(Object.fromEntries(normaliseCellIndices(cells))).toEqual({ a: 1, b: 0, c: 0 });
  });
});

describe('zone sort', () => {
  it('puts zones with fewer instances first and keeps ties in order', () => {
    const sorted = sortZonesByInstances([
      { zone: 'a', instances: 3 },
      { zone: 'b', instances: 1 },
      { zone: 'c', instances: 3 },
      { zone: 'd', instances: 1 },
    ]);
    expect(sorted.map((z) => z.zone)).toEqual(['b', 'd', 'a', 'c']);
    expect(tiedZoneGroups(sorted).map((g) => g.map((z) => z.zone))).toEqual([
      ['b', 'd'],
      ['a', 'c'],
    ]);
  });
});
