// Diego's auction as pure functions: cell states and a batch of LRP/task starts in, placements and errors out.
export * from './types.ts';
export { runAuction } from './scheduler.ts';
export { explain } from './explain.ts';
export { applyResults, reserveOnCell } from './reserve.ts';
export { parseRootFs, matchRootFs, isFixedSetScheme, PRELOADED_SCHEME, PRELOADED_LAYER_SCHEME } from './rootfs.ts';
export type { ParsedRootFs } from './rootfs.ts';
export {
  filterStage,
  matchPlacementTags,
  matchVolumeDrivers,
  resourceProblems,
  resourceProblemMask,
  maskToProblems,
  PROBLEM_BIT,
  ALL_PROBLEMS_MASK,
} from './filters.ts';
export type { PlacementConstraint } from './filters.ts';
export { LOCALITY_OFFSET, INITIAL_WINNER_SCORE, resourceScore, scoreForLrp, scoreForTask } from './score.ts';
export { compareCells, groupByZone, normaliseCellIndices, sortZonesByInstances, tiedZoneGroups } from './zones.ts';
export type { Zone, ZoneCount } from './zones.ts';
export { dedupeLrps, dedupeTasks, lrpIdentifier, orderBatch, sortLrps, sortTasks } from './order.ts';
export type { OrderedItem } from './order.ts';
export {
  commonProblems,
  filterErrorMessage,
  FilterStage,
  insufficientResourcesMessage,
  placementTagMismatchMessage,
  ERROR_CELL_COMMUNICATION,
  ERROR_EXCEEDED_INFLIGHT_CREATION,
  ERROR_ROOTFS_MISMATCH,
  ERROR_VOLUME_DRIVER_MISMATCH,
  INSUFFICIENT_RESOURCES,
  RESOURCE_PROBLEMS,
} from './errors.ts';
export type { ResourceProblem } from './errors.ts';
