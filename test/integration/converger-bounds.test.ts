// The converger's bounded write path (docs/adr/0003-bounded-converger-writes.md) against a real API server: a
// scale-down during a large scale-up stops the creation within one wave, orphans are removed in bounded batches, and
// an idle controller writes nothing however many convergence passes run.
import { afterEach, describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { CREATE_WAVE, ORPHANS_PER_PASS, REMOVE_CONCURRENCY } from '../../src/controllers/converge-plan.ts';
import { Converger } from '../../src/controllers/converger.ts';
import { newActualLRP } from '../../src/lifecycle/actual-lrp.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { pool } from '../../src/lib/pool.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { testKubeConfig } from '../support/kube.ts';

// The controller's own kubeconfig, so that every request it makes (its DiegoClient, Events, anything else) is counted.
const managerKc = testKubeConfig();
const requests: string[] = [];
const applyToHTTPSOptions = managerKc.applyToHTTPSOptions.bind(managerKc);
managerKc.applyToHTTPSOptions = async (opts) => {
  requests.push(opts.method ?? 'GET');
  return applyToHTTPSOptions(opts);
};
const WRITE_VERBS = new Set(['POST', 'PUT', 'PATCH', 'DELETE']);

const env = useDiego('conv-bounds', { kc: managerKc, convergeIntervalMs: 1000 });
const { client } = env;

/** Is this DiegoClient the controller's (not the test's, nor a simulated cell's)? */
const isController = (c: DiegoClient) => c !== client && !env.cells.some((cell) => cell.client === c);

type Write = 'create' | 'patch' | 'patchStatus' | 'delete';
type Method = (this: DiegoClient, ...args: unknown[]) => Promise<unknown>;
const restore: (() => void)[] = [];
/** Wraps a DiegoClient write method of every client (the test's own and the cells' included) until the test ends. */
function intercept(method: Write, wrap: (original: Method) => Method): void {
  const proto = DiegoClient.prototype as unknown as Record<Write, Method>;
  const original = proto[method];
  proto[method] = wrap(original);
  restore.push(() => (proto[method] = original));
}
afterEach(() => {
  for (const r of restore.splice(0)) r();
});

let seq = 0;
function desire(instances: number, memoryMb = 16, name = `app-${++seq}`): Promise<IDesiredLRP> {
  return client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      memoryMb,
      diskMb: 16,
      instances,
      action: { run: { path: '/bin/app', user: 'root' } },
    },
  });
}

const instancesOf = (d: IDesiredLRP): Promise<IActualLRP[]> =>
  client.list('ActualLRP', { namespace: env.ns, labelSelector: `diego.dev/desired-lrp-uid=${d.metadata.uid}` });

describe('converger: bounded writes', () => {
  it('stops creating a large scale-up within one wave when the LRP is scaled down meanwhile, and converges', async () => {
    // The controller's creates are held after the first 20 until its cache has seen the scale-down: the test does
    // not race the machine's speed.
    let creates = 0;
    let release!: () => void;
    const gate = new Promise<void>((r) => (release = r));
    intercept(
      'create',
      (original) =>
        async function (...args) {
          if (isController(this) && args[0] === 'ActualLRP' && ++creates > 20) await gate;
          return original.apply(this, args);
        },
    );
    const d = await desire(400);
    await eventually(() => expect(creates).toBeGreaterThan(20), 30_000);
    await client.patch('DesiredLRP', { namespace: env.ns, name: d.metadata.name! }, { spec: { instances: 5 } });
    await eventually(() =>
      expect(env.manager.controllers?.cache.desired.get(env.ns, d.metadata.name!)?.spec.instances).toBe(5),
    );
    const heldAtScaleDown = creates;
    release();
    const five = await eventually(async () => {
      const all = await instancesOf(d);
      expect(all.map((a) => a.spec.index).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4]);
      return all;
    }, 60_000);
    expect(five).toHaveLength(5);
    // At most the rest of the wave under way when the scale-down was seen (never the 400).
    expect(creates).toBeLessThanOrEqual(Math.max(heldAtScaleDown, CREATE_WAVE));
    expect(creates).toBeLessThan(400);
  }, 180_000);

  it('removes many orphans in bounded batches, with a bounded number of writes in flight, until none is left', async () => {
    // Orphans: records of a DesiredLRP that does not exist, without owner (so only the periodic pass removes them, not
    // the garbage collector), with the container finalizer (two writes each: delete, then release).
    const ghost = {
      metadata: { name: 'ghost', namespace: env.ns, uid: '00000000-0000-0000-0000-00000000dead' },
      spec: { processGuid: 'ghost-guid', domain: 'cf-apps', instances: 600 },
    } as unknown as IDesiredLRP;
    let inFlight = 0;
    let most = 0;
    let removals = 0;
    for (const method of ['delete', 'patch'] as const)
      intercept(
        method,
        (original) =>
          async function (...args) {
            if (!isController(this) || args[0] !== 'ActualLRP') return original.apply(this, args);
            removals++;
            most = Math.max(most, ++inFlight);
            try {
              return await original.apply(this, args);
            } finally {
              inFlight--;
            }
          },
      );
    // The batches the periodic passes start (the converger's private step, observed through its prototype).
    const batches: number[] = [];
    const proto = Converger.prototype as unknown as Record<'removeOrphans', (batch: IActualLRP[]) => Promise<void>>;
    const removeOrphans = proto.removeOrphans;
    proto.removeOrphans = function (this: Converger, batch: IActualLRP[]) {
      batches.push(batch.length);
      return removeOrphans.call(this, batch);
    };
    restore.push(() => (proto.removeOrphans = removeOrphans));
    const orphans = Array.from({ length: 600 }, (_, i) => {
      const a = newActualLRP(ghost, i);
      delete a.metadata.ownerReferences;
      return a;
    });
    await pool(
      orphans.map((a) => async () => void (await client.create('ActualLRP', a))),
      16,
    );
    await eventually(
      async () =>
        expect(
          await client.list('ActualLRP', {
            namespace: env.ns,
            labelSelector: `diego.dev/desired-lrp-uid=${ghost.metadata.uid}`,
          }),
        ).toHaveLength(0),
      120_000,
      500,
    );
    expect(removals).toBeGreaterThanOrEqual(600);
    expect(most).toBeLessThanOrEqual(REMOVE_CONCURRENCY);
    // 600 deletes and 600 finalizer releases, never more than a batch per pass.
    expect(Math.max(...batches)).toBeLessThanOrEqual(ORPHANS_PER_PASS);
    expect(batches.reduce((x, y) => x + y, 0)).toBeGreaterThanOrEqual(1200);
  }, 180_000);

  it('writes nothing at idle: once settled, convergence passes make no write request', async () => {
    await env.startCells(2);
    const apps = await Promise.all([desire(20), desire(15), desire(1), desire(0)]);
    // And one that fits no cell: its placement failure is written once, not again on every pass.
    const unplaceable = await desire(2, 1_000_000);
    await eventually(async () => {
      const failed = await instancesOf(unplaceable);
      expect(failed.filter((a) => a.status?.placementError)).toHaveLength(2);
      for (const d of apps) {
        const got = await client.get('DesiredLRP', env.ns, d.metadata.name!);
        expect(got.status?.runningInstances).toBe(d.spec.instances);
        expect(got.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
      }
    }, 60_000);
    // Settled: the last status writes (coalesced) and their events have come back.
    await new Promise((r) => setTimeout(r, 3000));
    const detail: string[] = [];
    for (const method of ['create', 'patch', 'patchStatus', 'delete'] as const)
      intercept(
        method,
        (original) =>
          function (...args) {
            if (isController(this))
              detail.push(`${method} ${String(args[0])} ${JSON.stringify(args.slice(1)).slice(0, 300)}`);
            return original.apply(this, args);
          },
      );
    const from = requests.length;
    // ~20 passes of the 1 s interval, each a full convergence of every LRP and instance.
    await new Promise((r) => setTimeout(r, 20_000));
    // The count sees the controller's writes (it made them all to get here).
    expect(requests.slice(0, from).filter((m) => WRITE_VERBS.has(m)).length).toBeGreaterThan(36);
    const writes = requests.slice(from).filter((m) => WRITE_VERBS.has(m));
    expect({ writes: writes.length, detail }).toEqual({ writes: 0, detail: [] });
  }, 120_000);
});
