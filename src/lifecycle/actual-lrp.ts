// Diego's ActualLRP state machine (bbs models/actual_lrp.go), pure: the states and presences, the instance key
// that says which container a record stands for, the allowed transitions (AllowsTransitionTo), and one typed
// builder per status a writer may set. The fenced writes that use them are in ops.ts.
import { API_VERSION } from '../crds/kinds.ts';
import type { ActualLRPStatus } from '../crds/actual-lrp.ts';
import { ACTUAL_LRP_STATES, type ActualLRPState, PRESENCES, type Presence } from '../crds/actual-lrp.ts';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { nextCrashCount } from './crash-policy.ts';
import {
  actualLRPName,
  copyPresenceOfName,
  FINALIZER_CONTAINER,
  instanceLabels,
  LABEL_CELL_ID,
  asLabelValue,
  truncateReason,
} from './names.ts';

export { ACTUAL_LRP_STATES, PRESENCES, type ActualLRPState, type Presence };

/** Which container a record stands for: the instance guid a cell claimed with, on that cell (Diego's ActualLRPInstanceKey). */
export interface InstanceKey {
  instanceGuid: string;
  cellId: string;
}

/** The empty key of a record no container stands for (UNCLAIMED, CRASHED). */
export const NO_INSTANCE: InstanceKey = Object.freeze({ instanceGuid: '', cellId: '' });

export const isEmptyKey = (k: InstanceKey): boolean => !k.instanceGuid && !k.cellId;
export const sameKey = (a: InstanceKey, b: InstanceKey): boolean =>
  a.instanceGuid === b.instanceGuid && a.cellId === b.cellId;

/**
 * A record's state: an ORDINARY record is created without a status (the status subresource ignores one on create,
 * and a second write only to say UNCLAIMED would double the writes of a new instance), so no status is UNCLAIMED.
 */
export const stateOf = (a: IActualLRP): ActualLRPState => a.status?.state ?? 'UNCLAIMED';
/** A record's presence: the status says it; a copy not yet given its status is known by its name's suffix. */
export const presenceOf = (a: IActualLRP): Presence =>
  a.status?.presence ?? copyPresenceOfName(a.metadata.name ?? '') ?? 'ORDINARY';

/** An ORDINARY record no container stands for, waiting for a cell or for its cell's claim (with or without a status). */
export const isUnclaimedOrdinary = (a: IActualLRP): boolean =>
  presenceOf(a) === 'ORDINARY' && stateOf(a) === 'UNCLAIMED';
export const instanceKeyOf = (a: IActualLRP): InstanceKey => ({
  instanceGuid: a.status?.instanceGuid ?? '',
  cellId: a.status?.cellId ?? '',
});

/**
 * The record still stands for the container `key` names (Diego's BBS refuses a rep's write otherwise): same
 * instance guid on the same cell. An empty key never holds.
 */
export function holds(a: IActualLRP | undefined, key: InstanceKey): a is IActualLRP {
  return !!a && !isEmptyKey(key) && !!a.status?.instanceGuid && sameKey(instanceKeyOf(a), key);
}

/** The cell the auction placed the record on (spec.cellId): only that cell may claim or start it (our protocol). */
export const placedOn = (o: { spec: { cellId?: string } }, cellId: string): boolean =>
  !!cellId && o.spec.cellId === cellId;

/**
 * Diego's ActualLRP.AllowsTransitionTo: whether a record in state `from`, held by `fromKey`, may become `to` as
 * written by `toKey` (the empty key for an unclaim).
 *
 * | from \ to  | UNCLAIMED      | CLAIMED   | RUNNING   | CRASHED  |
 * | UNCLAIMED  | yes            | yes       | yes       | no       |
 * | CLAIMED    | if toKey empty | same key  | yes       | same key |
 * | RUNNING    | if toKey empty | same key  | same key  | same key |
 * | CRASHED    | if toKey empty | same key  | same key  | no       |
 */
export function allowsTransition(
  from: ActualLRPState,
  fromKey: InstanceKey,
  to: ActualLRPState,
  toKey: InstanceKey,
): boolean {
  const same = sameKey(fromKey, toKey);
  switch (from) {
    case 'UNCLAIMED':
      return to !== 'CRASHED';
    case 'CLAIMED':
      return (
        (to === 'UNCLAIMED' && isEmptyKey(toKey)) ||
        to === 'RUNNING' ||
        ((to === 'CLAIMED' || to === 'CRASHED') && same)
      );
    case 'RUNNING':
      return to === 'UNCLAIMED' ? isEmptyKey(toKey) : same;
    case 'CRASHED':
      return (to === 'UNCLAIMED' && isEmptyKey(toKey)) || ((to === 'CLAIMED' || to === 'RUNNING') && same);
  }
}

/** allowsTransition for a record as stored. */
export const mayBecome = (a: IActualLRP, to: ActualLRPState, toKey: InstanceKey): boolean =>
  allowsTransition(stateOf(a), instanceKeyOf(a), to, toKey);

/**
 * A status write: the fields it sets, and null for those it clears (a JSON merge patch). Typed on the CRD's
 * status, so a builder cannot name a field the schema does not have.
 */
export type StatusPatch = { [K in keyof ActualLRPStatus]?: ActualLRPStatus[K] | null };

const iso = (ms: number) => new Date(ms).toISOString();

/**
 * UNCLAIMED again (Diego's UnclaimActualLRP, a crashed instance restarted, a lost cell's instance re-placed, work
 * handed back): no container stands for it, so the instance key, net info and readiness go; so does an old
 * placement error. The one field set every unclaim writes.
 */
export function unclaimed(now: number) {
  return {
    state: 'UNCLAIMED',
    instanceGuid: null,
    cellId: null,
    netInfo: null,
    placementError: null,
    routable: null,
    since: iso(now),
  } as const satisfies StatusPatch;
}

/** CLAIMED by `key` (Diego's ClaimActualLRP): a container is starting on the key's cell. */
export function claimed(key: InstanceKey, now: number) {
  return {
    state: 'CLAIMED',
    cellId: key.cellId,
    instanceGuid: key.instanceGuid,
    since: iso(now),
    placementError: null,
    netInfo: null,
  } as const satisfies StatusPatch;
}

export type NetInfo = NonNullable<ActualLRPStatus['netInfo']>;

/** What a cell reports of a healthy container (Diego's StartActualLRP arguments besides the keys). */
export interface RunningInfo {
  netInfo: NetInfo;
  routable: boolean;
  availabilityZone: string;
  /** Internal routes; left as they are when absent. */
  internalRoutes?: { hostname: string }[];
  /** Metric tags; left as they are when absent, else replaced (tags `before` had and these lack are removed). */
  metricTags?: Record<string, string>;
}

/** RUNNING as `key` (Diego's StartActualLRP). `before`: the record it is written over (to drop its old metric tags). */
export function running(key: InstanceKey, info: RunningInfo, now: number, before?: IActualLRP): StatusPatch {
  const dropped = Object.fromEntries(Object.keys(before?.status?.metricTags ?? {}).map((k) => [k, null]));
  return {
    state: 'RUNNING',
    cellId: key.cellId,
    instanceGuid: key.instanceGuid,
    netInfo: info.netInfo,
    routable: info.routable,
    availabilityZone: info.availabilityZone,
    placementError: null,
    since: iso(now),
    ...(info.internalRoutes ? { internalRoutes: info.internalRoutes } : {}),
    // A merge patch merges maps: null out the tags the new set no longer has.
    ...(info.metricTags ? { metricTags: { ...dropped, ...info.metricTags } as Record<string, string> } : {}),
  };
}

/** Whether writing `info` as `key` over a RUNNING record would change nothing (a rep's heartbeat). */
export function sameAsRunning(a: IActualLRP, key: InstanceKey, info: RunningInfo): boolean {
  if (stateOf(a) !== 'RUNNING' || !sameKey(instanceKeyOf(a), key)) return false;
  const st = (a.status ?? {}) as Record<string, unknown>;
  const next: Record<string, unknown> = {
    netInfo: info.netInfo,
    routable: info.routable,
    availabilityZone: info.availabilityZone,
    ...(info.internalRoutes ? { internalRoutes: info.internalRoutes } : {}),
    ...(info.metricTags ? { metricTags: info.metricTags } : {}),
  };
  return Object.keys(next).every((k) => JSON.stringify(normalise(st[k])) === JSON.stringify(normalise(next[k])));
}

/** Drops undefined and empty values so a stored record and a request compare equal when Diego's would. */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(normalise);
  if (v === null || typeof v !== 'object') return v === '' ? undefined : v;
  const entries = Object.entries(v)
    .map(([k, x]) => [k, normalise(x)] as const)
    .filter(([, x]) => x !== undefined)
    .sort(([x], [y]) => x.localeCompare(y));
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}

/**
 * CRASHED (Diego's CrashActualLRP): off its cell, no container stands for it; the converger applies the restart
 * policy. The reason is kept to Diego's 1024 characters.
 */
export function crashed(reason: string, crashCount: number, now: number) {
  return {
    state: 'CRASHED',
    crashCount,
    crashReason: truncateReason(reason),
    since: iso(now),
    instanceGuid: null,
    cellId: null,
    netInfo: null,
  } as const satisfies StatusPatch;
}

/** When the record says its instance has been RUNNING since (undefined when it is not RUNNING). */
export function runningSinceOf(a: IActualLRP): number | undefined {
  return a.status?.state === 'RUNNING' && a.status.since ? Date.parse(a.status.since) : undefined;
}

/**
 * The crash count after a crash of `a` at `now` (Diego: +1, or 1 after 5 minutes of running). `runningSince`:
 * when the instance became healthy as its cell knows it (undefined: it never did); without it, what the record says.
 */
export function crashCountAfter(a: IActualLRP, now: number, ...known: [runningSince: number | undefined] | []): number {
  const runningSince = known.length > 0 ? known[0] : runningSinceOf(a);
  return nextCrashCount(a.status?.crashCount ?? 0, runningSince, now);
}

/** A placement the auction (or the placed cell) could not make: the record waits, saying why. */
export function placementFailed(error: string, now: number) {
  return { placementError: truncateReason(error), since: iso(now) } as const satisfies StatusPatch;
}

/**
 * The status of a SUSPECT copy of a RUNNING record whose cell is gone: the same instance (key, net info), serving
 * as far as anyone knows while a replacement starts.
 */
export function suspectCopy(from: IActualLRP): StatusPatch {
  const { evacuatedBy: _evacuatedBy, ...rest } = from.status ?? {};
  return { ...rest, presence: 'SUSPECT' };
}

/**
 * The status of the EVACUATING copy of the container `key` on a draining cell: RUNNING, with the record's net info,
 * serving until the replacement runs.
 */
export function evacuatingCopy(from: IActualLRP, key: InstanceKey): StatusPatch {
  const { conditions: _conditions, evacuatedBy: _evacuatedBy, ...rest } = from.status ?? {};
  return { ...rest, state: 'RUNNING', presence: 'EVACUATING', instanceGuid: key.instanceGuid, cellId: key.cellId };
}

/**
 * Who evacuated an ORDINARY record (not in Diego, whose BBS copies and unclaims in one transaction): written with the
 * unclaim that follows the EVACUATING copy, by the cell whose container `key` held the record, so the converger can
 * tell its copy from a forged one once the record no longer names that container. Status writes are merge patches:
 * the claim, start and crash of the replacement keep it.
 */
export function evacuated(key: InstanceKey) {
  return { evacuatedBy: { cellId: key.cellId, instanceGuid: key.instanceGuid } } as const satisfies StatusPatch;
}

/** The container that evacuated the record (undefined when none did, or the converger forgot it). */
export function evacuatedByOf(a: IActualLRP | undefined): InstanceKey | undefined {
  const by = a?.status?.evacuatedBy;
  return by?.cellId && by.instanceGuid ? { cellId: by.cellId, instanceGuid: by.instanceGuid } : undefined;
}

/**
 * The record's evacuatedBy is no longer needed: its replacement runs (as another container), which ends the
 * EVACUATING copy anyway (the converger retires it, and judges it by the replacement's instance guid from then on).
 * Kept, it would vouch for a copy the old cell made again. A crashed replacement keeps it: the copy may be
 * deleting still, and the instance is restarted at once (crashes 1 and 2).
 */
export function evacuationDone(a: IActualLRP): boolean {
  const by = evacuatedByOf(a);
  if (!by || presenceOf(a) !== 'ORDINARY') return false;
  return stateOf(a) === 'RUNNING' && !sameKey(instanceKeyOf(a), by);
}

/** The ORDINARY record's status when a SUSPECT copy is promoted back (its cell returned before a replacement ran). */
export function promoted(suspect: IActualLRP): StatusPatch {
  return { ...suspect.status, presence: 'ORDINARY' };
}

/** Where the auction placed a new record at its creation (its cell, and why, as the placement annotation says it). */
export interface PlacementAtCreation {
  cellId: string;
  annotations?: Record<string, string>;
}

/**
 * The new ORDINARY record of index `index` of `d` (Diego's CreateUnclaimedActualLRP): named by index, labelled, owned
 * by its DesiredLRP and held by the container finalizer. No status: it is UNCLAIMED until a cell claims it (stateOf),
 * so creating an instance is one write. `placed`: the auction already chose its cell (the converger's creations), so
 * the placement is part of the same write.
 */
export function newActualLRP(d: IDesiredLRP, index: number, placed?: PlacementAtCreation): IActualLRP {
  const desiredName = d.metadata.name ?? '';
  const labels = instanceLabels(d.metadata.uid ?? '', index, d.spec.processGuid);
  const cellLabel = placed ? asLabelValue(placed.cellId) : undefined;
  return {
    apiVersion: API_VERSION,
    kind: 'ActualLRP',
    metadata: {
      name: actualLRPName(desiredName, index),
      namespace: d.metadata.namespace,
      labels: cellLabel ? { ...labels, [LABEL_CELL_ID]: cellLabel } : labels,
      ...(placed?.annotations ? { annotations: placed.annotations } : {}),
      finalizers: [FINALIZER_CONTAINER],
      ownerReferences: [
        {
          apiVersion: API_VERSION,
          kind: 'DesiredLRP',
          name: desiredName,
          uid: d.metadata.uid ?? '',
          controller: true,
          blockOwnerDeletion: true,
        },
      ],
    },
    spec: {
      processGuid: d.spec.processGuid,
      index,
      domain: d.spec.domain,
      ...(placed ? { cellId: placed.cellId } : {}),
    },
  };
}

/** A copy of `from` named `name` on `cellId`: its labels (cell label included), owner and the container finalizer. */
export function newCopy(from: IActualLRP, name: string, cellId: string): Omit<IActualLRP, 'apiVersion' | 'kind'> {
  return {
    metadata: {
      name,
      namespace: from.metadata.namespace,
      labels: from.metadata.labels,
      finalizers: [FINALIZER_CONTAINER],
      ownerReferences: from.metadata.ownerReferences,
    },
    spec: { ...from.spec, cellId },
  };
}
