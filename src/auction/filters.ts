// Hard constraints, applied in Diego's order: rootfs, volume drivers, placement tags, then resources.
import { FilterStage, RESOURCE_PROBLEMS, type ResourceProblem } from './errors.ts';
import { matchRootFs, parseRootFs, type ParsedRootFs } from './rootfs.ts';
import type { CellState, Resources } from './types.ts';

/** Every requested volume driver is on the cell. */
export function matchVolumeDrivers(cellDrivers: readonly string[], requested: readonly string[]): boolean {
  return requested.every((d) => cellDrivers.includes(d));
}

/**
 * Diego's placement-tag rule: the cell's required tags are all asked for, and every tag asked for is one the cell
 * offers (required or optional). So a workload with no tags lands only on cells with no required tags.
 */
export function matchPlacementTags(
  cellRequired: readonly string[],
  cellOptional: readonly string[],
  desired: readonly string[],
): boolean {
  return (
    cellRequired.every((t) => desired.includes(t)) &&
    desired.every((t) => cellRequired.includes(t) || cellOptional.includes(t))
  );
}

/** What a workload asks of a cell besides resources. */
export interface PlacementConstraint {
  rootFs: string;
  volumeDrivers: readonly string[];
  placementTags: readonly string[];
}

/** The first filter the cell fails for this constraint, or FilterStage.Passed. */
export function filterStage(
  cell: Pick<CellState, 'rootfsProviders' | 'volumeDrivers' | 'placementTags' | 'optionalPlacementTags'>,
  constraint: PlacementConstraint,
  parsedRootFs: ParsedRootFs | undefined = parseRootFs(constraint.rootFs),
): FilterStage {
  if (parsedRootFs === undefined || !matchRootFs(cell.rootfsProviders, parsedRootFs)) return FilterStage.Rootfs;
  if (!matchVolumeDrivers(cell.volumeDrivers, constraint.volumeDrivers)) return FilterStage.VolumeDrivers;
  if (!matchPlacementTags(cell.placementTags, cell.optionalPlacementTags, constraint.placementTags)) {
    return FilterStage.PlacementTags;
  }
  return FilterStage.Passed;
}

/** Bit per resource problem (the scheduler's hot loop works on masks). */
export const PROBLEM_BIT: Readonly<Record<ResourceProblem, number>> = { containers: 1, disk: 2, memory: 4 };
export const ALL_PROBLEMS_MASK = 7;

/** Bitmask of what the cell lacks to fit a request of memoryMb/diskMb and one container (0 = it fits). */
export function resourceProblemMask(
  availMemoryMb: number,
  availDiskMb: number,
  availContainers: number,
  memoryMb: number,
  diskMb: number,
): number {
  return (
    (availContainers < 1 ? PROBLEM_BIT.containers : 0) |
    (availDiskMb < diskMb ? PROBLEM_BIT.disk : 0) |
    (availMemoryMb < memoryMb ? PROBLEM_BIT.memory : 0)
  );
}

export function maskToProblems(mask: number): ResourceProblem[] {
  return RESOURCE_PROBLEMS.filter((p) => (mask & PROBLEM_BIT[p]) !== 0);
}

/**
 * What the cell lacks to fit the request (empty = it fits): memory (LRPs include the proxy memory), disk, and at
 * least one free container.
 */
export function resourceProblems(available: Resources, memoryMb: number, diskMb: number): ResourceProblem[] {
  return maskToProblems(
    resourceProblemMask(available.memoryMb, available.diskMb, available.containers, memoryMb, diskMb),
  );
}
