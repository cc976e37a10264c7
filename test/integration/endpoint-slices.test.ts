// Kubernetes-native routing on a real API server: the controllers keep a headless Service and EndpointSlices for each
// routed DesiredLRP in step with its instances (simulated cells), as kube-proxy, Ingress controllers and Gateway API
// implementations read them; the garbage collector removes them with the DesiredLRP.
import { describe, expect, it } from 'vitest';
import type { IActualLRP } from '../../src/crds/models.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('eps', { convergeIntervalMs: 1000, endpointSlices: true });
const { client } = env;

interface Slice {
  metadata: { name: string; labels: Record<string, string>; ownerReferences?: { kind: string; name: string }[] };
  ports: { name: string; port: number }[];
  endpoints: { addresses: string[]; conditions: { ready: boolean; serving: boolean; terminating: boolean } }[];
}
interface Service {
  metadata: { name: string; ownerReferences?: { kind: string; name: string }[] };
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
});
