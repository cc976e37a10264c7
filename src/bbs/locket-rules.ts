// Locket's rules (code.cloudfoundry.org/locket handlers and lock DB), decided without I/O: what a Lock, Release,
// Fetch or FetchAll does, given the Leases of the system namespace. A Locket lock is a Lease named after a hash of
// its key (the key, value and type in annotations; owner = holderIdentity; ttl = leaseDurationSeconds, renewed on
// every Lock), so locks live in etcd with everything else. The operator's own Leases are shown as locks (the
// controller's leader Lease, the route emitter's) and cells' presence Leases as presences, read-only.
import { createHash } from 'node:crypto';
import type { Lease } from '../lib/lease.ts';
import { leaseCurrent as fresh, microTime } from '../lib/lease.ts';
import {
  ANNOTATION_LOCKET_KEY,
  ANNOTATION_LOCKET_VALUE,
  DEFAULT_PRESENCE_TTL_S,
  LABEL_BBS_DOMAIN,
  LABEL_CELL_PRESENCE,
  LABEL_LOCKET,
} from '../lifecycle/names.ts';

export { ANNOTATION_LOCKET_KEY, ANNOTATION_LOCKET_VALUE, LABEL_LOCKET };
export const LOCKET_LEASE_PREFIX = 'locket-';

/** Limits Locket's SQL schema implies (path/owner varchar(255), value text), and a bound on how many locks. */
export const MAX_KEY_BYTES = 255;
export const MAX_OWNER_BYTES = 255;
export const MAX_VALUE_BYTES = 64 * 1024;
/** A Lease's duration is an int32. */
export const MAX_TTL_SECONDS = 2 ** 31 - 1;
export const MAX_LOCKS = 1000;

/** Locket's TypeCode. */
export const TYPE_UNKNOWN = 0;
export const TYPE_LOCK = 1;
export const TYPE_PRESENCE = 2;

/** gRPC status codes Locket answers with. */
export const Code = {
  INVALID_ARGUMENT: 3,
  NOT_FOUND: 5,
  ALREADY_EXISTS: 6,
  RESOURCE_EXHAUSTED: 8,
  UNIMPLEMENTED: 12,
  UNAVAILABLE: 14,
} as const;

export class LocketError extends Error {
  readonly code: number;
  constructor(code: number, message: string) {
    super(message);
    this.code = code;
  }
}

// Locket's own errors, with its messages (clients compare them: e.g. lock-collision is expected, not a failure).
export const errLockCollision = () => new LocketError(Code.ALREADY_EXISTS, 'lock-collision');
export const errInvalidTtl = () => new LocketError(Code.INVALID_ARGUMENT, 'invalid-ttl');
export const errInvalidOwner = () => new LocketError(Code.INVALID_ARGUMENT, 'invalid-owner');
export const errResourceNotFound = () => new LocketError(Code.NOT_FOUND, 'resource-not-found');
export const errInvalidType = () => new LocketError(Code.NOT_FOUND, 'invalid-type');

export interface Resource {
  key: string;
  owner: string;
  value: string;
  type: string;
  typeCode: number;
}

export const typeName = (code: number): string =>
  code === TYPE_LOCK ? 'lock' : code === TYPE_PRESENCE ? 'presence' : '';

export const leaseNameForKey = (key: string): string =>
  `${LOCKET_LEASE_PREFIX}${createHash('sha256').update(key).digest('hex').slice(0, 20)}`;

const labelled = (lease: Lease, label: string) => lease.metadata?.labels?.[label] === 'true';
export const isLocketLease = (l: Lease): boolean => labelled(l, LABEL_LOCKET);
export const isPresenceLease = (l: Lease): boolean => labelled(l, LABEL_CELL_PRESENCE);
/** The operator's own coordination Leases (leader election): not a Locket lock, not a presence, not a domain. */
export const isComponentLease = (l: Lease): boolean =>
  !isLocketLease(l) && !isPresenceLease(l) && !labelled(l, LABEL_BBS_DOMAIN);

const bytes = (s: string) => Buffer.byteLength(s, 'utf8');

export interface LockRequest {
  resource?: Partial<Resource>;
  ttlInSeconds: bigint | number;
}

export type LockPlan =
  { op: 'create'; lease: Lease } | { op: 'update'; lease: Lease } | { op: 'refuse'; error: LocketError };

/**
 * Lock: take or renew `resource.key` for `resource.owner` for ttl seconds, as Locket does: refused when someone
 * else holds it and it has not expired (lock-collision), renewed (value and ttl replaced) when the owner holds it.
 * `leases` are the system namespace's Leases; `now` in ms.
 */
export function planLock(req: LockRequest, leases: Lease[], now: number): LockPlan {
  const refuse = (error: LocketError): LockPlan => ({ op: 'refuse', error });
  const r = req.resource ?? {};
  const typeCode = r.typeCode ?? TYPE_UNKNOWN;
  if (typeCode !== TYPE_LOCK && typeCode !== TYPE_PRESENCE) return refuse(errInvalidType());
  const ttl = BigInt(req.ttlInSeconds);
  if (ttl <= 0n || ttl > BigInt(MAX_TTL_SECONDS)) return refuse(errInvalidTtl());
  const owner = r.owner ?? '';
  if (owner === '' || bytes(owner) > MAX_OWNER_BYTES) return refuse(errInvalidOwner());
  const key = r.key ?? '';
  if (key === '' || bytes(key) > MAX_KEY_BYTES)
    return refuse(new LocketError(Code.INVALID_ARGUMENT, `invalid-key: a key is 1 to ${MAX_KEY_BYTES} bytes`));
  const value = r.value ?? '';
  if (bytes(value) > MAX_VALUE_BYTES)
    return refuse(new LocketError(Code.INVALID_ARGUMENT, `invalid-value: a value is at most ${MAX_VALUE_BYTES} bytes`));
  if (typeCode === TYPE_PRESENCE)
    return refuse(
      new LocketError(
        Code.UNIMPLEMENTED,
        'presences are not claimed through Locket here: a cell is present while its cell agent (diego-operator cell-agent) renews its Lease',
      ),
    );
  // The operator's own Leases (the controller's leader Lease, ...) are locks nobody else takes through Locket, and a
  // present cell's id is its presence's key (Locket has one key space).
  if (leases.some((l) => isComponentLease(l) && l.metadata?.name === key)) return refuse(errLockCollision());
  if (presentCellIds(leases, now).has(key)) return refuse(errLockCollision());
  const name = leaseNameForKey(key);
  const existing = leases.find((l) => l.metadata?.name === name && isLocketLease(l));
  // Another key with the same hash (or a Lease not written here): not this lock.
  if (existing && existing.metadata?.annotations?.[ANNOTATION_LOCKET_KEY] !== key) return refuse(errLockCollision());
  const live = existing && fresh(existing, now) && existing.spec?.holderIdentity;
  if (live && existing.spec?.holderIdentity !== owner) return refuse(errLockCollision());
  // Expired locks do not count: they are swept, and taking one over needs no room.
  if (!existing && leases.filter((l) => isLocketLease(l) && fresh(l, now)).length >= MAX_LOCKS)
    return refuse(
      new LocketError(
        Code.RESOURCE_EXHAUSTED,
        `too many locks: at most ${MAX_LOCKS}; release some (cfdot release-lock)`,
      ),
    );
  const at = microTime(new Date(now));
  const lease: Lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      name,
      ...(existing?.metadata?.resourceVersion ? { resourceVersion: existing.metadata.resourceVersion } : {}),
      labels: { [LABEL_LOCKET]: 'true' },
      annotations: { [ANNOTATION_LOCKET_KEY]: key, [ANNOTATION_LOCKET_VALUE]: value },
    },
    spec: {
      holderIdentity: owner,
      leaseDurationSeconds: Number(ttl),
      acquireTime: live ? (existing.spec?.acquireTime ?? at) : at,
      renewTime: at,
    },
  };
  return existing ? { op: 'update', lease } : { op: 'create', lease };
}

export type ReleasePlan = { op: 'none' } | { op: 'delete'; lease: Lease } | { op: 'refuse'; error: LocketError };

/**
 * Release: as Locket, nothing to do when the lock does not exist (or has expired: Locket would have removed it);
 * refused when someone else holds it; else the lock goes.
 */
export function planRelease(resource: Partial<Resource> | undefined, leases: Lease[], now: number): ReleasePlan {
  const key = resource?.key ?? '';
  if (leases.some((l) => isComponentLease(l) && l.metadata?.name === key))
    return { op: 'refuse', error: errLockCollision() };
  const existing = leases.find(
    (l) =>
      l.metadata?.name === leaseNameForKey(key) &&
      isLocketLease(l) &&
      l.metadata.annotations?.[ANNOTATION_LOCKET_KEY] === key,
  );
  if (!existing) return { op: 'none' };
  if (!fresh(existing, now)) return { op: 'delete', lease: existing };
  if (existing.spec?.holderIdentity !== (resource?.owner ?? '')) return { op: 'refuse', error: errLockCollision() };
  return { op: 'delete', lease: existing };
}

/** A cell as a Locket presence: key = cell id, owner = the presence Lease's holder, value = CellPresence JSON. */
export interface PresentCell {
  cellId: string;
  holder: string;
  /** CellPresence as Diego's Go JSON has it (cellPresenceJson). */
  value: string;
}

/** Every current resource of a type (LOCK or PRESENCE), as FetchAll answers; unknown types are refused. */
export function fetchAll(typeCode: number, leases: Lease[], cells: PresentCell[], now: number): Resource[] {
  if (typeCode !== TYPE_LOCK && typeCode !== TYPE_PRESENCE) throw errInvalidType();
  if (typeCode === TYPE_PRESENCE) return cells.map(presenceResource).sort(byKey);
  const out: Resource[] = [];
  for (const l of leases) {
    if (!fresh(l, now) || !l.spec?.holderIdentity) continue;
    if (isLocketLease(l)) out.push(locketResource(l));
    else if (isComponentLease(l)) out.push(componentResource(l));
  }
  return out.sort(byKey);
}

/** One resource by key: a lock (ours or taken through Locket) or a present cell; else resource-not-found. */
export function fetch(key: string, leases: Lease[], cells: PresentCell[], now: number): Resource {
  const found = [...fetchAll(TYPE_LOCK, leases, cells, now), ...fetchAll(TYPE_PRESENCE, leases, cells, now)].find(
    (r) => r.key === key,
  );
  if (!found) throw errResourceNotFound();
  return found;
}

/** Presence Leases that are current: their holders are the present cells' ids. */
export const presentCellIds = (leases: Lease[], now: number): Set<string> =>
  new Set(
    leases
      .filter((l) => isPresenceLease(l) && l.spec?.holderIdentity && fresh(l, now, DEFAULT_PRESENCE_TTL_S))
      .map((l) => l.spec!.holderIdentity!),
  );

/** Locket leases that have expired: removed when seen (Locket's expiry removes the row). */
export const expiredLocks = (leases: Lease[], now: number): Lease[] =>
  leases.filter((l) => isLocketLease(l) && !fresh(l, now));

const byKey = (a: Resource, b: Resource) => (a.key < b.key ? -1 : a.key > b.key ? 1 : 0);

function locketResource(l: Lease): Resource {
  return {
    key: l.metadata?.annotations?.[ANNOTATION_LOCKET_KEY] ?? '',
    owner: l.spec?.holderIdentity ?? '',
    value: l.metadata?.annotations?.[ANNOTATION_LOCKET_VALUE] ?? '',
    type: 'lock',
    typeCode: TYPE_LOCK,
  };
}

function componentResource(l: Lease): Resource {
  return {
    key: l.metadata?.name ?? '',
    owner: l.spec?.holderIdentity ?? '',
    value: '',
    type: 'lock',
    typeCode: TYPE_LOCK,
  };
}

function presenceResource(c: PresentCell): Resource {
  return { key: c.cellId, owner: c.holder, value: c.value, type: 'presence', typeCode: TYPE_PRESENCE };
}

interface CellSpecLike {
  cellId: string;
  repAddress?: string;
  repUrl?: string;
  zone?: string;
  capacity?: { memoryMb?: number; diskMb?: number; containers?: number };
  rootfsProviders?: { name: string; properties?: string[] }[];
  placementTags?: string[];
  optionalPlacementTags?: string[];
  annotations?: Record<string, string>;
}

/** A Cell's spec as the JSON a Diego rep puts in its Locket presence (models.CellPresence's JSON names). */
export function cellPresenceJson(spec: CellSpecLike): string {
  return JSON.stringify({
    cell_id: spec.cellId,
    rep_address: spec.repAddress ?? '',
    zone: spec.zone ?? '',
    capacity: {
      memory_mb: spec.capacity?.memoryMb ?? 0,
      disk_mb: spec.capacity?.diskMb ?? 0,
      containers: spec.capacity?.containers ?? 0,
    },
    rootfs_provider_list: (spec.rootfsProviders ?? []).map((p) => ({ name: p.name, properties: p.properties ?? [] })),
    placement_tags: spec.placementTags ?? [],
    optional_placement_tags: spec.optionalPlacementTags ?? [],
    rep_url: spec.repUrl ?? '',
    ...(spec.annotations && Object.keys(spec.annotations).length > 0 ? { annotations: spec.annotations } : {}),
  });
}
