// Builders for auction inputs, shared by the unit tests and the benchmark. Plain data, no test framework.
import type { CellState, LRPAuction, Resources, TaskAuction } from './types.ts';

/** Diego's simulation cell: 100 MB memory, 100 MB disk, 100 containers. */
export const SIMULATION_CELL: Resources = { memoryMb: 100, diskMb: 100, containers: 100 };
export const SIMULATION_ROOTFS = 'preloaded:linux';

export function makeCell(cellId: string, overrides: Partial<CellState> = {}): CellState {
  const total = overrides.total ?? SIMULATION_CELL;
  return {
    cellId,
    zone: 'z0',
    rootfsProviders: [{ name: 'preloaded', properties: ['linux'] }, { name: 'docker' }],
    volumeDrivers: [],
    placementTags: [],
    optionalPlacementTags: [],
    startingContainers: 0,
    lrps: [],
    tasks: 0,
    evacuating: false,
    ...overrides,
    total,
    available: overrides.available ?? { ...total },
  };
}

export function makeLrp(processGuid: string, index: number, overrides: Partial<LRPAuction> = {}): LRPAuction {
  return {
    key: `${processGuid}-${index}`,
    processGuid,
    index,
    rootFs: SIMULATION_ROOTFS,
    memoryMb: 1,
    diskMb: 1,
    placementTags: [],
    volumeDrivers: [],
    ...overrides,
  };
}

export function makeTask(taskGuid: string, overrides: Partial<TaskAuction> = {}): TaskAuction {
  return {
    key: taskGuid,
    taskGuid,
    rootFs: SIMULATION_ROOTFS,
    memoryMb: 1,
    diskMb: 1,
    placementTags: [],
    volumeDrivers: [],
    ...overrides,
  };
}

/** `count` cells named cell-0.., zones z0..z{zones-1} by index modulo zones (as Diego's simulation does). */
export function makeCells(count: number, zones = 2, overrides: Partial<CellState> = {}): CellState[] {
  return Array.from({ length: count }, (_, i) =>
    makeCell(`cell-${i}`, { zone: `z${i % zones}`, index: i, ...overrides }),
  );
}

/** Cell pre-loaded with instances of unique apps of memoryMb/diskMb each (already running, not starting). */
export function withRunningLrps(cell: CellState, count: number, memoryMb = 1, diskMb = 1, prefix = 'pre'): CellState {
  const lrps = Array.from({ length: count }, (_, i) => ({ processGuid: `${prefix}-${cell.cellId}-${i}`, index: 0 }));
  return {
    ...cell,
    lrps: [...cell.lrps, ...lrps],
    available: {
      memoryMb: cell.available.memoryMb - count * memoryMb,
      diskMb: cell.available.diskMb - count * diskMb,
      containers: cell.available.containers - count,
    },
  };
}

/** Small deterministic PRNG (mulberry32) so simulations are reproducible. */
export function rng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}
