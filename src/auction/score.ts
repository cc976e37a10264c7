// Diego's cell score (rep resources.go ComputeScore, auction cell.go ScoreForLRP/ScoreForTask). Lower wins.
//
//   resource = mean of the fractions of memory, disk and containers used once the request is placed
//   score    = resource + startingContainers × startingContainerWeight
//              + 1000 × (instances of the same process guid on the cell)   [LRP]  or  1000 × (tasks on the cell) [task]
//              + normalisedCellIndex × binPackFirstFitWeight                  [LRP only]
//
// The terms are added in Diego's order so floating-point ties come out the same.

/** Score added per co-located instance of the same app (LRP) or per task on the cell (task). */
export const LOCALITY_OFFSET = 1000;
/** Score a winner must beat; with a strict `<`, the first cell seen wins a tie. */
export const INITIAL_WINNER_SCORE = 1e20;

/** Fraction of a dimension used once `remaining` is left; a zero total counts as fully used. */
function usedFraction(remaining: number, total: number): number {
  return total > 0 ? 1 - remaining / total : 1;
}

/** Mean of the used fractions of memory, disk and containers after placing memoryMb/diskMb and one container. */
export function resourceScore(
  availMemoryMb: number,
  availDiskMb: number,
  availContainers: number,
  totalMemoryMb: number,
  totalDiskMb: number,
  totalContainers: number,
  memoryMb: number,
  diskMb: number,
): number {
  return (
    (usedFraction(availMemoryMb - memoryMb, totalMemoryMb) +
      usedFraction(availDiskMb - diskMb, totalDiskMb) +
      usedFraction(availContainers - 1, totalContainers)) /
    3
  );
}

/** LRP score: (resource + starting) + locality + bin-pack index, summed in Diego's order. */
export function scoreForLrp(
  resource: number,
  startingContainers: number,
  startingContainerWeight: number,
  sameProcessGuidOnCell: number,
  normalisedCellIndex: number,
  binPackFirstFitWeight: number,
): number {
  return (
    resource +
    startingContainers * startingContainerWeight +
    LOCALITY_OFFSET * sameProcessGuidOnCell +
    normalisedCellIndex * binPackFirstFitWeight
  );
}

/** Task score: (resource + starting) + locality, where locality counts every task on the cell. */
export function scoreForTask(
  resource: number,
  startingContainers: number,
  startingContainerWeight: number,
  tasksOnCell: number,
): number {
  return resource + startingContainers * startingContainerWeight + LOCALITY_OFFSET * tasksOnCell;
}
