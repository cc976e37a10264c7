// `kubectl diego explain-placement`: where the auction would place an instance now, and why, cell by cell. The
// cell states are built as the auctioneer builds them (src/controllers/auctioneer.ts cellStates): capacity from the
// Cell, usage from the work placed on it, bounded by what the cell reports it has left; only present,
// non-evacuating cells take part. The instance itself is left out of its cell's usage: the question is where it
// would go if it were placed again. The scores are Diego's with its default weights (starting containers 0.25, no
// bin-pack first fit); the controller's own flags may weigh differently.
import {
  DEFAULT_AUCTION_CONFIG,
  explain,
  FilterStage,
  filterStage,
  type CellState,
  type Explanation,
  type LRPAuction,
  resourceProblems,
  resourceScore,
  runAuction,
  scoreForLrp,
} from '../auction/index.ts';
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import type { Lease } from '../lib/lease.ts';
import { stateOf } from '../lifecycle/actual-lrp.ts';
import { ANNOTATION_PLACEMENT } from '../lifecycle/names.ts';
import { taskStateOf } from '../lifecycle/task.ts';
import { type Cell, NONE } from './output.ts';
import { cellRecords, type Resources } from './views.ts';

export type Verdict = 'winner' | 'candidate' | 'no room' | 'filtered' | 'evacuating' | 'absent';

export interface CellVerdict {
  cellId: string;
  zone: string;
  verdict: Verdict;
  /** Why the cell cannot take it (filtered, no room, absent, evacuating). */
  reason?: string;
  /** Diego's score (lower wins) for a cell with room. */
  score?: number;
  available: Resources;
  total: Resources;
  /** Instances of the same app on the cell (each adds 1000 to the score). */
  sameApp: number;
  /** Instances of the app in the cell's zone (zones with fewer are tried first). */
  appInZone: number;
  starting: number;
}

export interface PlacementReport {
  namespace: string;
  name: string;
  processGuid: string;
  index: number;
  state: string;
  cellId?: string;
  request: { rootFs: string; memoryMb: number; diskMb: number; placementTags: string[]; volumeDrivers: string[] };
  /** Why the auction placed it where it is (the diego.dev/placement annotation written at placement). */
  recorded?: string;
  placementError?: string;
  /** The auction run now, on the cells as they are. */
  now: { summary: string; winner?: string; error?: string; explanation: Explanation };
  cells: CellVerdict[];
}

export interface PlacementInput {
  actual: IActualLRP;
  desired: IDesiredLRP | undefined;
  cells: ICell[];
  leases: Lease[];
  /** Every ActualLRP, Task and DesiredLRP of the cluster (what holds capacity on the cells). */
  actuals: IActualLRP[];
  tasks: ITask[];
  desireds: IDesiredLRP[];
  now: number;
}

interface Usage {
  memoryMb: number;
  diskMb: number;
  containers: number;
  starting: number;
  tasks: number;
  lrps: Map<string, number>;
}

const key = (o: { metadata: { namespace?: string; name?: string } }) => `${o.metadata.namespace}/${o.metadata.name}`;

/** What the work placed on each cell uses (src/controllers/cell-usage.ts holdsCapacity: not crashed, not done). */
function usageByCell(input: PlacementInput): Map<string, Usage> {
  const desiredByUid = new Map(input.desireds.map((d) => [d.metadata.uid ?? '', d]));
  const desiredByGuid = new Map(input.desireds.map((d) => [`${d.metadata.namespace}/${d.spec.processGuid}`, d]));
  const out = new Map<string, Usage>();
  const on = (cellId: string): Usage => {
    let u = out.get(cellId);
    if (!u) out.set(cellId, (u = { memoryMb: 0, diskMb: 0, containers: 0, starting: 0, tasks: 0, lrps: new Map() }));
    return u;
  };
  const self = key(input.actual);
  for (const a of input.actuals) {
    if (!a.spec.cellId || stateOf(a) === 'CRASHED' || key(a) === self) continue;
    const owner = a.metadata.ownerReferences?.find((o) => o.kind === 'DesiredLRP')?.uid;
    const d = (owner && desiredByUid.get(owner)) || desiredByGuid.get(`${a.metadata.namespace}/${a.spec.processGuid}`);
    const u = on(a.spec.cellId);
    u.memoryMb += d?.spec.memoryMb ?? 0;
    u.diskMb += d?.spec.diskMb ?? 0;
    u.containers++;
    if (stateOf(a) !== 'RUNNING') u.starting++;
    u.lrps.set(a.spec.processGuid, (u.lrps.get(a.spec.processGuid) ?? 0) + 1);
  }
  for (const t of input.tasks) {
    const state = taskStateOf(t);
    if (!t.spec.cellId || (state !== 'Pending' && state !== 'Running')) continue;
    const u = on(t.spec.cellId);
    u.memoryMb += t.spec.memoryMb ?? 0;
    u.diskMb += t.spec.diskMb ?? 0;
    u.containers++;
    u.tasks++;
    if (state === 'Pending') u.starting++;
  }
  return out;
}

const FILTER_REASON: Record<number, string> = {
  [FilterStage.Rootfs]: 'rootfs not offered',
  [FilterStage.VolumeDrivers]: 'volume drivers missing',
  [FilterStage.PlacementTags]: 'placement tags do not match',
};

export function explainPlacement(input: PlacementInput): PlacementReport {
  const { actual: a, desired: d } = input;
  const request = {
    rootFs: d?.spec.rootFs ?? '',
    memoryMb: d?.spec.memoryMb ?? 0,
    diskMb: d?.spec.diskMb ?? 0,
    placementTags: d?.spec.placementTags ?? [],
    volumeDrivers: (d?.spec.volumeMounts ?? []).map((v) => v.driver),
  };
  const usage = usageByCell(input);
  const present = new Map(cellRecords(input.cells, input.leases, input.now).map((c) => [c.cellId, c.presence.present]));
  const states: CellState[] = input.cells
    .filter((c) => !c.metadata.deletionTimestamp)
    .map((c) => {
      const total = c.spec.capacity;
      const u = usage.get(c.spec.cellId);
      const reported = c.status?.available;
      return {
        cellId: c.spec.cellId,
        zone: c.spec.zone ?? '',
        rootfsProviders: c.spec.rootfsProviders ?? [],
        volumeDrivers: c.spec.volumeDrivers ?? [],
        placementTags: c.spec.placementTags ?? [],
        optionalPlacementTags: c.spec.optionalPlacementTags ?? [],
        total,
        available: {
          memoryMb: Math.min(total.memoryMb - (u?.memoryMb ?? 0), reported?.memoryMb ?? Infinity),
          diskMb: Math.min(total.diskMb - (u?.diskMb ?? 0), reported?.diskMb ?? Infinity),
          containers: Math.min(total.containers - (u?.containers ?? 0), reported?.containers ?? Infinity),
        },
        startingContainers: u?.starting ?? 0,
        lrps: [],
        ...(u ? { lrpCounts: u.lrps } : {}),
        tasks: u?.tasks ?? 0,
        evacuating: c.status?.evacuating ?? false,
      };
    });
  const inAuction = states.filter((s) => present.get(s.cellId) === true);
  const auction: LRPAuction = {
    key: key(a),
    processGuid: a.spec.processGuid,
    index: a.spec.index,
    ...request,
  };
  const results = runAuction(inAuction, [auction], [], DEFAULT_AUCTION_CONFIG);
  const placed = results.lrps.placed[0];
  const failed = results.lrps.failed[0];
  const explanation = placed?.explanation ?? failed?.explanation ?? { cellsConsidered: 0, filteredOut: emptyFilter() };

  const appInZone = new Map<string, number>();
  for (const s of states) {
    if (present.get(s.cellId) !== true || s.evacuating) continue;
    appInZone.set(s.zone, (appInZone.get(s.zone) ?? 0) + (s.lrpCounts?.get(a.spec.processGuid) ?? 0));
  }
  const { startingContainerWeight: sw, proxyMemoryMb } = DEFAULT_AUCTION_CONFIG;
  const memoryMb = request.memoryMb + proxyMemoryMb;
  const cells = states
    .map((s): CellVerdict => {
      const sameApp = s.lrpCounts?.get(a.spec.processGuid) ?? 0;
      const base = {
        cellId: s.cellId,
        zone: s.zone,
        available: s.available,
        total: s.total,
        sameApp,
        appInZone: appInZone.get(s.zone) ?? 0,
        starting: s.startingContainers,
      };
      if (present.get(s.cellId) !== true) return { ...base, verdict: 'absent', reason: 'no current presence Lease' };
      if (s.evacuating) return { ...base, verdict: 'evacuating', reason: 'the cell is evacuating' };
      const stage = filterStage(s, request);
      if (stage !== FilterStage.Passed) return { ...base, verdict: 'filtered', reason: FILTER_REASON[stage] };
      const problems = resourceProblems(s.available, memoryMb, request.diskMb);
      if (problems.length > 0) return { ...base, verdict: 'no room', reason: `not enough ${problems.join(', ')}` };
      const { available: av, total } = s;
      const res = resourceScore(
        av.memoryMb,
        av.diskMb,
        av.containers,
        total.memoryMb,
        total.diskMb,
        total.containers,
        memoryMb,
        request.diskMb,
      );
      const score = scoreForLrp(res, s.startingContainers, sw, sameApp, 0, 0);
      return { ...base, verdict: placed?.cellId === s.cellId ? 'winner' : 'candidate', score };
    })
    .sort(
      (x, y) =>
        RANK[x.verdict] - RANK[y.verdict] || (x.score ?? 0) - (y.score ?? 0) || x.cellId.localeCompare(y.cellId),
    );

  const recorded = a.metadata.annotations?.[ANNOTATION_PLACEMENT];
  const cellId = a.status?.cellId || a.spec.cellId;
  return {
    namespace: a.metadata.namespace ?? '',
    name: a.metadata.name ?? '',
    processGuid: a.spec.processGuid,
    index: a.spec.index,
    state: stateOf(a),
    ...(cellId ? { cellId } : {}),
    request,
    ...(recorded ? { recorded } : {}),
    ...(a.status?.placementError ? { placementError: a.status.placementError } : {}),
    now: {
      summary: failed ? `${explain(explanation)}: ${failed.placementError}` : explain(explanation),
      ...(placed ? { winner: placed.cellId } : {}),
      ...(failed ? { error: failed.placementError } : {}),
      explanation,
    },
    cells,
  };
}

const RANK: Record<Verdict, number> = {
  winner: 0,
  candidate: 1,
  'no room': 2,
  filtered: 3,
  evacuating: 4,
  absent: 5,
};

const emptyFilter = () => ({ rootfs: 0, volumeDrivers: 0, placementTags: 0, resources: 0 });

/** The report as text: the instance, what was recorded at placement, the auction now, and a table of the cells. */
export function placementSummary(r: PlacementReport): string[] {
  const req = r.request;
  return [
    `ActualLRP ${r.namespace}/${r.name}: process ${r.processGuid}, index ${r.index}, ${r.state}${r.cellId ? ` on ${r.cellId}` : ''}`,
    `Asks for:   ${req.memoryMb} MB memory, ${req.diskMb} MB disk, rootfs ${req.rootFs || NONE}` +
      (req.placementTags.length ? `, placement tags ${req.placementTags.join(',')}` : '') +
      (req.volumeDrivers.length ? `, volume drivers ${req.volumeDrivers.join(',')}` : ''),
    `Recorded:   ${r.recorded ?? r.placementError ?? NONE}`,
    `Now:        ${r.now.summary}`,
  ];
}

export const PLACEMENT_HEADER = [
  'CELL',
  'ZONE',
  'VERDICT',
  'SCORE',
  'MEMORY',
  'DISK',
  'CONTAINERS',
  'SAME APP',
  'APP IN ZONE',
  'STARTING',
  'REASON',
];

export function placementRows(r: PlacementReport): Cell[][] {
  const free = (a: number, t: number) => `${a}/${t}`;
  return r.cells.map((c) => [
    c.cellId,
    c.zone || NONE,
    c.verdict === 'winner'
      ? { text: c.verdict, colour: 'green' }
      : c.verdict === 'candidate'
        ? c.verdict
        : { text: c.verdict, colour: c.verdict === 'no room' ? 'yellow' : 'red' },
    c.score === undefined ? NONE : c.score.toFixed(3),
    free(c.available.memoryMb, c.total.memoryMb),
    free(c.available.diskMb, c.total.diskMb),
    free(c.available.containers, c.total.containers),
    `${c.sameApp}`,
    `${c.appInZone}`,
    `${c.starting}`,
    c.reason ?? '',
  ]);
}
