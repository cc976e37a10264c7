// removeEvacuating against a real API server: the compare-and-swap that keeps one cell from removing the
// EVACUATING copy another cell's evacuation has put under the same name.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IActualLRP } from '../crds/models.ts';
import { DiegoClient } from '../lib/resources.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../../test/support/kube.ts';
import { removeEvacuating } from './evacuation.ts';

const kc = testKubeConfig();
const client = new DiegoClient(kc);
let ns = '';

beforeAll(async () => {
  ns = await createNamespace(kc, 'evac-cas');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

async function copyOn(cellId: string, instanceGuid: string): Promise<IActualLRP> {
  const created = await client.create('ActualLRP', {
    metadata: { name: 'app-0-evacuating', namespace: ns },
    spec: { processGuid: 'app-guid', index: 0, domain: 'cf-apps', cellId },
  });
  return client.patchStatus(
    'ActualLRP',
    { namespace: ns, name: 'app-0-evacuating' },
    {
      state: 'RUNNING',
      presence: 'EVACUATING',
      cellId,
      instanceGuid,
      since: created.metadata.creationTimestamp,
    },
  );
}

describe('removeEvacuating', () => {
  it("removes its own copy, and leaves another cell's copy that took the name since it was read", async () => {
    const stale = await copyOn('cell-a', 'ig-a');
    await client.delete('ActualLRP', { namespace: ns, name: 'app-0-evacuating' });
    await copyOn('cell-b', 'ig-b');

    await removeEvacuating(client, stale, true);
    const kept = await client.get('ActualLRP', ns, 'app-0-evacuating');
    expect(kept.status?.cellId).toBe('cell-b');
    expect(kept.metadata.deletionTimestamp).toBeUndefined();

    await removeEvacuating(client, kept, true);
    await expect(client.get('ActualLRP', ns, 'app-0-evacuating')).rejects.toThrow();
  });
});
