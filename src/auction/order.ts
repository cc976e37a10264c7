// Batch preparation: dedupe, then Diego's placement order ("boulders before pebbles", first instances first).
import type { LRPAuction, TaskAuction } from './types.ts';

/** Diego's LRP identifier: `<processGuid>.<index>`. */
export const lrpIdentifier = (a: Pick<LRPAuction, 'processGuid' | 'index'>): string => `${a.processGuid}.${a.index}`;

/** Drops repeated LRP instances (same processGuid.index); the first occurrence wins. */
export function dedupeLrps<A extends Pick<LRPAuction, 'processGuid' | 'index'>>(lrps: readonly A[]): A[] {
  const seen = new Set<string>();
  return lrps.filter((a) => {
    const id = lrpIdentifier(a);
    if (seen.has(id)) return false;
    seen.add(id);
    return true;
  });
}

/** Drops repeated tasks (same taskGuid); the first occurrence wins. */
export function dedupeTasks<A extends Pick<TaskAuction, 'taskGuid'>>(tasks: readonly A[]): A[] {
  const seen = new Set<string>();
  return tasks.filter((t) => {
    if (seen.has(t.taskGuid)) return false;
    seen.add(t.taskGuid);
    return true;
  });
}

/** LRPs by index ascending, then memory descending (stable: equal items keep batch order). */
export function sortLrps<A extends Pick<LRPAuction, 'index' | 'memoryMb'>>(lrps: readonly A[]): A[] {
  return [...lrps].sort((a, b) => a.index - b.index || b.memoryMb - a.memoryMb);
}

/** Tasks by memory descending (stable). */
export function sortTasks<A extends Pick<TaskAuction, 'memoryMb'>>(tasks: readonly A[]): A[] {
  return [...tasks].sort((a, b) => b.memoryMb - a.memoryMb);
}

export type OrderedItem = { kind: 'lrp'; auction: LRPAuction } | { kind: 'task'; auction: TaskAuction };

/**
 * The whole batch in placement order: deduped, then every index-0 LRP (biggest first), then every task (biggest
 * first), then the remaining LRPs by index then size. Keeping one instance of each app up beats tasks, which beat
 * extra instances.
 */
export function orderBatch(lrps: readonly LRPAuction[], tasks: readonly TaskAuction[]): OrderedItem[] {
  const sorted = sortLrps(dedupeLrps(lrps));
  const split = sorted.findIndex((a) => a.index > 0);
  const first = split < 0 ? sorted : sorted.slice(0, split);
  const rest = split < 0 ? [] : sorted.slice(split);
  return [
    ...first.map((auction): OrderedItem => ({ kind: 'lrp', auction })),
    ...sortTasks(dedupeTasks(tasks)).map((auction): OrderedItem => ({ kind: 'task', auction })),
    ...rest.map((auction): OrderedItem => ({ kind: 'lrp', auction })),
  ];
}
