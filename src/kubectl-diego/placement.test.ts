import { describe, expect, it } from 'vitest';
import { renderTable } from './output.ts';
import {
  explainPlacement,
  PLACEMENT_HEADER,
  placementRows,
  placementSummary,
  type PlacementInput,
} from './placement.ts';
import { actual, cell, desired, NOW, presence, task } from './testing.ts';

const web = desired('web', { memoryMb: 256, diskMb: 256 });
const big = { memoryMb: 1024, diskMb: 2048, containers: 10 };

function input(over: Partial<PlacementInput> = {}): PlacementInput {
  const me = actual(web, 1, 'cell-a', { state: 'RUNNING', cellId: 'cell-a' });
  me.metadata.annotations = { 'diego.dev/placement': 'placed on cell-a (zone z1, score 0.167); 4 cells' };
  return {
    actual: me,
    desired: web,
    cells: [
      cell('cell-a', { capacity: big }),
      cell('cell-b', { capacity: big, zone: 'z2' }),
      cell('cell-c', { capacity: big, zone: 'z2', rootfsProviders: [{ name: 'docker' }] }),
      cell('cell-d', { capacity: { memoryMb: 200, diskMb: 2048, containers: 10 } }),
      cell('cell-e', { capacity: big }, { evacuating: true }),
      cell('cell-f', { capacity: big }),
    ],
    leases: ['cell-a', 'cell-b', 'cell-c', 'cell-d', 'cell-e'].map((c) => presence(c, 1)),
    actuals: [me, actual(web, 0, 'cell-b', { state: 'RUNNING', cellId: 'cell-b' })],
    tasks: [task('t', { memoryMb: 512, cellId: 'cell-a' }, { state: 'Running', cellId: 'cell-a' })],
    desireds: [web],
    now: NOW,
    ...over,
  };
}

describe('explainPlacement', () => {
  it('gives each cell its verdict, the winner first', () => {
    const r = explainPlacement(input());
    expect(r.cells.map((c) => [c.cellId, c.verdict, c.reason])).toEqual([
      ['cell-a', 'winner', undefined],
      ['cell-b', 'candidate', undefined],
      ['cell-d', 'no room', 'not enough memory'],
      ['cell-c', 'filtered', 'rootfs not offered'],
      ['cell-e', 'evacuating', 'the cell is evacuating'],
      ['cell-f', 'absent', 'no current presence Lease'],
    ]);
    expect(r.now.winner).toBe('cell-a');
    expect(r.now.summary).toBe('placed on cell-a (zone z1, score 0.379); 4 cells: 1 without rootfs, 1 without room');
  });

  it("scores as Diego does: the instance itself left out, the app's other instances weighing 1000 each", () => {
    const r = explainPlacement(input());
    const a = r.cells.find((c) => c.cellId === 'cell-a')!;
    // cell-a holds a 512 MB, 128 MB disk task (the instance itself does not count); the score is after placing it
    expect(a.available).toEqual({ memoryMb: 512, diskMb: 1920, containers: 9 });
    expect(a.score).toBeCloseTo((768 / 1024 + 384 / 2048 + 2 / 10) / 3, 9);
    const b = r.cells.find((c) => c.cellId === 'cell-b')!;
    expect(b.sameApp).toBe(1);
    expect(b.appInZone).toBe(1);
    expect(b.score).toBeGreaterThan(1000);
  });

  it('says why nothing fits', () => {
    const r = explainPlacement(input({ desired: desired('web', { memoryMb: 4096 }) }));
    expect(r.now.winner).toBeUndefined();
    expect(r.now.error).toBe('insufficient resources: memory');
    expect(r.cells.filter((c) => c.verdict === 'no room')).toHaveLength(3);
  });

  it('prints a summary and a table', () => {
    const r = explainPlacement(input());
    expect(placementSummary(r)).toEqual([
      'ActualLRP apps/web-1: process web-guid, index 1, RUNNING on cell-a',
      'Asks for:   256 MB memory, 256 MB disk, rootfs preloaded:cflinuxfs4',
      'Recorded:   placed on cell-a (zone z1, score 0.167); 4 cells',
      'Now:        placed on cell-a (zone z1, score 0.379); 4 cells: 1 without rootfs, 1 without room',
    ]);
    const lines = renderTable(PLACEMENT_HEADER, placementRows(r)).split('\n');
    expect(lines[0]).toMatch(
      /^CELL\s+ZONE\s+VERDICT\s+SCORE\s+MEMORY\s+DISK\s+CONTAINERS\s+SAME APP\s+APP IN ZONE\s+STARTING\s+REASON$/,
    );
    expect(lines[1]!.split(/\s{2,}/)).toEqual([
      'cell-a',
      'z1',
      'winner',
      '0.379',
      '512/1024',
      '1920/2048',
      '9/10',
      '0',
      '0',
      '0',
    ]);
  });
});
