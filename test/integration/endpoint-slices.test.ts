// Kubernetes-native routing on a real API server: the controllers keep a headless Service and EndpointSlices for each
// routed DesiredLRP in step with its instances (simulated cells), as kube-proxy, Ingress controllers and Gateway API
// implementations read them; the garbage collector removes them with the DesiredLRP.
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { metrics } from '../../src/controllers/metrics.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('eps', { convergeIntervalMs: 1000, endpointSlices: true });
const { client } = env;

interface Slice {
  metadata: {
    name: string;
    uid: string;
    resourceVersion: string;
    labels: Record<string, string>;
    ownerReferences?: { kind: string; name: string }[];
  };
  ports: { name: string; port: number }[];
  endpoints: { addresses: string[]; conditions: { ready: boolean; serving: boolean; terminating: boolean } }[];
}
interface Service {
  metadata: { name: string; uid: string; resourceVersion: string; ownerReferences?: { kind: string; name: string }[] };
  spec: { clusterIP: string; ports: { name: string; port: number }[] };
}

const desire = (
  name: string,
  instances: number,
  routes: unknown = { 'cf-router': [{ hostnames: [`${name}.example.test`], port: 8080 }] },
) =>
  client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: name,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      instances,
      memoryMb: 32,
      ports: [8080],
      routes: routes as Record<string, unknown>,
      action: { run: { path: '/bin/app', user: 'root' } },
    },
  });

const slices = async (service: string) =>
  (
    await rawRequest<{ items: Slice[] }>(env.kc, {
      method: 'GET',
      path: `/apis/discovery.k8s.io/v1/namespaces/${env.ns}/endpointslices?labelSelector=${encodeURIComponent(`kubernetes.io/service-name=${service}`)}`,
    })
  ).items;
const service = (name: string) =>
  rawRequest<Service>(env.kc, { method: 'GET', path: `/api/v1/namespaces/${env.ns}/services/${name}` });
const endpoints = async (name: string) => (await slices(name)).flatMap((s) => s.endpoints);
/** The controller's writes (applies and deletes) of Services and EndpointSlices so far, in this process. */
const writes = async () => (await metrics.endpointWrites.get()).values.reduce((n, v) => n + v.value, 0);
/** name → resourceVersion of a Service and its slices: any write to them changes it. */
const versions = async (name: string) =>
  Object.fromEntries(
    [await service(name), ...(await slices(name))].map((o) => [o.metadata.name, o.metadata.resourceVersion]),
  );
const running = async (name: string): Promise<IActualLRP[]> =>
  (await client.list('ActualLRP', { namespace: env.ns })).filter(
    (a) => a.spec.processGuid === name && a.status?.state === 'RUNNING',
  );

describe('EndpointSlices for routed DesiredLRPs', () => {
  it('lists the running instances under a headless Service owned by the DesiredLRP, following scale and readiness', async () => {
    await env.startCells(1, () => ({ address: '10.250.0.2' }));
    await desire('web', 3);
    await eventually(async () => {
      expect(await running('web')).toHaveLength(3);
      const eps = await endpoints('web');
      expect(eps).toHaveLength(3);
      for (const e of eps) expect(e.conditions).toEqual({ ready: true, serving: true, terminating: false });
    }, 30_000);
    const svc = await service('web');
    expect(svc.spec.clusterIP).toBe('None');
    expect(svc.spec.ports).toEqual([expect.objectContaining({ name: 'port-8080', port: 8080 })]);
    expect(svc.metadata.ownerReferences).toEqual([expect.objectContaining({ kind: 'DesiredLRP', name: 'web' })]);
    const [slice] = await slices('web');
    expect(slice!.ports).toEqual([expect.objectContaining({ name: 'port-8080', port: 61000 })]);
    expect(slice!.metadata.labels['endpointslice.kubernetes.io/managed-by']).toBe('endpoint-slices.diego.dev');

    // A readiness check failing (the cell reports routable: false) takes the instance out of ready.
    const [first] = await running('web');
    await client.patchStatus('ActualLRP', { namespace: env.ns, name: first!.metadata.name! }, { routable: false });
    await eventually(async () => {
      const eps = await endpoints('web');
      expect(eps.filter((e) => !e.conditions.ready)).toHaveLength(1);
    }, 30_000);

    await client.patch('DesiredLRP', { namespace: env.ns, name: 'web' }, { spec: { instances: 1 } });
    await eventually(async () => expect(await endpoints('web')).toHaveLength(1), 30_000);
  });

  it(
    'removes its Service and slices when the routes go, and the garbage collector when the DesiredLRP goes',
    { timeout: 240_000 },
    async () => {
      await env.startCells(1, () => ({ address: '10.250.0.2' }));
      await desire('api', 1);
      await eventually(async () => expect(await endpoints('api')).toHaveLength(1), 30_000);
      await client.patch('DesiredLRP', { namespace: env.ns, name: 'api' }, { spec: { routes: null } });
      await eventually(async () => {
        expect(await slices('api')).toEqual([]);
        await expect(service('api')).rejects.toThrow(/404/);
      }, 30_000);
      // Opted in by annotation, then deleted: the garbage collector follows the owner references.
      await client.patch(
        'DesiredLRP',
        { namespace: env.ns, name: 'api' },
        {
          metadata: { annotations: { 'diego.dev/endpoints': 'true' } },
        },
      );
      await eventually(async () => expect(await endpoints('api')).toHaveLength(1), 30_000);
      await client.delete('DesiredLRP', { namespace: env.ns, name: 'api' });
      await eventually(async () => {
        expect(await slices('api')).toEqual([]);
        await expect(service('api')).rejects.toThrow(/404/);
      }, 150_000);
    },
  );

  it('leaves a Service that is not its own alone and says so on the DesiredLRP', async () => {
    await rawRequest(env.kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${env.ns}/services`,
      body: { metadata: { name: 'taken' }, spec: { ports: [{ port: 80 }] } },
    });
    await env.startCells(1, () => ({ address: '10.250.0.2' }));
    await desire('taken', 1);
    await eventually(async () => {
      const { items } = await rawRequest<{ items: { reason: string; message: string }[] }>(env.kc, {
        method: 'GET',
        path: `/api/v1/namespaces/${env.ns}/events?fieldSelector=involvedObject.name=taken`,
      });
      expect(items.find((e) => e.reason === 'ServiceNameTaken')?.message).toContain('a Service named taken exists');
    }, 30_000);
    const svc = await service('taken');
    expect(svc.metadata.ownerReferences).toBeUndefined();
    expect(svc.spec.ports).toEqual([expect.objectContaining({ port: 80 })]);
    expect(await slices('taken')).toEqual([]);
  });

  it(
    'writes nothing while the endpoints stay as they are, and puts back a slice or Service deleted or edited by hand',
    { timeout: 240_000 },
    async () => {
      await env.startCells(1, () => ({ address: '10.250.0.2' }));
      await desire('steady', 2);
      await eventually(async () => {
        const eps = await endpoints('steady');
        expect(eps).toHaveLength(2);
        for (const e of eps) expect(e.conditions.ready).toBe(true);
        await service('steady');
      }, 60_000);
      // Settled: its last writes came back through its informers and found nothing more to do.
      await eventually(
        async () => {
          const before = await writes();
          await sleep(3_000);
          expect(await writes()).toBe(before);
        },
        90_000,
        0,
      );
      const settled = await versions('steady');
      expect(Object.keys(settled).length).toBeGreaterThanOrEqual(2); // the Service and its slices
      const writesBefore = await writes();

      // Instance changes that leave the endpoints as they are: each reconciles the DesiredLRP, none writes.
      const instances = await running('steady');
      for (const [i, a] of instances.entries())
        await client.patchStatus(
          'ActualLRP',
          { namespace: env.ns, name: a.metadata.name! },
          { metricTags: { probe: String(i) } },
        );
      // The controller has seen them (its cache holds them), and has had ample time to act on them.
      await eventually(() => {
        for (const a of instances) {
          const cached = env.manager.controllers!.cache.actual.get(env.ns, a.metadata.name!);
          expect(cached?.status?.metricTags?.probe).toBeDefined();
        }
      }, 60_000);
      await sleep(5_000);
      expect(await writes()).toBe(writesBefore);
      expect(await versions('steady')).toEqual(settled);

      // An endpoint change does write (what the count above would have seen).
      await client.patchStatus(
        'ActualLRP',
        { namespace: env.ns, name: instances[0]!.metadata.name! },
        { routable: false },
      );
      await eventually(async () => {
        expect((await endpoints('steady')).filter((e) => !e.conditions.ready)).toHaveLength(1);
      }, 60_000);
      expect(await writes()).toBeGreaterThan(writesBefore);

      // A slice deleted by hand comes back (a new object of the same name).
      const [gone] = await slices('steady');
      const slicesPath = `/apis/discovery.k8s.io/v1/namespaces/${env.ns}/endpointslices`;
      await rawRequest(env.kc, { method: 'DELETE', path: `${slicesPath}/${gone!.metadata.name}` });
      await eventually(async () => {
        const back = (await slices('steady')).find((x) => x.metadata.name === gone!.metadata.name);
        expect(back?.metadata.uid).toBeDefined();
        expect(back!.metadata.uid).not.toBe(gone!.metadata.uid);
        expect(back!.endpoints).toEqual(gone!.endpoints);
      }, 60_000);

      // Its endpoints edited by hand are put back.
      const [edited] = await slices('steady');
      const bogus = await rawRequest<Slice>(env.kc, {
        method: 'PATCH',
        path: `${slicesPath}/${edited!.metadata.name}`,
        contentType: 'application/merge-patch+json',
        body: { endpoints: [{ addresses: ['10.250.0.99'], conditions: { ready: false } }] },
      });
      expect(bogus.endpoints[0]!.addresses).toEqual(['10.250.0.99']);
      await eventually(async () => {
        const now = (await slices('steady')).find((x) => x.metadata.name === edited!.metadata.name);
        expect(now?.endpoints).toEqual(edited!.endpoints);
      }, 60_000);

      // So is the Service.
      const svc = await service('steady');
      await rawRequest(env.kc, { method: 'DELETE', path: `/api/v1/namespaces/${env.ns}/services/steady` });
      await eventually(async () => {
        const back = await service('steady');
        expect(back.metadata.uid).not.toBe(svc.metadata.uid);
        expect(back.spec).toMatchObject({ clusterIP: 'None', ports: svc.spec.ports });
      }, 60_000);
    },
  );
});
