// Diego's placement error strings (auction auctiontypes/types.go and rep resources.go), and the rules that pick one.

export const ERROR_ROOTFS_MISMATCH = 'found no compatible cell for required rootfs';
export const ERROR_VOLUME_DRIVER_MISMATCH = 'found no compatible cell with required volume drivers';
export const ERROR_CELL_COMMUNICATION = 'unable to communicate to compatible cells';
export const ERROR_EXCEEDED_INFLIGHT_CREATION = 'waiting to start instance: reached in-flight start limit';
export const INSUFFICIENT_RESOURCES = 'insufficient resources';

/** A resource a cell can be short of; the names are Diego's. */
export type ResourceProblem = 'containers' | 'disk' | 'memory';
export const RESOURCE_PROBLEMS: readonly ResourceProblem[] = ['containers', 'disk', 'memory'];

/**
 * `found no compatible cell with no placement tags` / `... with placement tag "a"` /
 * `... with placement tags "a", "b" and "c"`. Tags appear in the order the workload listed them.
 */
export function placementTagMismatchMessage(tags: readonly string[]): string {
  const q = (t: string): string => `"${t}"`;
  if (tags.length === 0) return 'found no compatible cell with no placement tags';
  if (tags.length === 1) return `found no compatible cell with placement tag ${q(tags[0] ?? '')}`;
  const head = tags.slice(0, -1).map(q).join(', ');
  return `found no compatible cell with placement tags ${head} and ${q(tags[tags.length - 1] ?? '')}`;
}

/**
 * `insufficient resources: <keys>` with the keys sorted, or plain `insufficient resources` when no problem is left.
 * Pass only the problems common to every cell that failed the fit (see commonProblems).
 */
export function insufficientResourcesMessage(problems: Iterable<ResourceProblem>): string {
  const keys = [...new Set(problems)].sort();
  return keys.length === 0 ? INSUFFICIENT_RESOURCES : `${INSUFFICIENT_RESOURCES}: ${keys.join(', ')}`;
}

/** Intersection of the problems of each failing cell: Diego reports only what every cell lacked. */
export function commonProblems(perCell: Iterable<Iterable<ResourceProblem>>): ResourceProblem[] {
  let common = new Set<ResourceProblem>(RESOURCE_PROBLEMS);
  for (const problems of perCell) {
    const set = new Set(problems);
    common = new Set([...common].filter((p) => set.has(p)));
  }
  return [...common].sort();
}

/**
 * How far through the filter chain (rootfs → volume drivers → placement tags) a workload got. When no cell passes
 * every filter, the error of the furthest stage any cell reached is reported: rootfs < volume drivers < tags.
 */
export const FilterStage = {
  Rootfs: 0,
  VolumeDrivers: 1,
  PlacementTags: 2,
  Passed: 3,
} as const;
export type FilterStage = (typeof FilterStage)[keyof typeof FilterStage];

/** The placement error for the furthest stage reached (undefined when some cell passed every filter). */
export function filterErrorMessage(furthest: FilterStage, placementTags: readonly string[]): string | undefined {
  switch (furthest) {
    case FilterStage.Rootfs:
      return ERROR_ROOTFS_MISMATCH;
    case FilterStage.VolumeDrivers:
      return ERROR_VOLUME_DRIVER_MISMATCH;
    case FilterStage.PlacementTags:
      return placementTagMismatchMessage(placementTags);
    default:
      return undefined;
  }
}
