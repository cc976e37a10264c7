// Diego's evacuation operations (bbs controllers/evacuation_controller.go) on our CRs: what a draining cell asks
// for each of its containers — unclaim an instance that was still starting, turn a running one into an
// EVACUATING copy while its ORDINARY record is auctioned again, and remove the copy once it is not needed.
// Shared by the cell-agent's evacuator (and the simulated cells of the tests); the BBS facade's Evacuate*
// routes can reuse them. Every write is a compare-and-swap on the version just read (docs/adr/0002).
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { DiegoClient, isAlreadyExists, isConflict, isNotFound, refOf, retryOnConflict } from '../lib/resources.ts';
import { FINALIZER_CONTAINER, placementPatch } from './names.ts';

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
  const name = evacuatingName(from.metadata.name ?? '');
  let copy: IActualLRP;
  try {
    copy = await client.create('ActualLRP', {
      metadata: {
        name,
        namespace: from.metadata.namespace,
        labels: from.metadata.labels,
        finalizers: [FINALIZER_CONTAINER],
        ownerReferences: from.metadata.ownerReferences,
      },
      spec: { ...from.spec, cellId: me.cellId },
    });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    copy = await client.get('ActualLRP', from.metadata.namespace, name);
    if (copy.status?.presence) return;
  }
  await client.patchStatus('ActualLRP', refOf(copy), {
    ...from.status,
    state: 'RUNNING',
    presence: 'EVACUATING',
    instanceGuid: me.instanceGuid,
    cellId: me.cellId,
    conditions: undefined,
  });
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
  await client.delete('ActualLRP', { namespace: copy.metadata.namespace, name: copy.metadata.name ?? '' });
  if (containerStopped) await releaseContainer(client, copy);
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

/**
 * Diego's EvacuateClaimedActualLRP: the container was still starting. Its EVACUATING copy (if the record is
 * one) is removed; an ORDINARY record still claimed by this container goes back to UNCLAIMED and is auctioned
 * again. The caller destroys the container either way.
 */
export async function evacuateClaimed(
  client: DiegoClient,
  namespace: string,
  ordinaryName: string,
  me: InstanceKey,
): Promise<void> {
  await retryOnConflict(async () => {
    const copy = await getOrUndefined(client, namespace, evacuatingName(ordinaryName));
    if (isMine(copy, me)) return removeEvacuating(client, copy, false);
    const ordinary = await getOrUndefined(client, namespace, ordinaryName);
    if (!isMine(ordinary, me) || ordinary.metadata.deletionTimestamp) return;
    if (ordinary.status?.state === 'CLAIMED' || ordinary.status?.state === 'RUNNING') await unclaim(client, ordinary);
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
        labelSelector: `diego.dev/desired-lrp-uid=${desired.metadata.uid}`,
      });
      const running = instances.filter((a) => a.status?.presence === 'ORDINARY' && a.status.state === 'RUNNING');
      allRunning = running.length >= (desired.spec.instances ?? 1);
    }
    const d = decideRunning(desired ? ordinary : undefined, copy, me, strategy, allRunning);
    if (d.removeCopy && copy) await removeEvacuating(client, copy, false);
    if (d.evacuate && ordinary) {
      await ensureCopy(client, ordinary, me);
      await unclaim(client, ordinary);
    }
    if (d.unclaim && ordinary) await unclaim(client, ordinary);
    return d.keepContainer;
  });
}

/** Writes the Cell's status.evacuating (the auction leaves evacuating cells out). */
export async function setCellEvacuating(client: DiegoClient, cellName: string, evacuating: boolean): Promise<void> {
  try {
    await client.patchStatus('Cell', { name: cellName }, { evacuating });
  } catch (err) {
    if (!isConflict(err)) throw err;
    await client.patchStatus('Cell', { name: cellName }, { evacuating });
  }
}
