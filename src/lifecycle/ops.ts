// The fenced writes every writer of ActualLRPs and Tasks calls (converger, auctioneer, task controller, the rep, the
// BBS routes, the tests' simulated cell) instead of patching by hand. Each one:
// * checks Diego's rules first — the transition table (actual-lrp.ts, task.ts), the instance key (the record must
//   still stand for the caller's container: Diego's BBS refuses a rep whose instance guid no longer matches) and our
//   placement protocol (only the cell work is placed on claims or starts it);
// * writes with a compare-and-swap on the resourceVersion of the record as the caller saw it;
// * answers with an Outcome instead of throwing on a lost race: `done` (with the record written), `moved-on` (the
//   record changed or went since it was read: look again at the newer version) or `refused` (the rules say no, and
//   why). Errors that are not a lost race (the API server unreachable, a fenced leader) still throw; a claim or
//   task start that failed that way is read back first, since the write may have landed.
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { type DiegoClient, refOf } from '../lib/resources.ts';
import {
  claimed,
  crashCountAfter,
  crashed,
  evacuated,
  evacuatedByOf,
  evacuatingCopy,
  holds,
  type InstanceKey,
  type PlacementAtCreation,
  instanceKeyOf,
  isEmptyKey,
  mayBecome,
  newActualLRP,
  newCopy,
  NO_INSTANCE,
  placedOn,
  placementFailed,
  presenceOf,
  promoted,
  running,
  type RunningInfo,
  sameAsRunning,
  sameKey,
  stateOf,
  type StatusPatch,
  suspectCopy,
  unclaimed,
} from './actual-lrp.ts';
import { copyName, type CopyPresence, FINALIZER_CONTAINER, placementPatch } from './names.ts';
import { cas, done, getOrUndefined, lostRace, movedOn, type Outcome, refused, uncertain } from './outcome.ts';
import { taskStateOf } from './task.ts';

export * from './outcome.ts';
export * from './task-ops.ts';

const isTask = (o: IActualLRP | ITask): o is ITask => o.kind === 'Task' || 'taskGuid' in o.spec;

const reread = (client: DiegoClient, a: IActualLRP) =>
  getOrUndefined(client, 'ActualLRP', a.metadata.namespace, a.metadata.name ?? '');

const nameOf = (o: { metadata: { name?: string } }) => o.metadata.name ?? '';

/** Instances of one DesiredLRP created this many at a time (the converger's and DesireLRP's bound). */
export const CREATE_CONCURRENCY = 16;

/**
 * Diego's CreateUnclaimedActualLRP: index `index` of `d`, UNCLAIMED — one write, the record without a status
 * (newActualLRP). `placed`: already on the cell the auction chose (the same write). `moved-on` (exists) when the index
 * exists already: its creator made it.
 */
export async function createInstance(
  client: DiegoClient,
  d: IDesiredLRP,
  index: number,
  placed?: PlacementAtCreation,
): Promise<Outcome<IActualLRP>> {
  return cas(() => client.create('ActualLRP', newActualLRP(d, index, placed)));
}

/**
 * Diego's ClaimActualLRP: UNCLAIMED → CLAIMED by `key`, only by the cell the record is placed on. Claiming again
 * with the same key is done without a write. A write that failed on a network error is read back before it is
 * called lost (it may have landed); if that cannot tell, the error is thrown for the caller to retry.
 */
export async function claim(
  client: DiegoClient,
  a: IActualLRP,
  key: InstanceKey,
  now: number,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY') return refused('presence', `${nameOf(a)} is ${presenceOf(a)}`);
  const state = stateOf(a);
  if (state === 'CLAIMED' && holds(a, key)) return done(a);
  if (!mayBecome(a, 'CLAIMED', key)) return refused('transition', `${nameOf(a)} is ${state}: cannot be claimed`);
  if (!placedOn(a, key.cellId)) return refused('placement', `${nameOf(a)} is not placed on ${key.cellId}`);
  try {
    return done(await client.patchStatus('ActualLRP', refOf(a), claimed(key, now)));
  } catch (err) {
    const lost = lostRace(err);
    if (lost) return lost;
    if (!uncertain(err)) throw err;
    const current = await reread(client, a).catch(() => undefined);
    if (current && holds(current, key) && stateOf(current) !== 'UNCLAIMED') return done(current);
    throw err;
  }
}

export interface StartOptions {
  now: number;
  /**
   * 'own': the record must still name this container (a rep that claimed it: a record unclaimed or re-claimed since
   * is not this container's any more). 'any': Diego's StartActualLRP, which also starts an UNCLAIMED or another
   * claim's record — as long as it is placed on the caller's cell (the BBS route for Diego's reps).
   */
  claim: 'own' | 'any';
}

/**
 * Diego's StartActualLRP: → RUNNING as `key`, with what the cell reports. A heartbeat that changes nothing is done
 * without a write.
 */
export async function start(
  client: DiegoClient,
  a: IActualLRP,
  key: InstanceKey,
  info: RunningInfo,
  opts: StartOptions,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY') return refused('presence', `${nameOf(a)} is ${presenceOf(a)}`);
  if (opts.claim === 'own' && !holds(a, key))
    return refused('instance-key', `${nameOf(a)} no longer names instance ${key.instanceGuid} on ${key.cellId}`);
  if (opts.claim === 'any' && !placedOn(a, key.cellId))
    return refused('placement', `${nameOf(a)} is not placed on ${key.cellId}`);
  if (!mayBecome(a, 'RUNNING', key)) return refused('transition', `${nameOf(a)} is ${stateOf(a)}: cannot be started`);
  if (sameAsRunning(a, key, info)) return done(a);
  return cas(() => client.patchStatus('ActualLRP', refOf(a), running(key, info, opts.now, a)));
}

/** Readiness: `routable` on the record while it still names the container `key`. */
export async function setRoutable(
  client: DiegoClient,
  a: IActualLRP,
  key: InstanceKey,
  routable: boolean,
): Promise<Outcome<IActualLRP>> {
  if (!holds(a, key)) return refused('instance-key', `${nameOf(a)} no longer names instance ${key.instanceGuid}`);
  if (a.status?.routable === routable) return done(a);
  return cas(() => client.patchStatus('ActualLRP', refOf(a), { routable } satisfies StatusPatch));
}

export interface CrashOptions {
  now: number;
  /** When the instance became healthy, as its cell knows it (undefined: never); default: what the record says. */
  runningSince?: number | undefined;
}

/**
 * Diego's CrashActualLRP: a CLAIMED or RUNNING record of the container `key` → CRASHED, with Diego's crash count
 * (the converger then applies the restart policy).
 */
export async function crash(
  client: DiegoClient,
  a: IActualLRP,
  key: InstanceKey,
  reason: string,
  opts: CrashOptions,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY') return refused('presence', `${nameOf(a)} is ${presenceOf(a)}`);
  if (!holds(a, key))
    return refused('instance-key', `${nameOf(a)} no longer names instance ${key.instanceGuid} on ${key.cellId}`);
  if (!mayBecome(a, 'CRASHED', key)) return refused('transition', `${nameOf(a)} is ${stateOf(a)}: cannot crash`);
  const count = 'runningSince' in opts ? crashCountAfter(a, opts.now, opts.runningSince) : crashCountAfter(a, opts.now);
  return cas(() => client.patchStatus('ActualLRP', refOf(a), crashed(reason, count, opts.now)));
}

/**
 * Back to UNCLAIMED, off its cell (Diego's UnclaimActualLRP; a crashed instance restarted; a lost cell's or an
 * evacuating cell's instance re-placed; work whose container is gone handed back): one field set (unclaimed()).
 * Placement first, then status, so no cell claims it in between. `owner`: the caller is a cell handing back its own
 * claim — refused when the record names another container. The status write is retried over a fresh read while the
 * record is still the claim being unclaimed (a placement without its status write would strand it).
 */
export async function unclaim(
  client: DiegoClient,
  a: IActualLRP,
  opts: { now: number; owner?: InstanceKey; evacuated?: boolean },
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY') return refused('presence', `${nameOf(a)} is ${presenceOf(a)}: remove it instead`);
  if (opts.owner && !holds(a, opts.owner))
    return refused('instance-key', `${nameOf(a)} no longer names instance ${opts.owner.instanceGuid}`);
  if (!mayBecome(a, 'UNCLAIMED', NO_INSTANCE))
    return refused('transition', `${nameOf(a)} is ${stateOf(a)}: cannot be unclaimed`);
  let current = a;
  if (a.spec.cellId) {
    const off = await cas(() => client.patch('ActualLRP', refOf(a), placementPatch(null)));
    if (off.outcome !== 'done') return off;
    current = off.value;
  }
  if (stateOf(a) === 'UNCLAIMED' && isEmptyKey(instanceKeyOf(a))) return done(current);
  const before = { state: stateOf(a), key: instanceKeyOf(a) };
  // An evacuation records the container that held the record, in the same write (evacuated()).
  const status = opts.evacuated ? { ...unclaimed(opts.now), ...evacuated(before.key) } : unclaimed(opts.now);
  for (let i = 1; ; i++) {
    const written = await cas(() => client.patchStatus('ActualLRP', refOf(current), status));
    if (written.outcome !== 'moved-on' || written.why !== 'changed' || i >= 5) return written;
    const fresh = await reread(client, a);
    const same =
      fresh && !fresh.spec.cellId && stateOf(fresh) === before.state && sameKey(instanceKeyOf(fresh), before.key);
    if (!same) return movedOn('changed');
    current = fresh;
  }
}

/**
 * Forgets who evacuated the record (evacuatedBy) once its replacement runs (evacuationDone): the
 * converger's, so an old cell cannot make a copy of the old instance again. Nothing to do otherwise.
 */
export async function forgetEvacuation(client: DiegoClient, a: IActualLRP): Promise<Outcome<IActualLRP>> {
  if (!evacuatedByOf(a)) return done(a);
  return cas(() => client.patchStatus('ActualLRP', refOf(a), { evacuatedBy: null } satisfies StatusPatch));
}

/**
 * Takes work off its cell (spec.cellId) while no container stands for it: an ActualLRP UNCLAIMED or CRASHED, a Task
 * Pending (a cell that went away before claiming it, work that does not fit, an evacuating cell sending it back).
 * Claimed work belongs to its cell: unclaim it instead. `byCell`: a cell giving back work of its own — refused unless
 * the work is placed there.
 */
export async function unplace<T extends IActualLRP | ITask>(
  client: DiegoClient,
  obj: T,
  opts: { byCell?: string } = {},
): Promise<Outcome<T>> {
  if (opts.byCell !== undefined && obj.spec.cellId !== opts.byCell)
    return refused('placement', `${nameOf(obj)} is not placed on ${opts.byCell}`);
  if (!obj.spec.cellId) return done(obj);
  if (isTask(obj)) {
    if (taskStateOf(obj) !== 'Pending') return refused('transition', `${nameOf(obj)} is ${taskStateOf(obj)}`);
  } else if (!isEmptyKey(instanceKeyOf(obj))) {
    return refused('instance-key', `${nameOf(obj)} is ${stateOf(obj)} on ${obj.status?.cellId}: unclaim it instead`);
  }
  return cas(() => client.patch(isTask(obj) ? 'Task' : 'ActualLRP', refOf(obj), placementPatch(null)) as Promise<T>);
}

/**
 * The auction's placement: spec.cellId (and the cell label, and why in `annotations`) on work waiting for a cell —
 * an UNCLAIMED ORDINARY instance, a Pending task not cancelled — and not placed yet.
 */
export async function place<T extends IActualLRP | ITask>(
  client: DiegoClient,
  obj: T,
  cellId: string,
  annotations?: Record<string, string>,
): Promise<Outcome<T>> {
  if (obj.metadata.deletionTimestamp) return movedOn('gone');
  if (obj.spec.cellId) return refused('placement', `${nameOf(obj)} is placed on ${obj.spec.cellId} already`);
  if (isTask(obj)) {
    if (taskStateOf(obj) !== 'Pending') return refused('transition', `${nameOf(obj)} is ${taskStateOf(obj)}`);
    if (obj.spec.cancelled) return refused('cancelled', `${nameOf(obj)} was cancelled`);
  } else {
    if (presenceOf(obj) !== 'ORDINARY') return refused('presence', `${nameOf(obj)} is ${presenceOf(obj)}`);
    if (stateOf(obj) !== 'UNCLAIMED') return refused('transition', `${nameOf(obj)} is ${stateOf(obj)}`);
  }
  return cas(
    () =>
      client.patch(isTask(obj) ? 'Task' : 'ActualLRP', refOf(obj), placementPatch(cellId, annotations)) as Promise<T>,
  );
}

/**
 * Diego's FailActualLRP: an UNCLAIMED instance the auction (or the cell it was placed on) could not place says why.
 * `extra`: more status fields of the same write (the auctioneer's Scheduled condition).
 */
export async function failPlacement(
  client: DiegoClient,
  a: IActualLRP,
  error: string,
  opts: { now: number; extra?: StatusPatch },
): Promise<Outcome<IActualLRP>> {
  if (stateOf(a) !== 'UNCLAIMED') return refused('transition', `${nameOf(a)} is ${stateOf(a)}: cannot fail placement`);
  return cas(() => client.patchStatus('ActualLRP', refOf(a), { ...placementFailed(error, opts.now), ...opts.extra }));
}

/**
 * Removes a record (Diego's RemoveActualLRP, RetireActualLRP, a scale-down, an orphan). `owner`: only if it still
 * names the caller's container. `asSeen` (default): only the version read, so a record changed since is looked at
 * again rather than removed on stale grounds; false deletes by name. `containerGone`: the caller's container is
 * gone already, so "stop, then remove" is done and the container finalizer is released too.
 */
export async function remove(
  client: DiegoClient,
  a: IActualLRP,
  opts: { owner?: InstanceKey; asSeen?: boolean; containerGone?: boolean } = {},
): Promise<Outcome<IActualLRP>> {
  if (opts.owner && !holds(a, opts.owner))
    return refused('instance-key', `${nameOf(a)} no longer names instance ${opts.owner.instanceGuid}`);
  if (!a.metadata.deletionTimestamp) {
    const ref = opts.asSeen === false ? { namespace: a.metadata.namespace, name: nameOf(a) } : refOf(a);
    const deleted = await cas(() => client.delete('ActualLRP', ref));
    if (deleted.outcome !== 'done') return deleted;
  }
  if (opts.containerGone) {
    const owner = opts.owner;
    const released = await releaseContainer(client, a, owner ? (cur) => holds(cur, owner) : undefined);
    if (released.outcome !== 'done') return movedOn('changed');
  }
  return done(a);
}

/**
 * Drops the container finalizer ("stop, then remove": the caller stopped the container, or knows no live cell runs
 * it). The one conflict policy: a compare-and-swap on the version seen, re-read and tried again when it loses;
 * `mayRelease` is asked of every version before it is written (false: refused, a cell still runs it).
 */
export async function releaseContainer(
  client: DiegoClient,
  a: IActualLRP,
  mayRelease?: (current: IActualLRP) => boolean,
): Promise<Outcome<IActualLRP | undefined>> {
  let current: IActualLRP | undefined = a;
  for (let i = 1; ; i++) {
    if (!current) return done(undefined);
    const finalizers = current.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER_CONTAINER)) return done(current);
    if (mayRelease && !mayRelease(current))
      return refused('container', `${nameOf(current)}: its container may still run`);
    const seen: IActualLRP = current;
    const written = await cas(() =>
      client.patch('ActualLRP', refOf(seen), {
        metadata: { finalizers: finalizers.filter((f) => f !== FINALIZER_CONTAINER) },
      }),
    );
    if (written.outcome === 'done') return written;
    if (written.outcome === 'moved-on' && written.why === 'gone') return done(undefined);
    if (i >= 5) return written;
    current = await reread(client, a);
  }
}

/**
 * Creates the SUSPECT or EVACUATING copy of `from` on `cellId` with `status` (two writes: the object, then its
 * status). A copy an earlier attempt created without status is finished; one with a status is left as it is
 * (done, the copy as found).
 */
async function ensureCopy(
  client: DiegoClient,
  from: IActualLRP,
  presence: CopyPresence,
  cellId: string,
  status: StatusPatch,
): Promise<Outcome<IActualLRP>> {
  const name = copyName(nameOf(from), presence);
  let copy: IActualLRP;
  const created = await cas(() => client.create('ActualLRP', newCopy(from, name, cellId)));
  if (created.outcome === 'done') copy = created.value;
  else if (created.outcome === 'moved-on' && created.why === 'exists') {
    const found = await getOrUndefined(client, 'ActualLRP', from.metadata.namespace, name);
    if (!found) return movedOn('changed');
    if (found.status?.presence) return done(found);
    copy = found;
  } else return created;
  return cas(() => client.patchStatus('ActualLRP', refOf(copy), status));
}

/** The SUSPECT copy of a RUNNING ORDINARY record whose cell `lostCellId` is gone (Diego's suspect LRPs). */
export async function createSuspect(
  client: DiegoClient,
  a: IActualLRP,
  lostCellId: string,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY' || stateOf(a) !== 'RUNNING')
    return refused('transition', `${nameOf(a)} is ${presenceOf(a)} ${stateOf(a)}: only a RUNNING instance is kept`);
  return ensureCopy(client, a, 'SUSPECT', lostCellId, suspectCopy(a));
}

/** The EVACUATING copy of the container `key` on its draining cell (Diego's EvacuateRunningActualLRP). */
export async function createEvacuating(
  client: DiegoClient,
  a: IActualLRP,
  key: InstanceKey,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(a) !== 'ORDINARY') return refused('presence', `${nameOf(a)} is ${presenceOf(a)}`);
  if (!holds(a, key)) return refused('instance-key', `${nameOf(a)} no longer names instance ${key.instanceGuid}`);
  return ensureCopy(client, a, 'EVACUATING', key.cellId, evacuatingCopy(a, key));
}

/**
 * Refreshes what the EVACUATING copy of the container `key` reports while it is kept (net info, routability, tags:
 * Diego updates the EVACUATING row).
 */
export async function refreshCopy(
  client: DiegoClient,
  copy: IActualLRP,
  key: InstanceKey,
  fields: StatusPatch,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(copy) !== 'EVACUATING') return refused('presence', `${nameOf(copy)} is ${presenceOf(copy)}`);
  if (!holds(copy, key)) return refused('instance-key', `${nameOf(copy)} names another instance`);
  if (copy.metadata.deletionTimestamp) return movedOn('gone');
  return cas(() => client.patchStatus('ActualLRP', refOf(copy), fields));
}

/**
 * Removes a SUSPECT or EVACUATING copy of the container `owner` (default: the one the copy names as read). The
 * delete carries the version read, re-read when it loses: a copy another container's cell put under the same name
 * meanwhile (an index has one slot per copy presence) is never removed in this one's stead (refused).
 * `containerGone`: the container is gone (or going), so its finalizer is released too.
 */
export async function removeCopy(
  client: DiegoClient,
  copy: IActualLRP,
  opts: { owner?: InstanceKey; containerGone?: boolean } = {},
): Promise<Outcome<IActualLRP>> {
  const presence = presenceOf(copy);
  if (presence === 'ORDINARY') return refused('presence', `${nameOf(copy)} is not a copy`);
  const owner = opts.owner ?? instanceKeyOf(copy);
  let seen: IActualLRP | undefined = copy;
  for (let i = 1; ; i++) {
    if (!seen) return movedOn('gone');
    if (!holds(seen, owner) || presenceOf(seen) !== presence)
      return refused('instance-key', `${nameOf(copy)} names another instance now`);
    if (seen.metadata.deletionTimestamp) break;
    const target: IActualLRP = seen;
    const deleted = await cas(() => client.delete('ActualLRP', refOf(target)));
    if (deleted.outcome === 'done') break;
    if (i >= 5) return deleted;
    seen = await reread(client, copy);
  }
  if (opts.containerGone) await releaseContainer(client, seen, (cur) => holds(cur, owner));
  return done(seen);
}

/**
 * The converger's promotion of a SUSPECT copy whose cell came back before a replacement was claimed: the ORDINARY
 * record takes the copy's status (a compare-and-swap on the UNCLAIMED replacement: a cell claiming it first wins),
 * then its placement. Status first: placed-but-UNCLAIMED for even a moment, the cell would claim it. The copy is the
 * caller's to remove afterwards.
 */
export async function promoteSuspect(
  client: DiegoClient,
  ordinary: IActualLRP,
  suspect: IActualLRP,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(suspect) !== 'SUSPECT') return refused('presence', `${nameOf(suspect)} is not SUSPECT`);
  if (presenceOf(ordinary) !== 'ORDINARY' || stateOf(ordinary) !== 'UNCLAIMED')
    return refused('transition', `${nameOf(ordinary)} is ${stateOf(ordinary)}: the replacement is claimed`);
  const key = instanceKeyOf(suspect);
  if (!mayBecome(ordinary, stateOf(suspect), key))
    return refused('transition', `${nameOf(ordinary)} cannot become ${stateOf(suspect)}`);
  const restored = await cas(() => client.patchStatus('ActualLRP', refOf(ordinary), promoted(suspect)));
  if (restored.outcome !== 'done') return restored;
  let current: IActualLRP | undefined = restored.value;
  for (let i = 1; ; i++) {
    if (!current || !holds(current, key)) return movedOn('changed');
    const seen: IActualLRP = current;
    const placed = await cas(() => client.patch('ActualLRP', refOf(seen), placementPatch(suspect.spec.cellId ?? null)));
    if (placed.outcome !== 'moved-on' || placed.why !== 'changed' || i >= 5) return placed;
    current = await reread(client, ordinary);
  }
}
