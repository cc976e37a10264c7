// The scheduler's working copy of the cells: flat typed arrays plus per-app indexes, so scoring a cell and
// reserving on it are O(1) and zone counts need no scan. Built once per auction; the caller's objects are never touched.
import type { CellState } from './types.ts';
import { groupByZone } from './zones.ts';

export interface CellTable {
  /** Cells taking part (non-evacuating, first of each cellId), in scan order: zone name, index, cellId. */
  readonly cells: readonly CellState[];
  readonly zoneNames: readonly string[];
  /** Zone of each cell (index into zoneNames). */
  readonly zoneOf: Int32Array;
  /** Position of the cell within its zone: the normalised bin-pack index. */
  readonly binIndex: Float64Array;
  readonly availMemory: Float64Array;
  readonly availDisk: Float64Array;
  readonly availContainers: Float64Array;
  readonly totalMemory: Float64Array;
  readonly totalDisk: Float64Array;
  readonly totalContainers: Float64Array;
  readonly starting: Float64Array;
  readonly tasks: Float64Array;
  /** processGuid → (cell → instances of it on the cell). */
  readonly lrpsOnCell: Map<string, Map<number, number>>;
  /** processGuid → instances of it per zone. */
  readonly lrpsInZone: Map<string, Int32Array>;
}

function countLrp(t: CellTable, cell: number, processGuid: string, n = 1): void {
  let perCell = t.lrpsOnCell.get(processGuid);
  if (perCell === undefined) t.lrpsOnCell.set(processGuid, (perCell = new Map<number, number>()));
  perCell.set(cell, (perCell.get(cell) ?? 0) + n);
  let perZone = t.lrpsInZone.get(processGuid);
  if (perZone === undefined) t.lrpsInZone.set(processGuid, (perZone = new Int32Array(t.zoneNames.length)));
  const z = t.zoneOf[cell] ?? 0;
  perZone[z] = (perZone[z] ?? 0) + n;
}

/**
 * Builds the working copy. Evacuating cells take no new work, so they are left out (as Diego's zone builder does).
 * `processGuids`: the apps in the batch — instances of other apps are not counted (scoring only looks up the
 * auctioned app's), so the table costs in proportion to cells × the batch's apps, not to every instance placed.
 */
export function buildCellTable(input: readonly CellState[], processGuids?: ReadonlySet<string>): CellTable {
  const seen = new Set<string>();
  const live = input.filter((c) => {
    if (c.evacuating || seen.has(c.cellId)) return false;
    seen.add(c.cellId);
    return true;
  });
  const zones = groupByZone(live);
  const cells = zones.flatMap((z) => z.cells);
  const n = cells.length;
  const t: CellTable = {
    cells,
    zoneNames: zones.map((z) => z.name),
    zoneOf: new Int32Array(n),
    binIndex: new Float64Array(n),
    availMemory: new Float64Array(n),
    availDisk: new Float64Array(n),
    availContainers: new Float64Array(n),
    totalMemory: new Float64Array(n),
    totalDisk: new Float64Array(n),
    totalContainers: new Float64Array(n),
    starting: new Float64Array(n),
    tasks: new Float64Array(n),
    lrpsOnCell: new Map(),
    lrpsInZone: new Map(),
  };
  let i = 0;
  zones.forEach((zone, z) => {
    zone.cells.forEach((c, position) => {
      t.zoneOf[i] = z;
      t.binIndex[i] = position;
      t.availMemory[i] = c.available.memoryMb;
      t.availDisk[i] = c.available.diskMb;
      t.availContainers[i] = c.available.containers;
      t.totalMemory[i] = c.total.memoryMb;
      t.totalDisk[i] = c.total.diskMb;
      t.totalContainers[i] = c.total.containers;
      t.starting[i] = c.startingContainers;
      t.tasks[i] = c.tasks;
      for (const lrp of c.lrps) if (!processGuids || processGuids.has(lrp.processGuid)) countLrp(t, i, lrp.processGuid);
      if (c.lrpCounts && processGuids) {
        for (const guid of processGuids) {
          const n = c.lrpCounts.get(guid);
          if (n) countLrp(t, i, guid, n);
        }
      } else if (c.lrpCounts) for (const [guid, n] of c.lrpCounts) if (n) countLrp(t, i, guid, n);
      i++;
    });
  });
  return t;
}

/** Index of the first cell of each zone, plus n at the end. */
export function zoneBounds(t: CellTable): Int32Array {
  const bounds = new Int32Array(t.zoneNames.length + 1);
  for (let i = t.cells.length - 1; i >= 0; i--) bounds[t.zoneOf[i] ?? 0] = i;
  bounds[t.zoneNames.length] = t.cells.length;
  return bounds;
}

/** Sum of the containers every cell is starting (for the in-flight cap). */
export function totalStarting(t: CellTable): number {
  let sum = 0;
  for (const s of t.starting) sum += s;
  return sum;
}

/** Reserves an LRP instance on a cell: memory (incl. proxy) and disk, one container, one more start, one more instance. */
export function reserveLrp(t: CellTable, cell: number, processGuid: string, memoryMb: number, diskMb: number): void {
  reserve(t, cell, memoryMb, diskMb);
  countLrp(t, cell, processGuid);
}

/** Reserves a task on a cell. */
export function reserveTask(t: CellTable, cell: number, memoryMb: number, diskMb: number): void {
  reserve(t, cell, memoryMb, diskMb);
  t.tasks[cell] = (t.tasks[cell] ?? 0) + 1;
}

function reserve(t: CellTable, cell: number, memoryMb: number, diskMb: number): void {
  t.availMemory[cell] = (t.availMemory[cell] ?? 0) - memoryMb;
  t.availDisk[cell] = (t.availDisk[cell] ?? 0) - diskMb;
  t.availContainers[cell] = (t.availContainers[cell] ?? 0) - 1;
  t.starting[cell] = (t.starting[cell] ?? 0) + 1;
}
