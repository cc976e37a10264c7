// Diego's evacuation operations (bbs controllers/evacuation_controller.go) on our CRs: what a draining cell asks
// for each of its containers — unclaim an instance that was still starting, turn a running one into an
// EVACUATING copy while its ORDINARY record is auctioned again, and remove the copy once it is not needed.
// Shared by the cell-agent's evacuator (and the simulated cells of the tests) and the BBS facade's Evacuate*
// routes (src/bbs/evacuation-routes.ts). Each is a decision over the index's records as just read, carried out
// with the fenced writes of ops.ts, and read again when one of them loses a race (docs/adr/0002).
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { type DiegoClient, isNotFound } from '../lib/resources.ts';
import {
  evacuatedByOf,
  holds,
  type InstanceKey,
  instanceKeyOf,
  isEmptyKey,
  presenceOf,
  sameKey,
  stateOf,
  type StatusPatch,
} from './actual-lrp.ts';
import { evacuatingName, selectorFor, suspectName } from './names.ts';
import {
  crash,
  createEvacuating,
  done,
  getOrUndefined,
  movedOn,
  orThrow,
  type Outcome,
  refreshCopy,
  remove,
  removeCopy,
  retryMovedOn,
  unclaim,
} from './ops.ts';

/** What the cell should do with its container after an evacuation call (Diego's keepContainer). */
export interface RunningDecision {
  keepContainer: boolean;
  /** Delete this cell's EVACUATING copy (it is no longer needed). */
  removeCopy?: boolean;
  /** The evacuation dance: copy the ORDINARY record as EVACUATING, then return it to UNCLAIMED. */
  evacuate?: boolean;
  /** RECREATE strategy: return the ORDINARY record to UNCLAIMED without a copy. */
  unclaim?: boolean;
}

/**
 * Diego's EvacuateRunningActualLRP decision, pure. `ordinary` and `copy` are the index's two records (as just
 * read); `allRunning` says whether every desired instance is RUNNING (RECREATE evacuates one at a time).
 */
export function decideRunning(
  ordinary: IActualLRP | undefined,
  copy: IActualLRP | undefined,
  me: InstanceKey,
  strategy: 'ROLLING' | 'RECREATE' = 'ROLLING',
  allRunning = true,
): RunningDecision {
  const target = holds(ordinary, me) ? ordinary : holds(copy, me) ? copy : undefined;
  const targetIsCopy = target !== undefined && target === copy;
  // The DesiredLRP is gone (or this index retired), or the replacement already runs or crashed: stop here.
  const state = ordinary?.status?.state;
  const replaced = ordinary !== undefined && ordinary !== target && (state === 'RUNNING' || state === 'CRASHED');
  if (!ordinary || ordinary.metadata.deletionTimestamp || replaced)
    return { keepContainer: false, removeCopy: targetIsCopy };
  if (strategy === 'RECREATE') {
    if (!target) return { keepContainer: false };
    if (targetIsCopy) return { keepContainer: false, removeCopy: true };
    if (state === 'RUNNING' || state === 'CLAIMED')
      return allRunning ? { keepContainer: false, unclaim: true } : { keepContainer: true };
    return { keepContainer: false };
  }
  // Already evacuated: the copy serves the index until the replacement runs. No record of this container at
  // all (or another cell's copy holds the one EVACUATING slot of the index): nothing routes to it, stop it.
  if (targetIsCopy) return { keepContainer: true };
  if (!target) return { keepContainer: false };
  if (state === 'RUNNING' || state === 'CLAIMED') return { keepContainer: true, evacuate: true };
  return { keepContainer: false };
}

/** What the converger makes of an EVACUATING copy, given its index's ORDINARY record. */
export type CopyVerdict = 'keep' | 'retire' | 'forged';

/**
 * Whether an EVACUATING copy is an evacuation's, pure. A cell may create `<instance>-evacuating` on itself for any
 * instance (admission cannot read the ORDINARY record), so the record must vouch for it: it still names the copy's
 * container (cell and instance guid: the copy is made before the unclaim), or its evacuatedBy does (written with that
 * unclaim, by the cell that held the record) — `keep`. `retire`: the record is gone, or its replacement (another
 * instance guid) runs or crashed — the copy's time is over, whoever made it. `forged`: nothing vouches for it, such as
 * a copy of another cell's instance under that instance's own guid. Diego's BBS needs none of this: it copies and
 * unclaims in one transaction, and only for the rep whose instance key the record holds.
 */
export function judgeEvacuatingCopy(copy: IActualLRP, ordinary: IActualLRP | undefined): CopyVerdict {
  if (!ordinary || ordinary.metadata.deletionTimestamp) return 'retire';
  const key = instanceKeyOf(copy);
  const record: IActualLRP = ordinary; // holds() narrows what it is false for
  if (holds(ordinary, key)) return 'keep';
  const state = stateOf(record);
  const replaced = state === 'RUNNING' || state === 'CRASHED';
  const by = evacuatedByOf(record);
  if (by && !isEmptyKey(key) && sameKey(by, key)) return replaced ? 'retire' : 'keep';
  return replaced && record.status?.instanceGuid !== key.instanceGuid ? 'retire' : 'forged';
}

const get = (client: DiegoClient, namespace: string, name: string) =>
  getOrUndefined(client, 'ActualLRP', namespace, name);

/**
 * Diego's RemoveEvacuatingActualLRP: removes an EVACUATING copy (only the container it names: a copy another cell's
 * evacuation put under the same name since it was read is left alone). `containerStopped`: the caller is the copy's
 * cell and its container is gone, so the container finalizer is released too; otherwise the copy's cell releases it
 * after stopping the container.
 */
export async function removeEvacuating(
  client: DiegoClient,
  copy: IActualLRP,
  containerStopped: boolean,
): Promise<Outcome<IActualLRP>> {
  if (presenceOf(copy) !== 'EVACUATING') return done(copy);
  return removeCopy(client, copy, { containerGone: containerStopped });
}

/** Options of the evacuation calls. */
export interface EvacuateOptions {
  /**
   * The caller holds no container finalizer of its own (a Diego rep through the BBS facade): a copy removed
   * because its container is to stop has the finalizer released at once, as nobody else would.
   */
  releaseRemoved?: boolean;
  /** Status fields to refresh on this container's EVACUATING copy while it is kept (a rep's heartbeat). */
  copyStatus?: StatusPatch;
  now?: number;
}

/**
 * Removes this container's EVACUATING or SUSPECT copy of the index, if it has one (Diego's
 * removeEvacuatingOrSuspect): done(true) when it had one. `release`: drop the container finalizer too (the
 * container is gone or going).
 */
async function removeCopies(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  release: boolean,
): Promise<Outcome<boolean>> {
  const [copy, suspect] = await Promise.all([
    get(client, namespace, evacuatingName(ordinaryName)),
    get(client, namespace, suspectName(ordinaryName)),
  ]);
  const mine = [copy, suspect].find((c) => holds(c, me) && presenceOf(c) === (c === copy ? 'EVACUATING' : 'SUSPECT'));
  if (!mine) return done(false);
  const removed = await removeCopy(client, mine, { owner: me, containerGone: release });
  // Refused: another container's copy took the name meanwhile; this one's is gone all the same.
  return removed.outcome === 'moved-on' && removed.why === 'changed' ? removed : done(true);
}

/**
 * One evacuation call: removes this container's EVACUATING or SUSPECT copy (answering `copyRemoved`), or else hands
 * `onOrdinary` the ORDINARY record when it is this container's (undefined when it is not, or is gone). Read again
 * while a write loses a race.
 */
async function removeCopyElse<T>(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  release: boolean,
  copyRemoved: T,
  onOrdinary: (ordinary: IActualLRP | undefined) => Promise<Outcome<T>>,
): Promise<T> {
  const o = await retryMovedOn(async () => {
    const removed = await removeCopies(client, namespace, ordinaryName, me, release);
    if (removed.outcome !== 'done') return removed;
    if (removed.value) return done(copyRemoved);
    const ordinary = await get(client, namespace, ordinaryName);
    return onOrdinary(holds(ordinary, me) ? ordinary : undefined);
  });
  return orThrow(o, `evacuating ${namespace}/${ordinaryName}`);
}

/**
 * Diego's EvacuateClaimedActualLRP: the container was still starting. Its EVACUATING (or SUSPECT) copy, if the
 * record is one, is removed; an ORDINARY record still claimed by this container goes back to UNCLAIMED and is
 * auctioned again. The caller destroys the container either way. Resolves false when no record of the index
 * is this container's (Diego answers ResourceNotFound).
 */
export async function evacuateClaimed(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  opts: EvacuateOptions = {},
): Promise<boolean> {
  const release = opts.releaseRemoved ?? false;
  return removeCopyElse(client, namespace, ordinaryName, me, release, true, async (ordinary) => {
    if (!ordinary) return done(false);
    if (ordinary.metadata.deletionTimestamp) return done(true);
    const state = stateOf(ordinary);
    if (state !== 'CLAIMED' && state !== 'RUNNING') return done(true);
    const back = await unclaim(client, ordinary, { now: opts.now ?? Date.now(), owner: me });
    return back.outcome === 'moved-on' ? back : done(true);
  });
}

/** What became of a record after an evacuation call that ends its container. */
export type EndedOutcome = 'not-found' | 'copy-removed' | 'removed' | 'crashed' | 'cannot-crash';

/**
 * Diego's EvacuateCrashedActualLRP: the container crashed while its cell evacuates. Its EVACUATING or SUSPECT
 * copy is removed (container finalizer released: the container is gone); an ORDINARY record of this
 * container that was CLAIMED or RUNNING becomes CRASHED (`cannot-crash` otherwise).
 */
export async function evacuateCrashed(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  reason: string,
  now = Date.now(),
): Promise<EndedOutcome> {
  return removeCopyElse<EndedOutcome>(client, namespace, ordinaryName, me, true, 'copy-removed', async (ordinary) => {
    if (!ordinary) return done('not-found');
    const crashedNow = await crash(client, ordinary, me, reason, { now });
    if (crashedNow.outcome === 'refused') return done('cannot-crash');
    return crashedNow.outcome === 'done' ? done('crashed') : crashedNow;
  });
}

/**
 * Diego's EvacuateStoppedActualLRP: the container stopped while its cell evacuates. Its EVACUATING or SUSPECT
 * copy, or else its ORDINARY record, is removed with the container finalizer released (the container is gone;
 * the converger re-creates a removed ORDINARY index).
 */
export async function evacuateStopped(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
): Promise<EndedOutcome> {
  return removeCopyElse<EndedOutcome>(client, namespace, ordinaryName, me, true, 'copy-removed', async (ordinary) => {
    if (!ordinary) return done('not-found');
    const removed = await remove(client, ordinary, { owner: me, containerGone: true });
    return removed.outcome === 'moved-on' ? removed : done('removed');
  });
}

/**
 * Diego's EvacuateRunningActualLRP. Returns whether the cell should keep the container running (it serves
 * the index until the replacement runs).
 */
export async function evacuateRunning(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  opts: EvacuateOptions = {},
): Promise<boolean> {
  const o = await retryMovedOn(async (): Promise<Outcome<boolean>> => {
    const [ordinary, copy] = await Promise.all([
      get(client, namespace, ordinaryName),
      get(client, namespace, evacuatingName(ordinaryName)),
    ]);
    const owner = ordinary?.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP')?.name;
    let desired: IDesiredLRP | undefined;
    if (owner) {
      try {
        desired = await client.get('DesiredLRP', namespace, owner);
      } catch (err) {
        if (!isNotFound(err)) throw err;
      }
    }
    const strategy = desired?.spec.updateStrategy ?? 'ROLLING';
    let allRunning = true;
    if (strategy === 'RECREATE' && desired) {
      const instances = await client.list('ActualLRP', {
        namespace,
        labelSelector: selectorFor(desired.metadata.uid ?? ''),
      });
      const running = instances.filter((a) => presenceOf(a) === 'ORDINARY' && stateOf(a) === 'RUNNING');
      allRunning = running.length >= (desired.spec.instances ?? 1);
    }
    const d = decideRunning(desired ? ordinary : undefined, copy, me, strategy, allRunning);
    const now = opts.now ?? Date.now();
    const lost = (x: Outcome<unknown>) => x.outcome === 'moved-on' && x.why === 'changed';
    if (d.removeCopy && copy) {
      const removed = await removeCopy(client, copy, { owner: me, containerGone: opts.releaseRemoved ?? false });
      if (lost(removed)) return movedOn('changed');
    }
    let copied: Outcome<IActualLRP> | undefined;
    if (d.evacuate && ordinary) {
      copied = await createEvacuating(client, ordinary, me);
      if (copied.outcome === 'moved-on') return movedOn('changed'); // read again
      if (copied.outcome === 'refused') return done(d.keepContainer);
    }
    if ((d.evacuate || d.unclaim) && ordinary) {
      // The unclaim after the copy says who evacuated the record: what vouches for the copy once the record no
      // longer names this container (judgeEvacuatingCopy). Not when the slot held another container's copy.
      const evacuated = copied?.outcome === 'done' && holds(copied.value, me);
      const back = await unclaim(client, ordinary, { now, owner: me, evacuated });
      if (lost(back)) return movedOn('changed');
    }
    // A kept copy takes the cell's latest net info, routability and tags (Diego updates the EVACUATING row).
    const keptCopy = d.keepContainer && !d.evacuate && holds(copy, me) && !copy.metadata.deletionTimestamp;
    if (keptCopy && opts.copyStatus) {
      const refreshed = await refreshCopy(client, copy, me, opts.copyStatus);
      if (lost(refreshed)) return movedOn('changed');
    }
    return done(d.keepContainer);
  });
  return orThrow(o, `evacuating ${namespace}/${ordinaryName}`);
}

/** Writes the Cell's status.evacuating (the auction leaves evacuating cells out). */
export async function setCellEvacuating(client: DiegoClient, cellName: string, evacuating: boolean): Promise<void> {
  await client.patchStatus('Cell', { name: cellName }, { evacuating }); // no resourceVersion: never a conflict
}
