import { describe, expect, it } from 'vitest';
import { CREATE_CONCURRENCY } from '../lifecycle/ops.ts';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { KubeError } from '../lib/kube.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { createInstances, MAX_INSTANCES_PER_CALL } from './desire.ts';
import type { Ctx } from './route.ts';

const desired = {
  apiVersion: 'diego.dev/v1alpha1',
  kind: 'DesiredLRP',
  metadata: { name: 'web', namespace: 'apps', uid: 'uid-1' },
  spec: { processGuid: 'web', domain: 'cf-apps' },
} as unknown as IDesiredLRP;

/** A client whose create and status writes take a tick, answering per instance name. */
function fakeClient(answer: (name: string, write: 'create' | 'status') => KubeError | undefined = () => undefined) {
  const w = { created: [] as string[], statuses: [] as string[], inFlight: 0, maxInFlight: 0 };
  const write = async (name: string, kind: 'create' | 'status') => {
    w.inFlight++;
    w.maxInFlight = Math.max(w.maxInFlight, w.inFlight);
    await new Promise((r) => setImmediate(r));
    w.inFlight--;
    const err = answer(name, kind);
    if (err) throw err;
    (kind === 'create' ? w.created : w.statuses).push(name);
  };
  const client = {
    create: async (_kind: string, obj: IActualLRP) => {
      await write(obj.metadata.name!, 'create');
      return { ...obj, metadata: { ...obj.metadata, resourceVersion: '1' } };
    },
    patchStatus: async (_kind: string, ref: { name: string }) => write(ref.name, 'status'),
  } as unknown as DiegoClient;
  return { ctx: { client, namespace: 'apps', systemNamespace: 'sys' } satisfies Ctx, w };
}

const alreadyExists = new KubeError(409, { reason: 'AlreadyExists' }, 'create');
const conflict = new KubeError(409, { reason: 'Conflict' }, 'patch');

describe('createInstances (DesireLRP creates the instances before it answers)', () => {
  it('creates each index of the range UNCLAIMED in one write (no status), a bounded number at a time', async () => {
    const { ctx, w } = fakeClient();
    expect(await createInstances(ctx, desired, 0, 100)).toBe(0);
    expect(w.created.sort()).toEqual(Array.from({ length: 100 }, (_, i) => `web-${i}`).sort());
    expect(w.statuses).toHaveLength(0);
    expect(w.maxInFlight).toBe(CREATE_CONCURRENCY);
  });

  it('creates a scale-up range only, and nothing for an empty one', async () => {
    const { ctx, w } = fakeClient();
    await createInstances(ctx, desired, 3, 5);
    expect(w.created.sort()).toEqual(['web-3', 'web-4']);
    await createInstances(ctx, desired, 5, 5);
    await createInstances(ctx, desired, 5, 2);
    expect(w.created).toHaveLength(2);
  });

  it('leaves indices past the per-call cap to the converger', async () => {
    const { ctx, w } = fakeClient();
    await createInstances(ctx, desired, 0, MAX_INSTANCES_PER_CALL + 500);
    expect(w.created).toHaveLength(MAX_INSTANCES_PER_CALL);
    expect(w.created).not.toContain(`web-${MAX_INSTANCES_PER_CALL}`);
  });

  it('never fails: an existing index is someone else’s, and failures are counted for the converger', async () => {
    const { ctx, w } = fakeClient((name, write) => {
      if (name === 'web-0' && write === 'create') return alreadyExists; // the converger was first
      if (name === 'web-1' && write === 'create') return conflict;
      if (name === 'web-2') return new KubeError(500, { message: 'etcd timeout' }, 'create');
      return undefined;
    });
    expect(await createInstances(ctx, desired, 0, 4)).toBe(1);
    expect(w.created.sort()).toEqual(['web-3']);
    expect(w.statuses).toEqual([]);
  });
});
