import { describe, expect, it } from 'vitest';
import type { IDesiredLRP } from '../crds/models.ts';
import { unclaimedActualLRP, unclaimedStatus } from './instances.ts';

const desired = {
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'DesiredLRP',
  metadata: { name: 'web', namespace: 'apps', uid: 'uid-1' },
  spec: { processGuid: 'web-guid', domain: 'cf-apps', instances: 3 },
} as unknown as IDesiredLRP;

describe('the initial ActualLRP of an index', () => {
  it('is named by index, labelled, owned by its DesiredLRP and held by the container finalizer', () => {
    expect(unclaimedActualLRP(desired, 2)).toEqual({
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'ActualLRP',
      metadata: {
        name: 'web-2',
        namespace: 'apps',
        labels: { 'diego.dev/desired-lrp-uid': 'uid-1', 'diego.dev/index': '2', 'diego.dev/process-guid': 'web-guid' },
        finalizers: ['diego.dev/container'],
        ownerReferences: [
          {
            apiVersion: 'diego.dev/v1alpha1',
            kind: 'DesiredLRP',
            name: 'web',
            uid: 'uid-1',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { processGuid: 'web-guid', index: 2, domain: 'cf-apps' },
    });
  });

  it('starts UNCLAIMED and ORDINARY with no crashes', () => {
    expect(unclaimedStatus(Date.UTC(2026, 0, 2, 3, 4, 5))).toEqual({
      state: 'UNCLAIMED',
      presence: 'ORDINARY',
      since: '2026-01-02T03:04:05.000Z',
      crashCount: 0,
    });
  });
});
