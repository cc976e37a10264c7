// Applying an auction's placements to cell states: what the cells will look like once the work is accepted.
// Useful to chain auctions without re-reading the cluster (the benchmark does this) and to test reservations.
import type { AuctionConfig, AuctionResults, CellState, LRPAuction, TaskAuction } from './types.ts';
import { resolveConfig } from './types.ts';

function copy(cell: CellState): CellState {
  return { ...cell, available: { ...cell.available }, lrps: [...cell.lrps] };
}

/**
 * The reservation Diego makes when it places work on a cell, on a copy: memory (LRPs: plus proxyMemoryMb) and disk
 * are subtracted, one container is used, one more container is starting, and the LRP instance or task is recorded.
 */
export function reserveOnCell(
  cell: CellState,
  work: { kind: 'lrp'; auction: LRPAuction } | { kind: 'task'; auction: TaskAuction },
  proxyMemoryMb = 0,
): CellState {
  const out = copy(cell);
  applyInPlace(out, work, proxyMemoryMb);
  return out;
}

function applyInPlace(
  cell: CellState,
  work: { kind: 'lrp'; auction: LRPAuction } | { kind: 'task'; auction: TaskAuction },
  proxyMemoryMb: number,
): void {
  cell.available.memoryMb -= work.auction.memoryMb + (work.kind === 'lrp' ? proxyMemoryMb : 0);
  cell.available.diskMb -= work.auction.diskMb;
  cell.available.containers -= 1;
  cell.startingContainers += 1;
  if (work.kind === 'lrp') cell.lrps.push({ processGuid: work.auction.processGuid, index: work.auction.index });
  else cell.tasks += 1;
}

/**
 * Cell states after every placement in `results` (use the same config as the auction). Returns a new array; cells
 * that received work are copies, the others are the same objects as in the input.
 */
export function applyResults(
  cells: readonly CellState[],
  results: AuctionResults,
  config?: Partial<AuctionConfig>,
): CellState[] {
  const { proxyMemoryMb } = resolveConfig(config);
  const out = [...cells];
  const position = new Map<string, number>();
  cells.forEach((c, i) => {
    if (!position.has(c.cellId) && !c.evacuating) position.set(c.cellId, i);
  });
  const copied = new Set<number>();
  const target = (cellId: string): CellState | undefined => {
    const i = position.get(cellId);
    if (i === undefined) return undefined;
    if (!copied.has(i)) {
      copied.add(i);
      out[i] = copy(out[i]!);
    }
    return out[i];
  };
  for (const p of results.lrps.placed) {
    const cell = target(p.cellId);
    if (cell !== undefined) applyInPlace(cell, { kind: 'lrp', auction: p.auction }, proxyMemoryMb);
  }
  for (const p of results.tasks.placed) {
    const cell = target(p.cellId);
    if (cell !== undefined) applyInPlace(cell, { kind: 'task', auction: p.auction }, proxyMemoryMb);
  }
  return out;
}
