// Builders of the objects kubectl diego reads, for its unit tests.
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import type { Lease } from '../lib/lease.ts';
import { LABEL_CELL_PRESENCE } from '../lifecycle/names.ts';

export const NOW = Date.parse('2026-12-06T10:00:00Z');
export const ago = (s: number): string => new Date(NOW - s * 1000).toISOString();

export function cell(cellId: string, o: Partial<ICell['spec']> = {}, status: ICell['status'] = undefined): ICell {
  return {
    apiVersion: 'diego.dev/v1alpha1',
    kind: 'Cell',
    metadata: { name: cellId, creationTimestamp: ago(3600) },
    spec: {
      cellId,
      zone: 'z1',
      capacity: { memoryMb: 1024, diskMb: 2048, containers: 10 },
      rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }],
      ...o,
    },
    ...(status ? { status } : {}),
  };
}

export function presence(cellId: string, renewedSecondsAgo: number, ttl = 15): Lease {
  return {
    metadata: { name: cellId, labels: { [LABEL_CELL_PRESENCE]: 'true' } },
    spec: { holderIdentity: cellId, leaseDurationSeconds: ttl, renewTime: ago(renewedSecondsAgo) },
  };
}

export function desired(name: string, o: Partial<IDesiredLRP['spec']> = {}, ns = 'apps'): IDesiredLRP {
  return {
    apiVersion: 'diego.dev/v1alpha1',
    kind: 'DesiredLRP',
    metadata: { name, namespace: ns, uid: `uid-${name}`, creationTimestamp: ago(120) },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      rootFs: 'preloaded:cflinuxfs4',
      instances: 2,
      memoryMb: 256,
      diskMb: 512,
      action: { run: { path: '/bin/true', user: 'vcap' } },
      ...o,
    },
  };
}

export function actual(
  d: IDesiredLRP,
  index: number,
  cellId: string | undefined,
  status: IActualLRP['status'] = {},
  name = `${d.metadata.name}-${index}`,
): IActualLRP {
  return {
    apiVersion: 'diego.dev/v1alpha1',
    kind: 'ActualLRP',
    metadata: {
      name,
      namespace: d.metadata.namespace,
      ownerReferences: [
        { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', name: d.metadata.name!, uid: d.metadata.uid! },
      ],
    },
    spec: { processGuid: d.spec.processGuid, index, domain: d.spec.domain, ...(cellId ? { cellId } : {}) },
    status,
  };
}

export function task(name: string, o: Partial<ITask['spec']> = {}, status: ITask['status'] = {}, ns = 'apps'): ITask {
  return {
    apiVersion: 'diego.dev/v1alpha1',
    kind: 'Task',
    metadata: { name, namespace: ns, creationTimestamp: ago(30) },
    spec: {
      taskGuid: `${name}-guid`,
      domain: 'cf-tasks',
      rootFs: 'preloaded:cflinuxfs4',
      memoryMb: 128,
      diskMb: 128,
      action: { run: { path: '/bin/true', user: 'vcap' } },
      ...o,
    },
    status,
  };
}
