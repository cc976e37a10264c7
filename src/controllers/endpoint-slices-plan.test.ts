import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { planEndpoints, serviceName, sliceAddress, wantsEndpoints } from './endpoint-slices-plan.ts';

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
