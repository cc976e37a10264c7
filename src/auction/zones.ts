// Zone grouping, deterministic cell order, bin-pack index normalisation and Diego's zone sort for LRP spreading.
import type { CellState } from './types.ts';

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/**
 * The order cells are scanned in: zone name, then cell index (cells without one after those with one), then cellId.
 * Scores tie often (identical empty cells), and the first cell seen wins a tie, so this order makes ties deterministic.
 */
export function compareCells(a: Pick<CellState, 'zone' | 'index' | 'cellId'>, b: typeof a): number {
  const z = byString(a.zone, b.zone);
  if (z !== 0) return z;
  const ai = a.index ?? Number.POSITIVE_INFINITY;
  const bi = b.index ?? Number.POSITIVE_INFINITY;
  if (ai !== bi) return ai < bi ? -1 : 1;
  return byString(a.cellId, b.cellId);
}

export interface Zone<C> {
  name: string;
  /** The zone's cells in scan order; a cell's position here is its normalised bin-pack index. */
  cells: C[];
}

/** Groups cells by zone, zones sorted by name and cells by compareCells. */
export function groupByZone<C extends Pick<CellState, 'zone' | 'index' | 'cellId'>>(cells: readonly C[]): Zone<C>[] {
  const byZone = new Map<string, C[]>();
  for (const c of [...cells].sort(compareCells)) {
    const list = byZone.get(c.zone);
    if (list === undefined) byZone.set(c.zone, [c]);
    else list.push(c);
  }
  return [...byZone].map(([name, zoneCells]) => ({ name, cells: zoneCells }));
}

/** Each cell's index normalised to 0..n-1 within its zone (Diego does this when bin-pack first fit is on). */
export function normaliseCellIndices(cells: readonly CellState[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const zone of groupByZone(cells)) zone.cells.forEach((c, i) => out.set(c.cellId, i));
  return out;
}

export interface ZoneCount<Z> {
  zone: Z;
  /** Instances of the app already in the zone (including ones placed earlier in this batch). */
  instances: number;
}

/** Zones with the fewest instances of the app first; a stable sort, so tied zones keep their (name) order. */
export function sortZonesByInstances<Z>(zones: readonly ZoneCount<Z>[]): ZoneCount<Z>[] {
  return [...zones].sort((a, b) => a.instances - b.instances);
}

/**
 * Splits zones (already sorted by instances) into the groups Diego scans together: consecutive zones with the same
 * count form one group, whose cells compete on score. The scan stops after the first group that yields a winner.
 */
export function tiedZoneGroups<Z>(sorted: readonly ZoneCount<Z>[]): ZoneCount<Z>[][] {
  const groups: ZoneCount<Z>[][] = [];
  for (const z of sorted) {
    const last = groups[groups.length - 1];
    if (last !== undefined && last[0]?.instances === z.instances) last.push(z);
    else groups.push([z]);
  }
  return groups;
}
