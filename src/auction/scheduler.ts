// One auction over a batch (Diego auctionrunner/scheduler.go semantics): order the batch, then place each item in
// turn on a working copy of the cells, so later items see earlier reservations.
import {
  ERROR_CELL_COMMUNICATION,
  ERROR_EXCEEDED_INFLIGHT_CREATION,
  FilterStage,
  filterErrorMessage,
  insufficientResourcesMessage,
} from './errors.ts';
import {
  ALL_PROBLEMS_MASK,
  filterStage,
  maskToProblems,
  resourceProblemMask,
  type PlacementConstraint,
} from './filters.ts';
import { orderBatch } from './order.ts';
import { parseRootFs } from './rootfs.ts';
import { INITIAL_WINNER_SCORE, resourceScore, scoreForLrp, scoreForTask } from './score.ts';
import { buildCellTable, reserveLrp, reserveTask, totalStarting, zoneBounds, type CellTable } from './state.ts';
import {
  resolveConfig,
  type AuctionConfig,
  type AuctionResults,
  type CellState,
  type Explanation,
  type LRPAuction,
  type TaskAuction,
} from './types.ts';
import { sortZonesByInstances, tiedZoneGroups } from './zones.ts';

/** The cells that pass rootfs, volume-driver and tag filters for one constraint, per zone. */
interface Compatible {
  perZone: Int32Array[];
  /** Furthest filter stage any cell reached (Passed when some cell is compatible). */
  furthest: FilterStage;
  rootfs: number;
  volumeDrivers: number;
  placementTags: number;
}

type Outcome =
  | { ok: true; cell: number; score: number; explanation: Explanation }
  | { ok: false; error: string; explanation: Explanation };

class Auction {
  readonly t: CellTable;
  readonly cfg: AuctionConfig;
  readonly bounds: Int32Array;
  readonly compatible = new Map<string, Compatible>();

  constructor(t: CellTable, cfg: AuctionConfig) {
    this.t = t;
    this.cfg = cfg;
    this.bounds = zoneBounds(t);
  }

  /** Filters are pure functions of the constraint and static cell attributes, so they are computed once per auction. */
  filter(c: PlacementConstraint): Compatible {
    const key = `${c.rootFs}\u0000${c.volumeDrivers.join('\u0001')}\u0000${c.placementTags.join('\u0001')}`;
    const cached = this.compatible.get(key);
    if (cached !== undefined) return cached;
    const parsed = parseRootFs(c.rootFs);
    const out: Compatible = {
      perZone: [],
      furthest: FilterStage.Rootfs,
      rootfs: 0,
      volumeDrivers: 0,
      placementTags: 0,
    };
    const zones = this.t.zoneNames.length;
    for (let z = 0; z < zones; z++) {
      const ids: number[] = [];
      for (let i = this.bounds[z] ?? 0; i < (this.bounds[z + 1] ?? 0); i++) {
        const cell = this.t.cells[i];
        if (cell === undefined) continue;
        const stage = filterStage(cell, c, parsed);
        if (stage > out.furthest) out.furthest = stage;
        if (stage === FilterStage.Passed) ids.push(i);
        else if (stage === FilterStage.Rootfs) out.rootfs++;
        else if (stage === FilterStage.VolumeDrivers) out.volumeDrivers++;
        else out.placementTags++;
      }
      out.perZone.push(Int32Array.from(ids));
    }
    this.compatible.set(key, out);
    return out;
  }

  explanation(
    f: Compatible | undefined,
    resources: number,
    winner?: number,
    score?: number,
    top: [number, number][] = [],
  ): Explanation {
    const e: Explanation = {
      cellsConsidered: this.t.cells.length,
      filteredOut: {
        rootfs: f?.rootfs ?? 0,
        volumeDrivers: f?.volumeDrivers ?? 0,
        placementTags: f?.placementTags ?? 0,
        resources,
      },
    };
    const cell = winner === undefined ? undefined : this.t.cells[winner];
    if (cell !== undefined && score !== undefined) {
      e.winner = { cellId: cell.cellId, zone: cell.zone, score };
      const others = top.filter(([c]) => c !== winner).slice(0, RUNNERS_UP);
      if (others.length > 0)
        e.runnersUp = others.map(([c, s]) => ({
          cellId: this.t.cells[c]!.cellId,
          zone: this.t.cells[c]!.zone,
          score: s,
        }));
    }
    return e;
  }

  /** Compatible cells in these zones that lack room for the request. */
  countUnfit(ids: Int32Array, memoryMb: number, diskMb: number): number {
    const t = this.t;
    let unfit = 0;
    for (const c of ids) {
      if (resourceProblemMask(t.availMemory[c]!, t.availDisk[c]!, t.availContainers[c]!, memoryMb, diskMb) !== 0) {
        unfit++;
      }
    }
    return unfit;
  }

  /**
   * Scores every cell in `ids` that has room (lower wins; a strict < keeps the first of equals) and records
   * why the others did not fit.
   */
  private scanCells(
    ids: Iterable<number>,
    memoryMb: number,
    diskMb: number,
    scan: Scan,
    score: (resourceScore: number, cell: number) => number,
  ): void {
    const t = this.t;
    for (const c of ids) {
      const am = t.availMemory[c]!;
      const ad = t.availDisk[c]!;
      const ac = t.availContainers[c]!;
      const mask = resourceProblemMask(am, ad, ac, memoryMb, diskMb);
      if (mask !== 0) {
        scan.problems &= mask;
        scan.unfit++;
        continue;
      }
      const res = resourceScore(
        am,
        ad,
        ac,
        t.totalMemory[c]!,
        t.totalDisk[c]!,
        t.totalContainers[c]!,
        memoryMb,
        diskMb,
      );
      const s = score(res, c);
      if (s < scan.best) {
        scan.best = s;
        scan.winner = c;
      }
      keepTop(scan.top, c, s);
    }
  }

  placeLrp(a: LRPAuction): Outcome {
    const t = this.t;
    const f = this.filter(a);
    const memoryMb = a.memoryMb + this.cfg.proxyMemoryMb;
    const diskMb = a.diskMb;
    const inZone = t.lrpsInZone.get(a.processGuid);
    const onCell = t.lrpsOnCell.get(a.processGuid);
    const groups = tiedZoneGroups(
      sortZonesByInstances(
        f.perZone.flatMap((ids, z) => (ids.length > 0 ? [{ zone: ids, instances: inZone?.[z] ?? 0 }] : [])),
      ),
    );
    if (groups.length === 0) {
      return {
        ok: false,
        error: filterErrorMessage(f.furthest, a.placementTags) ?? '',
        explanation: this.explanation(f, 0),
      };
    }
    const { startingContainerWeight: sw, binPackFirstFitWeight: bw } = this.cfg;
    const scan = newScan();
    let g = 0;
    // Zones with fewer instances of the app first; zones tied on that count compete together, and the scan stops
    // after the first group that has a winner.
    for (; g < groups.length && scan.winner < 0; g++) {
      for (const { zone: ids } of groups[g]!) {
        this.scanCells(ids, memoryMb, diskMb, scan, (res, c) =>
          scoreForLrp(res, t.starting[c]!, sw, onCell?.get(c) ?? 0, t.binIndex[c]!, bw),
        );
      }
    }
    let { unfit } = scan;
    const { winner, best, problems, top } = scan;
    // The zones not scanned only matter for the explanation's count of cells without room.
    for (; g < groups.length; g++) {
      for (const { zone: ids } of groups[g]!) unfit += this.countUnfit(ids, memoryMb, diskMb);
    }
    if (winner < 0) {
      return {
        ok: false,
        error: insufficientResourcesMessage(maskToProblems(problems)),
        explanation: this.explanation(f, unfit),
      };
    }
    reserveLrp(t, winner, a.processGuid, memoryMb, diskMb);
    return { ok: true, cell: winner, score: best, explanation: this.explanation(f, unfit, winner, best, top) };
  }

  placeTask(a: TaskAuction): Outcome {
    const t = this.t;
    const f = this.filter(a);
    if (f.furthest !== FilterStage.Passed) {
      return {
        ok: false,
        error: filterErrorMessage(f.furthest, a.placementTags) ?? '',
        explanation: this.explanation(f, 0),
      };
    }
    const { memoryMb, diskMb } = a;
    const sw = this.cfg.startingContainerWeight;
    const scan = newScan();
    // No zone balancing for tasks: every compatible cell competes.
    for (const ids of f.perZone) {
      this.scanCells(ids, memoryMb, diskMb, scan, (res, c) => scoreForTask(res, t.starting[c]!, sw, t.tasks[c]!));
    }
    const { winner, best, problems, unfit, top } = scan;
    if (winner < 0) {
      return {
        ok: false,
        error: insufficientResourcesMessage(maskToProblems(problems)),
        explanation: this.explanation(f, unfit),
      };
    }
    reserveTask(t, winner, memoryMb, diskMb);
    return { ok: true, cell: winner, score: best, explanation: this.explanation(f, unfit, winner, best, top) };
  }
}

interface Scan {
  winner: number;
  best: number;
  problems: number;
  unfit: number;
  /** The best RUNNERS_UP + 1 cells as [cell, score], best first (the first is the winner). */
  top: [number, number][];
}

/** Cells beside the winner an Explanation names, best first. */
export const RUNNERS_UP = 3;

/** Inserts [cell, score] into `top` (best first, at most RUNNERS_UP + 1; equal scores keep the earlier cell first). */
function keepTop(top: [number, number][], cell: number, score: number): void {
  if (top.length > RUNNERS_UP && score >= top[top.length - 1]![1]) return;
  let i = top.length;
  while (i > 0 && top[i - 1]![1] > score) i--;
  top.splice(i, 0, [cell, score]);
  if (top.length > RUNNERS_UP + 1) top.pop();
}

const newScan = (): Scan => ({
  winner: -1,
  best: INITIAL_WINNER_SCORE,
  problems: ALL_PROBLEMS_MASK,
  unfit: 0,
  top: [],
});

/** Runs one auction over a batch: dedupes (LRPs by processGuid.index, tasks by taskGuid, first wins), orders
 *  (index-0 LRPs by memory desc, then tasks by memory desc, then other LRPs by index asc then memory desc),
 *  filters, scores, zone-balances LRPs, and reserves resources on internal copies of the cells so later
 *  placements in the batch see earlier ones. Does not mutate its inputs. */
export function runAuction(
  cells: CellState[],
  lrps: LRPAuction[],
  tasks: TaskAuction[],
  config?: Partial<AuctionConfig>,
): AuctionResults {
  const cfg = resolveConfig(config);
  const results: AuctionResults = { lrps: { placed: [], failed: [] }, tasks: { placed: [], failed: [] } };
  const auction = new Auction(buildCellTable(cells, new Set(lrps.map((l) => l.processGuid))), cfg);
  const t = auction.t;
  let inFlight = totalStarting(t);
  for (const item of orderBatch(lrps, tasks)) {
    let outcome: Outcome;
    if (t.cells.length === 0) {
      outcome = { ok: false, error: ERROR_CELL_COMMUNICATION, explanation: auction.explanation(undefined, 0) };
    } else if (cfg.startingContainerCountMaximum > 0 && inFlight >= cfg.startingContainerCountMaximum) {
      outcome = { ok: false, error: ERROR_EXCEEDED_INFLIGHT_CREATION, explanation: auction.explanation(undefined, 0) };
    } else {
      outcome = item.kind === 'lrp' ? auction.placeLrp(item.auction) : auction.placeTask(item.auction);
    }
    if (outcome.ok) {
      inFlight++;
      const cell = t.cells[outcome.cell]!;
      const placed = { cellId: cell.cellId, zone: cell.zone, score: outcome.score, explanation: outcome.explanation };
      if (item.kind === 'lrp') results.lrps.placed.push({ auction: item.auction, ...placed });
      else results.tasks.placed.push({ auction: item.auction, ...placed });
    } else {
      const failed = { placementError: outcome.error, explanation: outcome.explanation };
      if (item.kind === 'lrp') results.lrps.failed.push({ auction: item.auction, ...failed });
      else results.tasks.failed.push({ auction: item.auction, ...failed });
    }
  }
  return results;
}
