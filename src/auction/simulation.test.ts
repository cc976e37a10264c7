// Versions of Diego's auction simulation experiments (cloudfoundry/auction simulation/simulation_test.go): cells of
// 100 MB memory, 100 MB disk and 100 containers, zones by cell index parity, starting weight 0.25, one auction per
// experiment, as in-process Diego reps would see it.
import { describe, expect, it } from 'vitest';
import { runAuction } from './scheduler.ts';
import { makeCell, makeCells, makeLrp, rng, withRunningLrps } from './testing.ts';
import type { AuctionConfig, AuctionResults, CellState, LRPAuction } from './types.ts';

/** Unique apps, one instance each, with index i (Diego's generateUniqueLRPStartAuctions). */
const uniqueApps = (n: number, memoryMb = 1, prefix = 'app'): LRPAuction[] =>
  Array.from({ length: n }, (_, i) => makeLrp(`${prefix}-${i}`, i, { memoryMb }));
/** n instances of one app. */
const instancesOf = (guid: string, n: number, memoryMb = 1): LRPAuction[] =>
  Array.from({ length: n }, (_, i) => makeLrp(guid, i, { memoryMb }));

/** New instances won by each cell, over the cells that won any (the simulation's result vector). */
function winsPerCell(r: AuctionResults): Map<string, number> {
  const wins = new Map<string, number>();
  for (const p of r.lrps.placed) wins.set(p.cellId, (wins.get(p.cellId) ?? 0) + 1);
  return wins;
}

function expectWithinOfMean(sample: number[], tolerance: number): void {
  const mean = sample.reduce((a, b) => a + b, 0) / sample.length;
  for (const v of sample) expect(Math.abs(v - mean), `${v} vs mean ${mean}`).toBeLessThanOrEqual(tolerance);
}

function run(cells: CellState[], lrps: LRPAuction[], config?: Partial<AuctionConfig>): AuctionResults {
  const r = runAuction(cells, lrps, [], config);
  return r;
}

describe('simulation: small cold LRP starts', () => {
  for (const [apps, cells] of [
    [8, 4],
    [40, 10],
    [200, 20],
    [800, 40],
  ] as const) {
    it(`${apps} unique 1 MB instances on ${cells} cells: every cell within ±1 of the mean`, () => {
      const r = run(makeCells(cells), uniqueApps(apps));
      expect(r.lrps.failed).toEqual([]);
      const wins = winsPerCell(r);
      expect(wins.size).toBe(cells);
      expectWithinOfMean([...wins.values()], 1);
    });
  }
});

describe('simulation: bin-pack first fit', () => {
  for (const weight of [0.25, 0.5, 0.75]) {
    for (const [apps, cellCount] of [
      [8, 4],
      [40, 10],
      [200, 20],
      [800, 40],
    ] as const) {
      const config = { binPackFirstFitWeight: weight, startingContainerWeight: 0.5 };

      it(`weight ${weight}, ${apps} apps on ${cellCount} cells: counts never rise with index, zones within ±1`, () => {
        const cells = makeCells(cellCount);
        const r = run(cells, uniqueApps(apps), config);
        expect(r.lrps.failed).toEqual([]);
        const wins = winsPerCell(r);
        const zoneTotals: number[] = [];
        for (const zone of ['z0', 'z1']) {
          const counts = cells.filter((c) => c.zone === zone).map((c) => wins.get(c.cellId) ?? 0);
          for (let i = 0; i + 1 < counts.length; i++) expect(counts[i]).toBeGreaterThanOrEqual(counts[i + 1]!);
          zoneTotals.push(counts.reduce((a, b) => a + b, 0));
        }
        expectWithinOfMean(zoneTotals, 1);
      });

      it(`weight ${weight}, one app of ${apps} instances on ${cellCount} cells still spreads within ±1`, () => {
        const r = run(makeCells(cellCount), instancesOf('yellow', apps), config);
        const wins = winsPerCell(r);
        expect(wins.size).toBe(cellCount);
        expectWithinOfMean([...wins.values()], 1);
      });
    }
  }
});

describe('simulation: large cold starts', () => {
  for (const scale of [1, 4]) {
    it(`${25 * scale} cells, mixed 1/2/4 MB unique and shared apps: within ±10 of the mean`, () => {
      const random = rng(scale);
      const colors = [
        'purple',
        'red',
        'orange',
        'teal',
        'gray',
        'blue',
        'pink',
        'green',
        'lime',
        'cyan',
        'sea',
        'brown',
      ];
      const lrps: LRPAuction[] = [];
      for (const [count, memoryMb, palette] of [
        [1800 * scale, 1, colors.slice(0, 4)],
        [200 * scale, 2, colors.slice(4, 8)],
        [50 * scale, 4, colors.slice(8, 12)],
      ] as const) {
        lrps.push(...uniqueApps(count / 2, memoryMb, `u${memoryMb}`));
        for (let i = 0; i < count / 2; i++) {
          lrps.push(makeLrp(palette[Math.floor(random() * palette.length)]!, i, { memoryMb }));
        }
      }
      // Random colors repeat indices, which dedupe drops, as Diego's batch would.
      const shuffled = lrps
        .map((l) => ({ l, k: random() }))
        .sort((a, b) => a.k - b.k)
        .map((x) => x.l);
      const r = run(makeCells(25 * scale), shuffled);
      expect(r.lrps.failed).toEqual([]);
      expectWithinOfMean([...winsPerCell(r).values()], 10);
    });
  }
});

describe('simulation: imbalanced deploy', () => {
  for (const [empty, apps] of [
    [5, 500],
    [1, 100],
  ] as const) {
    it(`100 cells, ${100 - empty} pre-filled with 50 instances, ${apps} new: within ±1 of the mean`, () => {
      const cells = makeCells(100).map((c, i) => (i < 100 - empty ? withRunningLrps(c, 50) : c));
      const r = run(cells, uniqueApps(apps, 1, 'new'));
      expect(r.lrps.failed).toEqual([]);
      expectWithinOfMean([...winsPerCell(r).values()], 1);
    });
  }
});

describe('simulation: AZ distribution', () => {
  it('3 cells in 2 zones, the lone cell preloaded with 50: 40 instances split equally between zones', () => {
    const cells = makeCells(3).map((c, i) => (i === 1 ? withRunningLrps(c, 50) : c));
    const r = run(cells, instancesOf('red', 40));
    const perZone = { z0: 0, z1: 0 } as Record<string, number>;
    for (const p of r.lrps.placed) perZone[p.zone]!++;
    expect(perZone).toEqual({ z0: 20, z1: 20 });
  });
});

describe('simulation: the Watters demo', () => {
  for (const [cellCount, apps] of [
    [10, 80],
    [30, 200],
    [100, 400],
  ] as const) {
    it(`${cellCount} cells pre-filled with 78-80 instances, ${apps} of one app: within ±1`, () => {
      const random = rng(cellCount);
      const cells = makeCells(cellCount).map((c) => withRunningLrps(c, 78 + Math.floor(random() * 3)));
      const r = run(cells, instancesOf('red', apps));
      expect(r.lrps.failed).toEqual([]);
      expectWithinOfMean([...winsPerCell(r).values()], 1);
    });
  }
});

describe('simulation: packing when memory is low', () => {
  it('1 cell, 80 × 1 MB plus 2 instances of a 50 MB app: 51 winners, 31 losers, red-0 wins, red-1 loses', () => {
    const lrps = [...Array.from({ length: 80 }, (_, i) => makeLrp(`pebble-${i}`, 0)), ...instancesOf('red', 2, 50)];
    const r = run([makeCell('cell-0')], lrps);
    const winners = r.lrps.placed.map((p) => `${p.auction.processGuid}-${p.auction.index}`);
    const losers = r.lrps.failed.map((f) => `${f.auction.processGuid}-${f.auction.index}`);
    expect(winners).toHaveLength(51);
    expect(losers).toHaveLength(31);
    expect(winners).toContain('red-0');
    expect(losers).toContain('red-1');
    expect(new Set(r.lrps.failed.map((f) => f.placementError))).toEqual(new Set(['insufficient resources: memory']));
  });
});

describe('simulation: three zones, mixed apps', () => {
  it('3 zones × 10 cells, 300 instances of mixed apps: every app within ±1 per zone', () => {
    const random = rng(42);
    const cells = makeCells(30, 3, { total: { memoryMb: 8192, diskMb: 16384, containers: 100 } });
    const lrps: LRPAuction[] = [];
    for (let app = 0; lrps.length < 300; app++) {
      const n = Math.min(300 - lrps.length, 1 + Math.floor(random() * 30));
      const memoryMb = [64, 128, 256, 512][Math.floor(random() * 4)]!;
      for (let i = 0; i < n; i++) lrps.push(makeLrp(`app-${app}`, i, { memoryMb, diskMb: memoryMb * 2 }));
    }
    const r = run(cells, lrps);
    expect(r.lrps.failed).toEqual([]);
    const perAppZone = new Map<string, Record<string, number>>();
    for (const p of r.lrps.placed) {
      const zones = perAppZone.get(p.auction.processGuid) ?? { z0: 0, z1: 0, z2: 0 };
      zones[p.zone]!++;
      perAppZone.set(p.auction.processGuid, zones);
    }
    for (const [app, zones] of perAppZone) {
      const counts = Object.values(zones);
      expect(Math.max(...counts) - Math.min(...counts), app).toBeLessThanOrEqual(1);
    }
    // Also spread across cells: no cell holds two instances of an app before every cell of its zone holds one.
    expectWithinOfMean([...winsPerCell(r).values()], 5);
  });

  it('keeps zones within ±1 when an app is placed over several auctions', () => {
    let cells = makeCells(30, 3);
    const perZone: Record<string, number> = { z0: 0, z1: 0, z2: 0 };
    for (let batch = 0; batch < 5; batch++) {
      const r = run(
        cells,
        Array.from({ length: 7 }, (_, i) => makeLrp('app', batch * 7 + i)),
      );
      for (const p of r.lrps.placed) {
        perZone[p.zone]!++;
        const at = cells.findIndex((c) => c.cellId === p.cellId);
        const c = cells[at]!;
        cells = cells.with(
          at,
          makeCell(c.cellId, { ...c, lrps: [...c.lrps, { processGuid: 'app', index: p.auction.index }] }),
        );
      }
      const counts = Object.values(perZone);
      expect(Math.max(...counts) - Math.min(...counts)).toBeLessThanOrEqual(1);
    }
  });
});
