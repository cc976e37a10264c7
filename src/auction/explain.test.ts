import { describe, expect, it } from 'vitest';
import { explain } from './explain.ts';
import { runAuction } from './scheduler.ts';
import { makeCell, makeLrp, withRunningLrps } from './testing.ts';

describe('explain', () => {
  it('summarises a placement and what was filtered out', () => {
    expect(
      explain({
        cellsConsidered: 10,
        filteredOut: { rootfs: 2, volumeDrivers: 0, placementTags: 0, resources: 1 },
        winner: { cellId: 'cell-3', zone: 'z1', score: 0.41234 },
      }),
    ).toBe('placed on cell-3 (zone z1, score 0.412); 10 cells: 2 without rootfs, 1 without room');
  });

  it('summarises failures', () => {
    expect(
      explain({ cellsConsidered: 3, filteredOut: { rootfs: 0, volumeDrivers: 1, placementTags: 1, resources: 1 } }),
    ).toBe('not placed; 3 cells: 1 without volume drivers, 1 with mismatched placement tags, 1 without room');
    expect(
      explain({ cellsConsidered: 0, filteredOut: { rootfs: 0, volumeDrivers: 0, placementTags: 0, resources: 0 } }),
    ).toBe('not placed; no cells');
    expect(
      explain({ cellsConsidered: 1, filteredOut: { rootfs: 0, volumeDrivers: 0, placementTags: 0, resources: 0 } }),
    ).toBe('not placed; 1 cell');
  });

  it('comes from every filter stage in an auction', () => {
    const cells = [
      makeCell('no-stack', { rootfsProviders: [] }),
      makeCell('no-driver', { volumeDrivers: [] }),
      makeCell('tagged', { volumeDrivers: ['nfs'], placementTags: ['t'] }),
      withRunningLrps(makeCell('full', { volumeDrivers: ['nfs'] }), 100),
      makeCell('ok', { volumeDrivers: ['nfs'] }),
    ];
    const r = runAuction(cells, [makeLrp('a', 0, { volumeDrivers: ['nfs'] })], []);
    const e = r.lrps.placed[0]?.explanation;
    expect(e?.filteredOut).toEqual({ rootfs: 1, volumeDrivers: 1, placementTags: 1, resources: 1 });
    expect(explain(e!)).toMatch(
      /^placed on ok \(zone z0, score 0\.\d{3}\); 5 cells: 1 without rootfs, 1 without volume drivers, 1 with mismatched placement tags, 1 without room$/,
    );
  });
});
