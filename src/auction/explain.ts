// One-line, human-readable rendering of an Explanation (for Kubernetes Events and condition messages).
import type { Explanation } from './types.ts';

const plural = (n: number, one: string, many: string): string => `${n} ${n === 1 ? one : many}`;

/** e.g. "placed on cell-3 (zone z1, score 0.412); 10 cells: 2 without rootfs, 1 without room" */
export function explain(e: Explanation): string {
  const head =
    e.winner === undefined
      ? 'not placed'
      : `placed on ${e.winner.cellId} (zone ${e.winner.zone === '' ? '""' : e.winner.zone}, score ${e.winner.score.toFixed(3)})`;
  if (e.cellsConsidered === 0) return `${head}; no cells`;
  const f = e.filteredOut;
  const parts = [
    f.rootfs > 0 ? `${f.rootfs} without rootfs` : '',
    f.volumeDrivers > 0 ? `${f.volumeDrivers} without volume drivers` : '',
    f.placementTags > 0 ? `${f.placementTags} with mismatched placement tags` : '',
    f.resources > 0 ? `${f.resources} without room` : '',
  ].filter((p) => p !== '');
  const cells = plural(e.cellsConsidered, 'cell', 'cells');
  return parts.length === 0 ? `${head}; ${cells}` : `${head}; ${cells}: ${parts.join(', ')}`;
}
