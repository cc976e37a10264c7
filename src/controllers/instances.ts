// Diego's CreateUnclaimedActualLRP on our CRs: the ORDINARY record of one index of a DesiredLRP, created UNCLAIMED.
// Shared by the converger (missing instances) and the BBS facade's DesireLRP, which creates the instances
// before it answers as Diego's does (docs/adr/0002: names, labels, owner reference, finalizer).
import { API_VERSION } from '../crds/kinds.ts';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { DiegoClient, isAlreadyExists, refOf } from '../lib/resources.ts';
import { actualLRPName, FINALIZER_CONTAINER, instanceLabels } from './names.ts';

/** Instances of one DesiredLRP created this many at a time (the converger's and the facade's bound). */
export const CREATE_CONCURRENCY = 16;

/** The object created for index `index` of `d` (without status: the status subresource ignores it on create). */
export function unclaimedActualLRP(d: IDesiredLRP, index: number): IActualLRP {
  const desiredName = d.metadata.name ?? '';
  return {
    apiVersion: API_VERSION,
    kind: 'ActualLRP',
    metadata: {
      name: actualLRPName(desiredName, index),
      namespace: d.metadata.namespace,
      labels: instanceLabels(d.metadata.uid ?? '', index, d.spec.processGuid),
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
    spec: { processGuid: d.spec.processGuid, index, domain: d.spec.domain },
  };
}

/** The first status of a new instance, written right after the create. */
export function unclaimedStatus(now: number) {
  return { state: 'UNCLAIMED', presence: 'ORDINARY', since: new Date(now).toISOString(), crashCount: 0 } as const;
}

/**
 * Creates index `index` of `d` UNCLAIMED: two writes, the object and then its status (a compare-and-swap on the
 * version just created, so it never overwrites a status someone else wrote since). Resolves false when the index
 * already exists (another writer, or an older cache): that writer finishes it. A record left without status (a
 * failed second write) is finished by the converger.
 */
export async function createUnclaimedActualLRP(
  client: DiegoClient,
  d: IDesiredLRP,
  index: number,
  now: number = Date.now(),
): Promise<boolean> {
  let created: IActualLRP;
  try {
    created = await client.create('ActualLRP', unclaimedActualLRP(d, index));
  } catch (err) {
    if (isAlreadyExists(err)) return false;
    throw err;
  }
  await client.patchStatus('ActualLRP', refOf(created), unclaimedStatus(now));
  return true;
}
