// A cell's registration: its Cell object and its presence Lease (Diego's Locket presence), as written by the
// rep (and by the simulated cells of the tests, so both speak the same protocol).
import type { KubeConfig } from '@kubernetes/client-node';
import { LABEL_CELL_PRESENCE } from '../controllers/names.ts';
import type { CellSpec } from '../crds/cell.ts';
import { GROUP, VERSION } from '../crds/kinds.ts';
import { applyAt, rawRequest } from '../lib/kube.ts';
import { leasePath, microTime } from '../lib/lease.ts';
import { isNotFound, resourcePath } from '../lib/resources.ts';

/** Cell and Lease object name for a cell id (cell ids may hold '_' and capitals; object names may not). */
export const cellObjectName = (cellId: string): string => cellId.toLowerCase().replace(/[^a-z0-9.-]/g, '-');

export async function registerCell(kc: KubeConfig, spec: CellSpec): Promise<void> {
  await applyAt(kc, resourcePath('Cell', undefined, cellObjectName(spec.cellId)), {
    apiVersion: `${GROUP}/${VERSION}`,
    kind: 'Cell',
    metadata: { name: cellObjectName(spec.cellId) },
    spec,
  });
}

/** Renews the cell's presence Lease (holder = cell id; labelled so the controller tells cells from other Leases). */
export async function renewPresence(
  kc: KubeConfig,
  namespace: string,
  cellId: string,
  ttlSeconds: number,
): Promise<void> {
  const name = cellObjectName(cellId);
  await applyAt(kc, leasePath(namespace, name), {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, namespace, labels: { [LABEL_CELL_PRESENCE]: 'true' } },
    spec: { holderIdentity: cellId, leaseDurationSeconds: ttlSeconds, renewTime: microTime(new Date()) },
  });
}

/** Gives the presence up at once, so no more work is placed on the cell. */
export async function releasePresence(kc: KubeConfig, namespace: string, cellId: string): Promise<void> {
  await rawRequest(kc, { method: 'DELETE', path: leasePath(namespace, cellObjectName(cellId)) }).catch(
    (err: unknown) => {
      if (!isNotFound(err)) throw err;
    },
  );
}
