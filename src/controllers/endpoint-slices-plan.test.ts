import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import {
  covers,
  type Manifest,
  manifests,
  planEndpoints,
  type ServicePort,
  type SliceEndpoint,
  SERVICE_SELECTOR,
  serviceName,
  SLICE_SELECTOR,
  sliceAddress,
  wantsEndpoints,
} from './endpoint-slices-plan.ts';

const desired = (extra: Partial<IDesiredLRP['spec']> = {}, annotations?: Record<string, string>): IDesiredLRP =>
  ({
    metadata: { name: 'web', namespace: 'apps', uid: 'd-uid', ...(annotations ? { annotations } : {}) },
    spec: {
      processGuid: 'web',
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      ports: [8080, 9090],
      routes: { 'cf-router': [{ hostnames: ['app.example.test'], port: 8080 }] },
      action: { run: { path: '/bin/app', user: 'root' } },
      ...extra,
    },
  }) as IDesiredLRP;

const actual = (index: number, status: Partial<NonNullable<IActualLRP['status']>> = {}, name = `web-${index}`) =>
  ({
    metadata: { name, namespace: 'apps', uid: `a-${name}` },
    spec: { processGuid: 'web', index, domain: 'cf-apps' },
    status: {
      state: 'RUNNING',
      instanceGuid: `g-${name}`,
      availabilityZone: 'z1',
      netInfo: {
        address: '10.250.0.2',
        instanceAddress: `10.255.0.${10 + index}`,
        ports: [
          { containerPort: 8080, hostPort: 61000 + index },
          { containerPort: 9090, hostPort: 62000 + index },
        ],
      },
      ...status,
    },
  }) as IActualLRP;

describe('EndpointSlices plan', () => {
  it('wants a Service for DesiredLRPs with routes, or the annotation; not without ports', () => {
    expect(wantsEndpoints(desired())).toBe(true);
    expect(wantsEndpoints(desired({ routes: undefined }))).toBe(false);
    expect(wantsEndpoints(desired({ routes: undefined }, { 'diego.dev/endpoints': 'true' }))).toBe(true);
    expect(wantsEndpoints(desired({}, { 'diego.dev/endpoints': 'false' }))).toBe(false);
    expect(planEndpoints(desired({ ports: [] }), [])).toBeUndefined();
  });

  it('lists each RUNNING instance at its cell address and host ports, one slice per port mapping, with zone hints', () => {
    const plan = planEndpoints(desired(), [actual(0), actual(1), actual(2, { state: 'CLAIMED' })])!;
    expect(plan.service).toBe('web');
    expect(plan.ports).toEqual([
      { name: 'port-8080', port: 8080, protocol: 'TCP' },
      { name: 'port-9090', port: 9090, protocol: 'TCP' },
    ]);
    expect(plan.slices).toHaveLength(2);
    const [s] = plan.slices.filter((x) => x.ports[0]!.port === 61000);
    expect(s).toMatchObject({
      addressType: 'IPv4',
      ports: [
        { name: 'port-8080', port: 61000, protocol: 'TCP' },
        { name: 'port-9090', port: 62000, protocol: 'TCP' },
      ],
      endpoints: [
        {
          addresses: ['10.250.0.2'],
          conditions: { ready: true, serving: true, terminating: false },
          targetRef: { kind: 'ActualLRP', name: 'web-0', namespace: 'apps', uid: 'a-web-0' },
          zone: 'z1',
          hints: { forZones: [{ name: 'z1' }] },
        },
      ],
    });
    // Stable names: the same plan twice names the same slices.
    expect(planEndpoints(desired(), [actual(1), actual(0)])!.slices.map((x) => x.name)).toEqual(
      plan.slices.map((x) => x.name),
    );
  });

  it('groups instances reached at their container address into one slice; readiness and evacuation set conditions', () => {
    const inside = (i: number, status: Partial<NonNullable<IActualLRP['status']>> = {}, name?: string) => {
      const a = actual(i, status, name);
      a.status!.netInfo!.preferredAddress = 'INSTANCE';
      return a;
    };
    const plan = planEndpoints(desired(), [
      inside(0),
      inside(1, { routable: false }),
      inside(2, { presence: 'EVACUATING' }, 'web-2-evacuating'),
    ])!;
    expect(plan.slices).toHaveLength(1);
    expect(plan.slices[0]!.ports.map((p) => p.port)).toEqual([8080, 9090]);
    expect(plan.slices[0]!.endpoints.map((e) => [e.addresses[0], e.conditions])).toEqual([
      ['10.255.0.10', { ready: true, serving: true, terminating: false }],
      ['10.255.0.11', { ready: false, serving: false, terminating: false }],
      ['10.255.0.12', { ready: false, serving: true, terminating: true }],
    ]);
  });

  it('leaves out addresses an EndpointSlice may not hold (loopback, link-local, unspecified)', () => {
    for (const ok of ['10.0.0.1', '192.168.1.5', '2001:db8::1']) expect(sliceAddress(ok), ok).toBe(true);
    for (const bad of ['127.0.0.1', '0.0.0.0', '169.254.1.1', '::1', '::', 'fe80::1'])
      expect(sliceAddress(bad), bad).toBe(false);
    const local = actual(0);
    local.status!.netInfo!.address = '127.0.0.1';
    expect(planEndpoints(desired(), [local, actual(1)])!.slices.flatMap((s) => s.endpoints)).toHaveLength(1);
  });

  it('splits more than 100 endpoints over slices and names a Service validly', () => {
    const many = Array.from({ length: 150 }, (_, i) => {
      const a = actual(i);
      a.status!.netInfo!.preferredAddress = 'INSTANCE';
      return a;
    });
    expect(planEndpoints(desired(), many)!.slices.map((s) => s.endpoints.length)).toEqual([100, 50]);
    expect(serviceName('web')).toBe('web');
    expect(serviceName('Web_App.v2')).toMatch(/^dlrp-[0-9a-f]{16}$/);
    expect(serviceName('a'.repeat(64))).toMatch(/^dlrp-/);
  });
});

type Metadata = Manifest['metadata'] & Record<string, unknown>;
interface ServedSlice {
  metadata: Metadata;
  addressType: string;
  ports: ServicePort[];
  endpoints: Partial<SliceEndpoint>[];
}
interface ServedService {
  metadata: Metadata;
  spec: { clusterIP: string; ports: unknown[] } & Record<string, unknown>;
}

/** An object as the API server returns it: what was applied, plus metadata and defaults it adds. */
function asServed<T extends { metadata: Metadata }>(applied: Manifest, edit: (o: T) => void = () => {}): T {
  const o = structuredClone(applied) as unknown as T;
  Object.assign(o.metadata, {
    uid: 'u-1',
    resourceVersion: '42',
    generation: 3,
    creationTimestamp: '2025-01-01T00:00:00Z',
  });
  o.metadata.labels['added-by-someone'] = 'x';
  edit(o);
  return o;
}

describe('What the controller writes, and when it need not', () => {
  const plan = planEndpoints(desired(), [actual(0), actual(1, { routable: false })])!;
  const want = manifests(desired(), plan);

  it('labels and owns what it applies, so that its informers select exactly these objects', () => {
    const owner = { kind: 'DesiredLRP', name: 'web', uid: 'd-uid', controller: true };
    expect(want.service.metadata).toMatchObject({ name: 'web', namespace: 'apps', ownerReferences: [owner] });
    expect(want.service.spec).toEqual({
      clusterIP: 'None',
      ports: [
        { name: 'port-8080', port: 8080, protocol: 'TCP', targetPort: 8080 },
        { name: 'port-9090', port: 9090, protocol: 'TCP', targetPort: 9090 },
      ],
    });
    const matches = (selector: string, labels: Record<string, string>) =>
      selector.split(',').every((term) => {
        const [k, v] = term.split('=') as [string, string | undefined];
        return v === undefined ? k in labels : labels[k] === v;
      });
    expect(matches(SERVICE_SELECTOR, want.service.metadata.labels)).toBe(true);
    expect(want.slices).toHaveLength(2);
    for (const s of want.slices) {
      expect(s.metadata.ownerReferences).toEqual([expect.objectContaining(owner)]);
      expect(matches(SLICE_SELECTOR, s.metadata.labels)).toBe(true);
    }
    // The chart's own Services (managed-by: Helm) and kube's slices are not ours.
    expect(matches(SERVICE_SELECTOR, { 'app.kubernetes.io/managed-by': 'Helm' })).toBe(false);
    const kubes = { ...want.slices[0]!.metadata.labels };
    kubes['endpointslice.kubernetes.io/managed-by'] = 'endpointslice-controller.k8s.io';
    expect(matches(SLICE_SELECTOR, kubes)).toBe(false);
  });

  it('finds nothing to write when the served objects hold what it applied, whatever the server added', () => {
    const service = asServed<ServedService>(want.service, (o) => {
      Object.assign(o.spec, {
        type: 'ClusterIP',
        clusterIPs: ['None'],
        sessionAffinity: 'None',
        ipFamilies: ['IPv4'],
        ipFamilyPolicy: 'SingleStack',
        internalTrafficPolicy: 'Cluster',
      });
    });
    expect(covers(want.service, service)).toBe(true);
    for (const s of want.slices) expect(covers(s, asServed(s))).toBe(true);
  });

  it('finds a difference in any field it writes', () => {
    const slice = want.slices[0]!;
    const differs = (edit: (o: ServedSlice) => void) => !covers(slice, asServed(slice, edit));
    const first = (o: ServedSlice) => o.endpoints[0]!;
    expect(differs((o) => void (first(o).conditions!.ready = !first(o).conditions!.ready))).toBe(true);
    expect(differs((o) => void (first(o).addresses = ['10.250.0.9']))).toBe(true);
    expect(differs((o) => void o.endpoints.push(structuredClone(first(o))))).toBe(true); // an extra endpoint
    expect(differs((o) => void (o.endpoints = []))).toBe(true);
    expect(differs((o) => void delete first(o).zone)).toBe(true);
    expect(differs((o) => void (o.ports[0]!.port = 1))).toBe(true);
    expect(differs((o) => void delete o.metadata.labels['kubernetes.io/service-name'])).toBe(true);
    expect(differs((o) => void (o.metadata.ownerReferences[0]!.uid = 'previous'))).toBe(true);
    expect(differs((o) => void (o.addressType = 'IPv6'))).toBe(true);
    expect(differs(() => {})).toBe(false);
    const serviceDiffers = (edit: (o: ServedService) => void) => !covers(want.service, asServed(want.service, edit));
    expect(serviceDiffers((o) => void o.spec.ports.pop())).toBe(true);
    expect(serviceDiffers((o) => void (o.spec.clusterIP = '10.96.0.9'))).toBe(true);
  });

  it('compares objects as subsets, arrays element by element with equal lengths, scalars strictly', () => {
    expect(covers({ a: 1 }, { a: 1, b: 2 })).toBe(true);
    expect(covers({ a: 1, b: 2 }, { a: 1 })).toBe(false);
    expect(covers({ a: undefined }, {})).toBe(true); // not sent
    expect(covers({ a: false }, {})).toBe(false);
    expect(covers({ a: 0 }, { a: '0' })).toBe(false);
    expect(covers([{ a: 1 }], [{ a: 1, b: 2 }])).toBe(true);
    expect(covers([1, 2], [2, 1])).toBe(false);
    expect(covers([1], [1, 2])).toBe(false);
    expect(covers([], {})).toBe(false);
    expect(covers({}, [])).toBe(false);
    expect(covers({ a: {} }, { a: null })).toBe(false);
    expect(covers(null, null)).toBe(true);
  });
});
