// What the live web view shows, as a pure function of the controller's cache: cells grouped by zone with the
// instances and tasks on each, work not placed yet, crashing apps, pending tasks and the auction's recent decisions.
// Lists are bounded so one snapshot stays small whatever the size of the foundation; counts stay exact.
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { LABEL_DESIRED_LRP_UID } from '../lifecycle/names.ts';
import type { AuctionDecision } from './auction-decisions.ts';
import { holdsCapacity } from './cell-usage.ts';

export interface WebViewInput {
  now: number;
  /** This replica runs the controllers (and so has a cache and an auctioneer). */
  leading: boolean;
  cells: readonly ICell[];
  /** Whether the cell's presence Lease is current. */
  isPresent: (cellId: string) => boolean;
  actual: readonly IActualLRP[];
  desired: readonly IDesiredLRP[];
  tasks: readonly ITask[];
  /** Newest first. */
  decisions: readonly AuctionDecision[];
}

export interface WebViewLimits {
  instancesPerCell: number;
  unplaced: number;
  crashingApps: number;
  pendingTasks: number;
  decisions: number;
}

export const DEFAULT_WEB_VIEW_LIMITS: WebViewLimits = Object.freeze({
  instancesPerCell: 200,
  unplaced: 100,
  crashingApps: 100,
  pendingTasks: 100,
  decisions: 50,
});

export interface InstanceView {
  /** namespace/name of the DesiredLRP (the app), or of the ActualLRP when its DesiredLRP is gone. */
  app: string;
  processGuid: string;
  index: number;
  state: string;
  presence: string;
  crashCount: number;
  crashReason?: string;
  placementError?: string;
}

export interface TaskView {
  key: string;
  taskGuid: string;
  state: string;
  cellId?: string;
  rejectionCount: number;
  rejectionReason?: string;
  /** ISO time the task was created. */
  createdAt?: string;
}

export interface CellView {
  cellId: string;
  zone: string;
  /** Its presence Lease is current (a cell that is not is about to lose its instances). */
  present: boolean;
  evacuating: boolean;
  /** No Cell object: instances still name a cell that is gone. */
  unknown: boolean;
  capacity?: { memoryMb: number; diskMb: number; containers: number };
  available?: { memoryMb: number; diskMb: number; containers: number };
  /** What the work placed on it takes (as the auction counts it: crashed instances and finished tasks take nothing). */
  used: { memoryMb: number; diskMb: number; containers: number };
  /** Counted over all its instances; `instances` lists at most the limit. */
  counts: { instances: number; running: number; claimed: number; crashed: number; tasks: number };
  instances: InstanceView[];
  tasks: TaskView[];
}

export interface ZoneView {
  zone: string;
  cells: CellView[];
}

export interface CrashingAppView {
  app: string;
  processGuid: string;
  instances: number;
  crashed: number;
  /** Highest crash count of its instances. */
  crashCount: number;
  lastCrashReason?: string;
}

export interface DecisionView {
  at: string;
  kind: 'lrp' | 'task';
  key: string;
  /** processGuid/index or taskGuid. */
  work: string;
  cellId?: string;
  zone?: string;
  score?: number;
  /** The next best cells that competed, best first, with their scores (auction Explanation.runnersUp). */
  runnersUp?: { cellId: string; score: number }[];
  placementError?: string;
  cellsConsidered: number;
  filteredOut: { rootfs: number; volumeDrivers: number; placementTags: number; resources: number };
}

export interface WebViewModel {
  generatedAt: string;
  leading: boolean;
  totals: {
    cells: number;
    presentCells: number;
    apps: number;
    instances: number;
    running: number;
    claimed: number;
    unclaimed: number;
    crashed: number;
    pendingTasks: number;
    runningTasks: number;
  };
  zones: ZoneView[];
  /** Instances on no cell: UNCLAIMED (waiting for placement) or CRASHED (left their cell, waiting to restart). */
  unplaced: InstanceView[];
  crashing: CrashingAppView[];
  pendingTasks: TaskView[];
  decisions: DecisionView[];
}

const byString = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);
const keyOf = (o: { metadata: { namespace?: string; name?: string } }): string =>
  o.metadata.namespace ? `${o.metadata.namespace}/${o.metadata.name ?? ''}` : (o.metadata.name ?? '');

export function buildWebView(input: WebViewInput, limits: WebViewLimits = DEFAULT_WEB_VIEW_LIMITS): WebViewModel {
  const desiredByUid = new Map<string, IDesiredLRP>();
  for (const d of input.desired) if (d.metadata.uid) desiredByUid.set(d.metadata.uid, d);
  const appOf = (a: IActualLRP): IDesiredLRP | undefined =>
    desiredByUid.get(a.metadata.labels?.[LABEL_DESIRED_LRP_UID] ?? '');

  const cells = new Map<string, CellView & { all: InstanceView[] }>();
  const cellView = (cellId: string, cell?: ICell): CellView & { all: InstanceView[] } => {
    let v = cells.get(cellId);
    if (!v) {
      v = {
        cellId,
        zone: cell?.spec.zone ?? '',
        present: input.isPresent(cellId),
        evacuating: cell?.status?.evacuating ?? false,
        unknown: !cell,
        ...(cell ? { capacity: cell.spec.capacity } : {}),
        ...(cell?.status?.available ? { available: cell.status.available } : {}),
        used: { memoryMb: 0, diskMb: 0, containers: 0 },
        counts: { instances: 0, running: 0, claimed: 0, crashed: 0, tasks: 0 },
        instances: [],
        tasks: [],
        all: [],
      };
      cells.set(cellId, v);
    }
    return v;
  };
  for (const c of input.cells) if (!c.metadata.deletionTimestamp) cellView(c.spec.cellId, c);
  const use = (o: IActualLRP | ITask, memoryMb = 0, diskMb = 0): void => {
    if (!holdsCapacity(o) || !o.spec.cellId) return;
    const used = cellView(o.spec.cellId).used;
    used.memoryMb += memoryMb;
    used.diskMb += diskMb;
    used.containers++;
  };

  const totals = {
    cells: 0,
    presentCells: 0,
    apps: input.desired.length,
    instances: 0,
    running: 0,
    claimed: 0,
    unclaimed: 0,
    crashed: 0,
    pendingTasks: 0,
    runningTasks: 0,
  };
  const unplaced: InstanceView[] = [];
  const crashing = new Map<string, CrashingAppView>();
  for (const a of input.actual) {
    const d = appOf(a);
    const state = a.status?.state ?? 'UNCLAIMED';
    const view: InstanceView = {
      app: d ? keyOf(d) : keyOf(a),
      processGuid: a.spec.processGuid,
      index: a.spec.index,
      state,
      presence: a.status?.presence ?? 'ORDINARY',
      crashCount: a.status?.crashCount ?? 0,
      ...(a.status?.crashReason ? { crashReason: a.status.crashReason } : {}),
      ...(a.status?.placementError ? { placementError: a.status.placementError } : {}),
    };
    totals.instances++;
    if (state === 'RUNNING') totals.running++;
    else if (state === 'CLAIMED') totals.claimed++;
    else if (state === 'UNCLAIMED') totals.unclaimed++;
    else if (state === 'CRASHED') totals.crashed++;
    use(a, d?.spec.memoryMb, d?.spec.diskMb);
    const cellId = a.spec.cellId || a.status?.cellId;
    if (cellId) {
      const c = cellView(cellId);
      c.counts.instances++;
      if (state === 'RUNNING') c.counts.running++;
      else if (state === 'CLAIMED') c.counts.claimed++;
      else if (state === 'CRASHED') c.counts.crashed++;
      c.all.push(view);
    } else if (!a.metadata.deletionTimestamp) {
      unplaced.push(view);
    }
    if (state === 'CRASHED' || view.crashCount > 0) {
      let app = crashing.get(view.app);
      if (!app) {
        app = {
          app: view.app,
          processGuid: view.processGuid,
          instances: d?.spec.instances ?? 0,
          crashed: 0,
          crashCount: 0,
        };
        crashing.set(view.app, app);
      }
      if (state === 'CRASHED') app.crashed++;
      if (view.crashCount >= app.crashCount) {
        app.crashCount = view.crashCount;
        if (view.crashReason) app.lastCrashReason = view.crashReason;
      }
    }
  }

  const pendingTasks: TaskView[] = [];
  for (const t of input.tasks) {
    use(t, t.spec.memoryMb, t.spec.diskMb);
    const state = t.status?.state ?? 'Pending';
    const view: TaskView = {
      key: keyOf(t),
      taskGuid: t.spec.taskGuid,
      state,
      ...(t.spec.cellId ? { cellId: t.spec.cellId } : {}),
      rejectionCount: t.status?.rejectionCount ?? 0,
      ...(t.status?.rejectionReason ? { rejectionReason: t.status.rejectionReason } : {}),
      ...(t.metadata.creationTimestamp ? { createdAt: String(t.metadata.creationTimestamp) } : {}),
    };
    if (state === 'Pending') {
      totals.pendingTasks++;
      pendingTasks.push(view);
    } else if (state === 'Running') {
      totals.runningTasks++;
      const cellId = t.status?.cellId ?? t.spec.cellId;
      if (cellId) {
        const c = cellView(cellId);
        c.counts.tasks++;
        if (c.tasks.length < limits.instancesPerCell) c.tasks.push(view);
      }
    }
  }

  const byInstance = (x: InstanceView, y: InstanceView): number => byString(x.app, y.app) || x.index - y.index;
  const zones = new Map<string, CellView[]>();
  for (const { all, ...c } of cells.values()) {
    c.instances = all.sort(byInstance).slice(0, limits.instancesPerCell);
    c.tasks.sort((x, y) => byString(x.key, y.key));
    totals.cells++;
    if (c.present) totals.presentCells++;
    const list = zones.get(c.zone);
    if (list) list.push(c);
    else zones.set(c.zone, [c]);
  }

  return {
    generatedAt: new Date(input.now).toISOString(),
    leading: input.leading,
    totals,
    zones: [...zones.entries()]
      .sort(([x], [y]) => byString(x, y))
      .map(([zone, list]) => ({ zone, cells: list.sort((x, y) => byString(x.cellId, y.cellId)) })),
    unplaced: unplaced.sort(byInstance).slice(0, limits.unplaced),
    crashing: [...crashing.values()]
      .sort((x, y) => y.crashed - x.crashed || y.crashCount - x.crashCount || byString(x.app, y.app))
      .slice(0, limits.crashingApps),
    pendingTasks: pendingTasks
      .sort((x, y) => byString(x.createdAt ?? '', y.createdAt ?? '') || byString(x.key, y.key))
      .slice(0, limits.pendingTasks),
    decisions: input.decisions.slice(0, limits.decisions).map(decisionView),
  };
}

function decisionView(d: AuctionDecision): DecisionView {
  return {
    at: new Date(d.at).toISOString(),
    kind: d.kind,
    key: d.key,
    work: d.kind === 'lrp' ? `${d.processGuid ?? ''}/${d.index ?? 0}` : (d.taskGuid ?? ''),
    ...(d.cellId !== undefined ? { cellId: d.cellId, zone: d.zone ?? '', score: d.score } : {}),
    ...(d.explanation.runnersUp?.length
      ? { runnersUp: d.explanation.runnersUp.map((r) => ({ cellId: r.cellId, score: r.score })) }
      : {}),
    ...(d.placementError !== undefined ? { placementError: d.placementError } : {}),
    cellsConsidered: d.explanation.cellsConsidered,
    filteredOut: { ...d.explanation.filteredOut },
  };
}

/** The view of a replica that does not lead: no cache, no auctioneer (both run only on the leader). */
export function standbyView(now: number, decisions: readonly AuctionDecision[]): WebViewModel {
  return buildWebView({
    now,
    leading: false,
    cells: [],
    isPresent: () => false,
    actual: [],
    desired: [],
    tasks: [],
    decisions,
  });
}
