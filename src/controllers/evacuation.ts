// Diego's evacuation operations (bbs controllers/evacuation_controller.go) on our CRs: what a draining cell asks
// for each of its containers — unclaim an instance that was still starting, turn a running one into an
// EVACUATING copy while its ORDINARY record is auctioned again, and remove the copy once it is not needed.
// Shared by the cell-agent's evacuator (and the simulated cells of the tests) and the BBS facade's Evacuate*
// routes (src/bbs/evacuation-routes.ts). Every write is a compare-and-swap on the version just read
// (docs/adr/0002).
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { DiegoClient, isAlreadyExists, isNotFound, refOf, retryOnConflict } from '../lib/resources.ts';
import { nextCrashCount } from './crash-policy.ts';
import { FINALIZER_CONTAINER, placementPatch, selectorFor } from './names.ts';

/** Which container this is: the instance guid a cell claimed with, on that cell (Diego's ActualLRPInstanceKey). */
export interface InstanceKey {
  instanceGuid: string;
  cellId: string;
}

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

const isMine = (a: IActualLRP | undefined, me: InstanceKey): a is IActualLRP =>
  !!a?.status?.instanceGuid && a.status.instanceGuid === me.instanceGuid && a.status.cellId === me.cellId;

/** The EVACUATING copy's name for an ORDINARY instance name (`<desiredlrp>-<index>-evacuating`, ADR 0002). */
export const evacuatingName = (ordinaryName: string): string => `${ordinaryName}-evacuating`;
/** The SUSPECT copy's name (the converger's, `<desiredlrp>-<index>-suspect`). */
const suspectName = (ordinaryName: string): string => `${ordinaryName}-suspect`;

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
  const target = isMine(ordinary, me) ? ordinary : isMine(copy, me) ? copy : undefined;
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

const UNCLAIMED_RESET = { instanceGuid: null, cellId: null, netInfo: null, placementError: null, routable: null };

async function getOrUndefined(client: DiegoClient, namespace: string, name: string): Promise<IActualLRP | undefined> {
  try {
    return await client.get('ActualLRP', namespace, name);
  } catch (err) {
    if (isNotFound(err)) return undefined;
    throw err;
  }
}

/** Takes an ORDINARY instance off its cell and back to UNCLAIMED (placement first, so no cell claims it meanwhile). */
async function unclaim(client: DiegoClient, a: IActualLRP): Promise<void> {
  const moved = await client.patch('ActualLRP', refOf(a), placementPatch(null));
  await client.patchStatus('ActualLRP', refOf(moved), {
    ...UNCLAIMED_RESET,
    state: 'UNCLAIMED',
    since: new Date().toISOString(),
  });
}

/** Creates (or finishes) the EVACUATING copy of this cell's instance: same instance guid, net info and cell. */
async function ensureCopy(client: DiegoClient, from: IActualLRP, me: InstanceKey): Promise<void> {
  await ensureCopyRecord(client, from, evacuatingName(from.metadata.name ?? ''), me.cellId, {
    ...from.status,
    state: 'RUNNING',
    presence: 'EVACUATING',
    instanceGuid: me.instanceGuid,
    cellId: me.cellId,
    conditions: undefined,
  });
}

/**
 * Creates a copy record of `from` (EVACUATING or SUSPECT) named `name` on `cellId`, with its labels, owner and
 * the container finalizer, then writes its `status` (a second write). A copy an earlier attempt created
 * without a status is finished; one that has a status already is left as it is.
 */
export async function ensureCopyRecord(
  client: DiegoClient,
  from: IActualLRP,
  name: string,
  cellId: string,
  status: Record<string, unknown>,
): Promise<void> {
  let copy: IActualLRP;
  try {
    copy = await client.create('ActualLRP', {
      metadata: {
        name,
        namespace: from.metadata.namespace,
        labels: from.metadata.labels, // including its cell label
        finalizers: [FINALIZER_CONTAINER],
        ownerReferences: from.metadata.ownerReferences,
      },
      spec: { ...from.spec, cellId },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    copy = await client.get('ActualLRP', from.metadata.namespace, name);
    if (copy.status?.presence) return;
  }
  await client.patchStatus('ActualLRP', refOf(copy), status);
}

/**
 * Removes an EVACUATING copy. `containerStopped`: the caller is the copy's cell and its container is gone, so
 * the container finalizer is released too; otherwise the copy's cell releases it after stopping the container.
 */
export async function removeEvacuating(
  client: DiegoClient,
  copy: IActualLRP,
  containerStopped: boolean,
): Promise<void> {
  if (copy.status?.presence !== 'EVACUATING') return;
  const me = { instanceGuid: copy.status.instanceGuid ?? '', cellId: copy.status.cellId ?? '' };
  // The delete carries the version read, so a copy that another cell's evacuation put under the same name
  // meanwhile (the index has one EVACUATING slot) is never removed in this container's stead.
  let seen: IActualLRP | undefined = copy;
  const removed = await retryOnConflict(async () => {
    seen ??= await getOrUndefined(client, copy.metadata.namespace ?? '', copy.metadata.name ?? '');
    const current = seen;
    seen = undefined;
    if (!isMine(current, me) || current.status?.presence !== 'EVACUATING') return false;
    await client.delete('ActualLRP', refOf(current));
    return true;
  });
  if (removed && containerStopped) await releaseContainer(client, copy);
}

/** Drops the container finalizer of a record whose container is gone ("stop, then remove"). */
export async function releaseContainer(client: DiegoClient, a: IActualLRP): Promise<void> {
  await retryOnConflict(async () => {
    const current = await getOrUndefined(client, a.metadata.namespace ?? '', a.metadata.name ?? '');
    const finalizers = current?.metadata.finalizers ?? [];
    if (!current || !finalizers.includes(FINALIZER_CONTAINER)) return;
    await client.patch('ActualLRP', refOf(current), {
      metadata: { finalizers: finalizers.filter((f) => f !== FINALIZER_CONTAINER) },
    });
  }).catch((err: unknown) => {
    if (!isNotFound(err)) throw err;
  });
}

/** Options of the evacuation calls. */
export interface EvacuateOptions {
  /**
   * The caller holds no container finalizer of its own (a Diego rep through the BBS facade): a copy removed
   * because its container is to stop has the finalizer released at once, as nobody else would.
   */
  releaseRemoved?: boolean;
  /** Status fields to refresh on this container's EVACUATING copy while it is kept (a rep's heartbeat). */
  copyStatus?: Record<string, unknown>;
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
    if (!ordinary) return false;
    if (ordinary.metadata.deletionTimestamp) return true;
    if (ordinary.status?.state === 'CLAIMED' || ordinary.status?.state === 'RUNNING') await unclaim(client, ordinary);
    return true;
  });
}

/**
 * One conflict-retried attempt of an evacuation call: removes this container's EVACUATING or SUSPECT copy
 * (resolving `copyRemoved`), or else hands `onOrdinary` the ORDINARY record when it is this container's
 * (undefined when it is not, or is gone).
 */
async function removeCopyElse<T>(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  release: boolean,
  copyRemoved: T,
  onOrdinary: (ordinary: IActualLRP | undefined) => Promise<T>,
): Promise<T> {
  return retryOnConflict(async () => {
    if (await removeCopies(client, namespace, ordinaryName, me, release)) return copyRemoved;
    const ordinary = await getOrUndefined(client, namespace, ordinaryName);
    return onOrdinary(isMine(ordinary, me) ? ordinary : undefined);
  });
}

/**
 * Removes this container's EVACUATING or SUSPECT copy of the index, if it has one (Diego's
 * removeEvacuatingOrSuspect). `release`: drop the container finalizer too (the container is gone or going).
 */
async function removeCopies(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
  release: boolean,
): Promise<boolean> {
  const [copy, suspect] = await Promise.all([
    getOrUndefined(client, namespace, evacuatingName(ordinaryName)),
    getOrUndefined(client, namespace, suspectName(ordinaryName)),
  ]);
  if (isMine(copy, me) && copy.status?.presence === 'EVACUATING') {
    await removeEvacuating(client, copy, release);
    return true;
  }
  if (isMine(suspect, me) && suspect.status?.presence === 'SUSPECT') {
    await client.delete('ActualLRP', refOf(suspect)); // not found counts as deleted
    if (release) await releaseContainer(client, suspect);
    return true;
  }
  return false;
}

/** What became of a record after an evacuation call that ends its container. */
export type EndedOutcome = 'not-found' | 'copy-removed' | 'removed' | 'crashed' | 'cannot-crash';

/** Diego truncates crash reasons to 1024 characters. */
const CRASH_REASON_MAX = 1024;

/**
 * The status write of a crash (Diego's CrashActualLRP): CRASHED with Diego's crash count, off its cell. The
 * converger then applies the restart policy. Shared by the BBS CrashActualLRP and EvacuateCrashedActualLRP.
 */
export function crashedStatus(a: IActualLRP, reason: string, now = Date.now()): Record<string, unknown> {
  const runningSince = a.status?.state === 'RUNNING' && a.status.since ? Date.parse(a.status.since) : undefined;
  return {
    state: 'CRASHED',
    crashCount: nextCrashCount(a.status?.crashCount ?? 0, runningSince, now),
    crashReason: reason.slice(0, CRASH_REASON_MAX),
    since: new Date(now).toISOString(),
    instanceGuid: null,
    cellId: null,
    netInfo: null,
  };
}

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
): Promise<EndedOutcome> {
  return removeCopyElse<EndedOutcome>(client, namespace, ordinaryName, me, true, 'copy-removed', async (ordinary) => {
    if (!ordinary) return 'not-found';
    const state = ordinary.status?.state;
    if (state !== 'CLAIMED' && state !== 'RUNNING') return 'cannot-crash';
    await client.patchStatus('ActualLRP', refOf(ordinary), crashedStatus(ordinary, reason));
    return 'crashed';
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
    if (!ordinary) return 'not-found';
    if (!ordinary.metadata.deletionTimestamp) await client.delete('ActualLRP', refOf(ordinary));
    await releaseContainer(client, ordinary);
    return 'removed';
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
  return retryOnConflict(async () => {
    const [ordinary, copy] = await Promise.all([
      getOrUndefined(client, namespace, ordinaryName),
      getOrUndefined(client, namespace, evacuatingName(ordinaryName)),
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
      const running = instances.filter((a) => a.status?.presence === 'ORDINARY' && a.status.state === 'RUNNING');
      allRunning = running.length >= (desired.spec.instances ?? 1);
    }
    const d = decideRunning(desired ? ordinary : undefined, copy, me, strategy, allRunning);
    if (d.removeCopy && copy) await removeEvacuating(client, copy, opts.releaseRemoved ?? false);
    if (d.evacuate && ordinary) {
      await ensureCopy(client, ordinary, me);
      await unclaim(client, ordinary);
    }
    if (d.unclaim && ordinary) await unclaim(client, ordinary);
    // A kept copy takes the cell's latest net info, routability and tags (Diego updates the EVACUATING row).
    const keptCopy = d.keepContainer && !d.evacuate && isMine(copy, me) && !copy.metadata.deletionTimestamp;
    if (keptCopy && opts.copyStatus) await client.patchStatus('ActualLRP', refOf(copy), opts.copyStatus);
    return d.keepContainer;
  });
}

/** Writes the Cell's status.evacuating (the auction leaves evacuating cells out). */
export async function setCellEvacuating(client: DiegoClient, cellName: string, evacuating: boolean): Promise<void> {
  await client.patchStatus('Cell', { name: cellName }, { evacuating }); // no resourceVersion: never a conflict
}
