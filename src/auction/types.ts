// Public data types of the auction: what the scheduler reads (cell states, auctions, config) and what it returns.
// Everything here is plain data so the scheduler stays a pure function of its inputs.

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface RootfsProvider {
  name: string;
  properties?: string[];
}

export interface CellState {
  cellId: string;
  zone: string;
  /** Cell index for bin-pack first fit (optional; normalised per zone inside the scheduler, sorted by this value then cellId). */
  index?: number;
  /** From Cell.spec.rootfsProviders: e.g. [{name:'preloaded', properties:['cflinuxfs4','busybox']}, {name:'docker'}] */
  rootfsProviders: RootfsProvider[];
  volumeDrivers: string[];
  placementTags: string[];
  optionalPlacementTags: string[];
  total: Resources;
  available: Resources;
  startingContainers: number;
  /** LRP instances currently on the cell (process guid + index). */
  lrps: { processGuid: string; index: number }[];
  /**
   * More instances on the cell, counted per process guid (a caller that keeps usage incrementally gives counts
   * instead of listing every instance). Added to `lrps`.
   */
  lrpCounts?: ReadonlyMap<string, number>;
  /** Number of tasks currently on the cell. */
  tasks: number;
  evacuating: boolean;
}

export interface LRPAuction {
  /** Opaque id the caller uses to find the object (e.g. namespace/name). */
  key: string;
  processGuid: string;
  index: number;
  rootFs: string;
  memoryMb: number;
  diskMb: number;
  placementTags: string[];
  volumeDrivers: string[];
}

export interface TaskAuction {
  key: string;
  taskGuid: string;
  rootFs: string;
  memoryMb: number;
  diskMb: number;
  placementTags: string[];
  volumeDrivers: string[];
}

export interface AuctionConfig {
  /** Weight of each container a cell is still starting (Diego default 0.25). */
  startingContainerWeight: number;
  /** Weight of the cell's normalised index for bin-pack first fit (Diego default 0 = off). */
  binPackFirstFitWeight: number;
  /** Cap on containers starting at once across all cells (Diego default 0 = unlimited). */
  startingContainerCountMaximum: number;
  /** Memory added to every LRP for the envoy proxy (Diego adds 32 when the proxy is enabled; default 0). */
  proxyMemoryMb: number;
}

export const DEFAULT_AUCTION_CONFIG: AuctionConfig = Object.freeze({
  startingContainerWeight: 0.25,
  binPackFirstFitWeight: 0,
  startingContainerCountMaximum: 0,
  proxyMemoryMb: 0,
});

/** Fills unset (or undefined) config fields from DEFAULT_AUCTION_CONFIG. */
export function resolveConfig(config?: Partial<AuctionConfig>): AuctionConfig {
  const out: AuctionConfig = { ...DEFAULT_AUCTION_CONFIG };
  if (config === undefined) return out;
  for (const k of Object.keys(out) as (keyof AuctionConfig)[]) {
    const v = config[k];
    if (v !== undefined) out[k] = v;
  }
  return out;
}

/** Counts of cells removed by each filter, in filter order. */
export interface FilteredOut {
  rootfs: number;
  volumeDrivers: number;
  placementTags: number;
  resources: number;
}

/** Why a placement went where it did, or why it failed: for a Kubernetes Event / condition message. */
export interface Explanation {
  /** Cells in the auction (non-evacuating). */
  cellsConsidered: number;
  filteredOut: FilteredOut;
  winner?: { cellId: string; zone: string; score: number };
  /**
   * The next best cells that competed with the winner (up to RUNNERS_UP, best first): how close the choice was. Zone
   * balancing lets only the zones with the fewest instances of the app compete, so cells of other zones are absent.
   */
  runnersUp?: { cellId: string; zone: string; score: number }[];
}

export interface Placement<A> {
  auction: A;
  cellId: string;
  zone: string;
  score: number;
  explanation: Explanation;
}

export interface PlacementFailure<A> {
  auction: A;
  placementError: string;
  explanation: Explanation;
}

export interface AuctionResults {
  lrps: { placed: Placement<LRPAuction>[]; failed: PlacementFailure<LRPAuction>[] };
  tasks: { placed: Placement<TaskAuction>[]; failed: PlacementFailure<TaskAuction>[] };
}
