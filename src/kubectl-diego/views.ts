// The listings of kubectl diego, as pure functions: objects read from the API server in, records (what -o json
// prints) and table rows out. The fields are cfdot's (cell-states, desired-lrps, actual-lrps, tasks, domains,
// locks) in this operator's vocabulary.
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { type Lease, leaseCurrent } from '../lib/lease.ts';
import { presenceOf, stateOf } from '../lifecycle/actual-lrp.ts';
import {
  ANNOTATION_BBS_DOMAIN,
  ANNOTATION_LOCKET_KEY,
  DEFAULT_PRESENCE_TTL_S,
  LABEL_BBS_DOMAIN,
  LABEL_CELL_PRESENCE,
  LABEL_LOCKET,
} from '../lifecycle/names.ts';
import { taskStateOf, TASK_STATES, type TaskState } from '../lifecycle/task.ts';
import { ageOf, type Cell, type Colour, humanDuration, NONE } from './output.ts';

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

/** A table: its column headers and how a record fills a row (at `now`, for ages). */
export interface View<R> {
  header: string[];
  row(r: R, now: number): Cell[];
}

/** Rows of a view, with a NAMESPACE column first when the listing spans namespaces (kubectl -A). */
export function tableRows<R extends object>(
  view: View<R>,
  records: R[],
  now: number,
  allNamespaces: boolean,
): { header: string[]; rows: Cell[][] } {
  if (!allNamespaces) return { header: view.header, rows: records.map((r) => view.row(r, now)) };
  return {
    header: ['NAMESPACE', ...view.header],
    rows: records.map((r) => [(r as { namespace?: string }).namespace ?? '', ...view.row(r, now)]),
  };
}

const byNamespaceAndName = (a: { namespace?: string; name: string }, b: { namespace?: string; name: string }) =>
  (a.namespace ?? '').localeCompare(b.namespace ?? '') || a.name.localeCompare(b.name, 'en', { numeric: true });

// ---- cells ----------------------------------------------------------------------------------------------------

export interface Presence {
  /** The presence Lease is current: the cell takes part in auctions. */
  present: boolean;
  /** When the Lease was last renewed (absent: the cell has no Lease). */
  renewed?: string;
  ttlSeconds?: number;
}

export interface CellRecord {
  cellId: string;
  name: string;
  zone: string;
  capacity: Resources;
  available?: Resources;
  lrpInstances: number;
  tasks: number;
  startingContainers: number;
  evacuating: boolean;
  presence: Presence;
  rootfsProviders: string[];
  placementTags: string[];
  opsUrl?: string;
  created?: string;
}

/** Whether a Lease is current at `now`: renewed within its duration (or `defaultTtlS` when it has none). */
const isPresenceLease = (l: Lease) => l.metadata?.labels?.[LABEL_CELL_PRESENCE] === 'true';
const isDomainLease = (l: Lease) => l.metadata?.labels?.[LABEL_BBS_DOMAIN] === 'true';

/** Cells with their presence (the Lease the cell agent renews, holder = cell id), sorted by cell id. */
export function cellRecords(cells: ICell[], leases: Lease[], now: number): CellRecord[] {
  const presences = new Map<string, Lease>();
  for (const l of leases.filter(isPresenceLease)) {
    if (l.spec?.holderIdentity) presences.set(l.spec.holderIdentity, l);
  }
  return cells
    .map((c): CellRecord => {
      const lease = presences.get(c.spec.cellId);
      const renewed = lease?.spec?.renewTime ?? lease?.spec?.acquireTime;
      return {
        cellId: c.spec.cellId,
        name: c.metadata.name ?? '',
        zone: c.spec.zone ?? '',
        capacity: c.spec.capacity,
        ...(c.status?.available ? { available: c.status.available } : {}),
        lrpInstances: c.status?.lrpInstances ?? 0,
        tasks: c.status?.tasks ?? 0,
        startingContainers: c.status?.startingContainers ?? 0,
        evacuating: c.status?.evacuating ?? false,
        presence: {
          present: lease !== undefined && leaseCurrent(lease, now, DEFAULT_PRESENCE_TTL_S),
          ...(renewed ? { renewed } : {}),
          ...(lease ? { ttlSeconds: lease.spec?.leaseDurationSeconds ?? DEFAULT_PRESENCE_TTL_S } : {}),
        },
        rootfsProviders: (c.spec.rootfsProviders ?? []).flatMap((p) =>
          p.properties?.length ? p.properties.map((s) => `${p.name}:${s}`) : [p.name],
        ),
        placementTags: c.spec.placementTags ?? [],
        ...(c.spec.opsUrl ? { opsUrl: c.spec.opsUrl } : {}),
        ...(c.metadata.creationTimestamp ? { created: String(c.metadata.creationTimestamp) } : {}),
      };
    })
    .sort((a, b) => a.cellId.localeCompare(b.cellId, 'en', { numeric: true }));
}

/** "renewed 3s ago" (green), "expired 2m ago" (red) or "none" (red: no presence Lease at all). */
function presenceCell(p: Presence, now: number): Cell {
  if (!p.renewed) return { text: 'none', colour: 'red' };
  const ago = ageOf(p.renewed, now);
  return p.present ? { text: `renewed ${ago} ago`, colour: 'green' } : { text: `expired ${ago} ago`, colour: 'red' };
}

const dash = (s: string | undefined): string => (s ? s : NONE);
const yesNo = (b: boolean, colour?: Colour): Cell => (b ? { text: 'true', ...(colour ? { colour } : {}) } : 'false');

/** What each cell offers and whether it is present (cfdot cells). */
export const CELLS: View<CellRecord> = {
  header: ['CELL', 'ZONE', 'MEMORY', 'DISK', 'CONTAINERS', 'ROOTFS', 'PRESENCE', 'AGE'],
  row: (c, now) => [
    c.cellId,
    dash(c.zone),
    `${c.capacity.memoryMb}`,
    `${c.capacity.diskMb}`,
    `${c.capacity.containers}`,
    c.rootfsProviders.join(',') || NONE,
    presenceCell(c.presence, now),
    ageOf(c.created, now),
  ],
};

const freeOfTotal = (free: number | undefined, total: number): Cell => {
  const text = `${free ?? '?'}/${total}`;
  return free !== undefined && free <= 0 ? { text, colour: 'yellow' } : text;
};

/** What each cell has left and runs (cfdot cell-states): MEMORY, DISK and CONTAINERS are free/total. */
export const CELL_STATES: View<CellRecord> = {
  header: ['CELL', 'ZONE', 'MEMORY', 'DISK', 'CONTAINERS', 'INSTANCES', 'TASKS', 'STARTING', 'EVACUATING', 'PRESENCE'],
  row: (c, now) => [
    c.cellId,
    dash(c.zone),
    freeOfTotal(c.available?.memoryMb, c.capacity.memoryMb),
    freeOfTotal(c.available?.diskMb, c.capacity.diskMb),
    freeOfTotal(c.available?.containers, c.capacity.containers),
    `${c.lrpInstances}`,
    `${c.tasks}`,
    `${c.startingContainers}`,
    yesNo(c.evacuating, 'yellow'),
    presenceCell(c.presence, now),
  ],
};

// ---- desired LRPs -----------------------------------------------------------------------------------------------

export interface DesiredLRPRecord {
  namespace?: string;
  name: string;
  processGuid: string;
  domain: string;
  instances: number;
  running: number;
  claimed: number;
  unclaimed: number;
  crashed: number;
  memoryMb: number;
  diskMb: number;
  rootFs: string;
  logGuid: string;
  created?: string;
}

export function desiredLRPRecords(items: IDesiredLRP[]): DesiredLRPRecord[] {
  return items
    .map((d): DesiredLRPRecord => ({
      namespace: d.metadata.namespace,
      name: d.metadata.name ?? '',
      processGuid: d.spec.processGuid,
      domain: d.spec.domain,
      instances: d.spec.instances ?? 1,
      running: d.status?.runningInstances ?? 0,
      claimed: d.status?.claimedInstances ?? 0,
      unclaimed: d.status?.unclaimedInstances ?? 0,
      crashed: d.status?.crashedInstances ?? 0,
      memoryMb: d.spec.memoryMb ?? 0,
      diskMb: d.spec.diskMb ?? 0,
      rootFs: d.spec.rootFs,
      logGuid: d.spec.logGuid || d.spec.processGuid,
      ...(d.metadata.creationTimestamp ? { created: String(d.metadata.creationTimestamp) } : {}),
    }))
    .sort(byNamespaceAndName);
}

export const DESIRED_LRPS: View<DesiredLRPRecord> = {
  header: ['NAME', 'PROCESS GUID', 'DOMAIN', 'INSTANCES', 'RUNNING', 'CRASHED', 'MEMORY', 'DISK', 'AGE'],
  row: (d, now) => [
    d.name,
    d.processGuid,
    d.domain,
    `${d.instances}`,
    d.running < d.instances ? { text: `${d.running}`, colour: 'yellow' } : { text: `${d.running}`, colour: 'green' },
    d.crashed > 0 ? { text: `${d.crashed}`, colour: 'red' } : `${d.crashed}`,
    `${d.memoryMb}`,
    `${d.diskMb}`,
    ageOf(d.created, now),
  ],
};

// ---- actual LRPs ------------------------------------------------------------------------------------------------

export interface ActualLRPRecord {
  namespace?: string;
  name: string;
  processGuid: string;
  index: number;
  domain: string;
  state: string;
  presence: string;
  /** The cell running the instance (status.cellId), else the cell it is placed on (spec.cellId). */
  cellId?: string;
  zone?: string;
  instanceGuid?: string;
  address?: string;
  ports?: string;
  crashCount: number;
  crashReason?: string;
  placementError?: string;
  since?: string;
}

export const cellOfActual = (a: IActualLRP): string | undefined => a.status?.cellId || a.spec.cellId || undefined;

export function actualLRPRecords(
  items: IActualLRP[],
  filter: { processGuid?: string; cellId?: string } = {},
): ActualLRPRecord[] {
  return items
    .filter((a) => !filter.processGuid || a.spec.processGuid === filter.processGuid)
    .filter((a) => !filter.cellId || cellOfActual(a) === filter.cellId)
    .map((a): ActualLRPRecord => {
      const s = a.status;
      const ports = (s?.netInfo?.ports ?? []).map((p) => `${p.hostPort}:${p.containerPort}`).join(',');
      const cellId = cellOfActual(a);
      return {
        namespace: a.metadata.namespace,
        name: a.metadata.name ?? '',
        processGuid: a.spec.processGuid,
        index: a.spec.index,
        domain: a.spec.domain,
        state: stateOf(a),
        presence: presenceOf(a),
        ...(cellId ? { cellId } : {}),
        ...(s?.availabilityZone ? { zone: s.availabilityZone } : {}),
        ...(s?.instanceGuid ? { instanceGuid: s.instanceGuid } : {}),
        ...(s?.netInfo?.address ? { address: s.netInfo.address } : {}),
        ...(ports ? { ports } : {}),
        crashCount: s?.crashCount ?? 0,
        ...(s?.crashReason ? { crashReason: s.crashReason } : {}),
        ...(s?.placementError ? { placementError: s.placementError } : {}),
        ...(s?.since ? { since: String(s.since) } : {}),
      };
    })
    .sort(
      (a, b) =>
        (a.namespace ?? '').localeCompare(b.namespace ?? '') ||
        a.processGuid.localeCompare(b.processGuid) ||
        a.index - b.index ||
        a.name.localeCompare(b.name),
    );
}

const STATE_COLOUR: Record<string, Colour> = {
  RUNNING: 'green',
  CLAIMED: 'yellow',
  UNCLAIMED: 'yellow',
  CRASHED: 'red',
  Running: 'green',
  Pending: 'yellow',
  Resolving: 'grey',
  Completed: 'grey',
};
const stateCell = (state: string): Cell => ({
  text: state,
  ...(STATE_COLOUR[state] ? { colour: STATE_COLOUR[state] } : {}),
});

export const ACTUAL_LRPS: View<ActualLRPRecord> = {
  header: ['NAME', 'PROCESS GUID', 'INDEX', 'STATE', 'PRESENCE', 'CELL', 'ADDRESS', 'CRASHES', 'SINCE', 'DETAILS'],
  row: (a, now) => [
    a.name,
    a.processGuid,
    `${a.index}`,
    stateCell(a.state),
    a.presence === 'ORDINARY' ? a.presence : { text: a.presence, colour: 'yellow' },
    dash(a.cellId),
    a.address ? `${a.address}${a.ports ? `[${a.ports}]` : ''}` : NONE,
    a.crashCount > 0 ? { text: `${a.crashCount}`, colour: 'red' } : '0',
    a.since ? ageOf(a.since, now) : NONE,
    oneLine(a.placementError ?? a.crashReason ?? ''),
  ],
};

/** A reason on one table line: newlines folded, at most 60 characters. */
function oneLine(s: string): string {
  const flat = s.replace(/\s+/g, ' ').trim();
  return flat.length > 60 ? `${flat.slice(0, 59)}…` : flat;
}

// ---- tasks ------------------------------------------------------------------------------------------------------

export interface TaskRecord {
  namespace?: string;
  name: string;
  taskGuid: string;
  domain: string;
  state: TaskState;
  cellId?: string;
  failed: boolean;
  failureReason?: string;
  result?: string;
  created?: string;
}

/** A task state as typed by a user (any case), or undefined when it is none of Diego's four. */
export function parseTaskState(s: string): TaskState | undefined {
  return TASK_STATES.find((t) => t.toLowerCase() === s.toLowerCase());
}

export const cellOfTask = (t: ITask): string | undefined => t.status?.cellId || t.spec.cellId || undefined;

export function taskRecords(items: ITask[], filter: { domain?: string; state?: TaskState } = {}): TaskRecord[] {
  return items
    .filter((t) => !filter.domain || t.spec.domain === filter.domain)
    .filter((t) => !filter.state || taskStateOf(t) === filter.state)
    .map((t): TaskRecord => {
      const cellId = cellOfTask(t);
      return {
        namespace: t.metadata.namespace,
        name: t.metadata.name ?? '',
        taskGuid: t.spec.taskGuid,
        domain: t.spec.domain,
        state: taskStateOf(t),
        ...(cellId ? { cellId } : {}),
        failed: t.status?.failed ?? false,
        ...(t.status?.failureReason ? { failureReason: t.status.failureReason } : {}),
        ...(t.status?.result ? { result: t.status.result } : {}),
        ...(t.metadata.creationTimestamp ? { created: String(t.metadata.creationTimestamp) } : {}),
      };
    })
    .sort(byNamespaceAndName);
}

export const TASKS: View<TaskRecord> = {
  header: ['NAME', 'TASK GUID', 'DOMAIN', 'STATE', 'CELL', 'FAILED', 'REASON', 'AGE'],
  row: (t, now) => [
    t.name,
    t.taskGuid,
    t.domain,
    stateCell(t.state),
    dash(t.cellId),
    yesNo(t.failed, 'red'),
    oneLine(t.failureReason ?? ''),
    ageOf(t.created, now),
  ],
};

// ---- domains and locks ------------------------------------------------------------------------------------------

export interface DomainRecord {
  domain: string;
  /** Fresh: Cloud Controller renewed it within its TTL, so the converger may remove what it no longer desires. */
  fresh: boolean;
  /** Absent: the domain never expires. */
  ttlSeconds?: number;
  renewed?: string;
}

/** The BBS domains (Leases labelled diego.dev/bbs-domain, the domain in their annotation), sorted by name. */
export function domainRecords(leases: Lease[], now: number): DomainRecord[] {
  return leases
    .filter(isDomainLease)
    .map((l): DomainRecord => {
      const ttl = l.spec?.leaseDurationSeconds;
      const renewed = l.spec?.renewTime ?? l.spec?.acquireTime;
      return {
        domain: l.metadata?.annotations?.[ANNOTATION_BBS_DOMAIN] ?? l.metadata?.name ?? '',
        fresh: leaseCurrent(l, now),
        ...(ttl ? { ttlSeconds: ttl } : {}),
        ...(renewed ? { renewed } : {}),
      };
    })
    .sort((a, b) => a.domain.localeCompare(b.domain));
}

export const DOMAINS: View<DomainRecord> = {
  header: ['DOMAIN', 'FRESH', 'TTL', 'RENEWED'],
  row: (d, now) => [
    d.domain,
    d.fresh ? { text: 'true', colour: 'green' } : { text: 'false', colour: 'yellow' },
    d.ttlSeconds ? humanDuration(d.ttlSeconds * 1000) : 'never expires',
    d.renewed ? `${ageOf(d.renewed, now)} ago` : NONE,
  ],
};

export interface LockRecord {
  /** The lock: the Lease's name (diego-operator-controller, diego-operator-route-emitter, ...), or a Locket lock's key. */
  name: string;
  holder?: string;
  /** The holder's lease is current. */
  held: boolean;
  ttlSeconds?: number;
  renewed?: string;
  acquired?: string;
}

/** The locks (Locket's locks): the system namespace's Leases that are neither cell presences nor BBS domains. */
export function lockRecords(leases: Lease[], now: number): LockRecord[] {
  return leases
    .filter((l) => !isPresenceLease(l) && !isDomainLease(l))
    .map((l): LockRecord => {
      const s = l.spec ?? {};
      const locket = l.metadata?.labels?.[LABEL_LOCKET] === 'true';
      return {
        // A lock taken through Locket is named by its key (the Lease's name is a hash of it).
        name: (locket ? l.metadata?.annotations?.[ANNOTATION_LOCKET_KEY] : undefined) ?? l.metadata?.name ?? '',
        ...(s.holderIdentity ? { holder: s.holderIdentity } : {}),
        held: !!s.holderIdentity && leaseCurrent(l, now),
        ...(s.leaseDurationSeconds ? { ttlSeconds: s.leaseDurationSeconds } : {}),
        ...(s.renewTime ? { renewed: s.renewTime } : {}),
        ...(s.acquireTime ? { acquired: s.acquireTime } : {}),
      };
    })
    .sort((a, b) => a.name.localeCompare(b.name));
}

export const LOCKS: View<LockRecord> = {
  header: ['LOCK', 'HOLDER', 'HELD', 'TTL', 'RENEWED', 'ACQUIRED'],
  row: (l, now) => [
    l.name,
    dash(l.holder),
    l.held ? { text: 'true', colour: 'green' } : { text: 'false', colour: 'red' },
    l.ttlSeconds ? humanDuration(l.ttlSeconds * 1000) : NONE,
    l.renewed ? `${ageOf(l.renewed, now)} ago` : NONE,
    l.acquired ? `${ageOf(l.acquired, now)} ago` : NONE,
  ],
};
