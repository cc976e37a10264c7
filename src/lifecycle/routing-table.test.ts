import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { diffBy, endpointsOf, messageKey, routesOf } from './routing-table.ts';

const desired = (routes: Record<string, unknown>, extra: Partial<IDesiredLRP['spec']> = {}): IDesiredLRP =>
  ({
    metadata: { name: 'web', namespace: 'apps' },
    spec: {
      processGuid: 'web',
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      instances: 2,
      ports: [8080],
      logGuid: 'app-guid',
      metricTags: { source_id: { static: 'app-guid' }, instance_id: { dynamic: 'INDEX' } },
      routes,
      action: { run: { path: '/bin/app', user: 'root' } },
      ...extra,
    },
  }) as IDesiredLRP;

const actual = (index: number, status: Partial<NonNullable<IActualLRP['status']>> = {}): IActualLRP =>
  ({
    metadata: { name: `web-${index}`, namespace: 'apps' },
    spec: { processGuid: 'web', index, domain: 'cf-apps' },
    status: {
      state: 'RUNNING',
      presence: 'ORDINARY',
      instanceGuid: `guid-${index}`,
      cellId: 'cell-a',
      since: '2026-12-06T06:00:00.000Z',
      availabilityZone: 'z1',
      netInfo: {
        address: '10.0.0.5',
        instanceAddress: `10.255.0.${10 + index}`,
        ports: [{ containerPort: 8080, hostPort: 61000 + index }],
      },
      ...status,
    },
  }) as IActualLRP;

const cf = { 'cf-router': [{ hostnames: ['app.example.test'], port: 8080 }] };

describe('routing table', () => {
  it("registers each routable RUNNING instance's host address under each hostname, as gorouter reads it", () => {
    const r = routesOf(desired(cf), [actual(0), actual(1)]);
    expect(r.problems).toEqual([]);
    expect(r.http).toEqual([
      {
        host: '10.0.0.5',
        port: 61000,
        uris: ['app.example.test'],
        app: 'app-guid',
        private_instance_id: 'guid-0',
        private_instance_index: '0',
        server_cert_domain_san: 'guid-0',
        tags: { source_id: 'app-guid', instance_id: '0', component: 'route-emitter' },
        availability_zone: 'z1',
      },
      expect.objectContaining({ port: 61001, private_instance_id: 'guid-1', private_instance_index: '1' }),
    ]);
  });

  it('leaves out instances not RUNNING, not routable (readiness), or without an address; keeps EVACUATING copies', () => {
    const lrps = [
      actual(0, { state: 'CLAIMED' }),
      actual(1, { routable: false }),
      actual(2, { netInfo: undefined }),
      actual(3, { presence: 'EVACUATING' }),
      actual(4, { routable: true }),
    ];
    expect(routesOf(desired(cf), lrps).http.map((m) => m.private_instance_index)).toEqual(['3', '4']);
    expect(endpointsOf(lrps[3]!)[0]!.evacuating).toBe(true);
  });

  it('uses the container address for direct-instance routes (preferred address, or the default when UNKNOWN)', () => {
    const tls = {
      ports: [{ containerPort: 8080, hostPort: 61000, containerTlsProxyPort: 61001, hostTlsProxyPort: 61443 }],
    };
    const inst = actual(0, {
      netInfo: { address: '10.0.0.5', instanceAddress: '10.255.0.10', preferredAddress: 'INSTANCE', ...tls },
    });
    const unknown = actual(1, { netInfo: { address: '10.0.0.5', instanceAddress: '10.255.0.11', ...tls } });
    const options = { 'cf-router': [{ hostnames: ['a.test'], port: 8080, options: { loadbalancing: 'round-robin' } }] };
    const [m0, m1] = routesOf(desired(options), [inst, unknown]).http;
    expect(m0).toMatchObject({ host: '10.255.0.10', port: 8080, tls_port: 61001 });
    expect(m0!.options).toBeUndefined();
    expect(m1).toMatchObject({
      host: '10.0.0.5',
      port: 61000,
      tls_port: 61443,
      options: { loadbalancing: 'round-robin' },
    });
    const [d1] = routesOf(desired(options), [unknown], { directInstanceRoutes: true }).http;
    expect(d1).toMatchObject({ host: '10.255.0.11', port: 8080 });
  });

  it('sends endpoint_updated_at_ns only when asked, from the instance’s since', () => {
    const [m] = routesOf(desired(cf), [actual(0)], { emitEndpointUpdatedAt: true }).http;
    expect(m!.endpoint_updated_at_ns).toBe(Date.parse('2026-12-06T06:00:00.000Z') * 1e6);
    expect(routesOf(desired(cf), [actual(0)]).http[0]!.endpoint_updated_at_ns).toBeUndefined();
  });

  it('registers internal routes by container address with the index-qualified name, and TCP route mappings', () => {
    const r = routesOf(
      desired({
        'internal-router': [{ hostname: 'web.apps.internal' }],
        'tcp-router': [{ router_group_guid: 'rg', external_port: 1883, container_port: 8080 }],
      }),
      [actual(0), actual(1)],
    );
    expect(r.internal[1]).toEqual({
      host: '10.255.0.11',
      port: 0,
      uris: ['web.apps.internal', '1.web.apps.internal'],
      app: 'app-guid',
      private_instance_index: '1',
      tags: { component: 'route-emitter' },
      availability_zone: 'z1',
    });
    expect(r.tcp).toEqual([
      { router_group_guid: 'rg', port: 1883, backend_ip: '10.0.0.5', backend_port: 61000, instance_id: 'guid-0' },
      { router_group_guid: 'rg', port: 1883, backend_ip: '10.0.0.5', backend_port: 61001, instance_id: 'guid-1' },
    ]);
  });

  it('skips malformed routes and says which, registering the rest', () => {
    const r = routesOf(desired({ 'cf-router': [{ hostnames: ['ok.test', 'not ok'], port: 8080 }] }), [actual(0)]);
    expect(r.http.map((m) => m.uris[0])).toEqual(['ok.test']);
    expect(r.problems).toEqual([expect.objectContaining({ field: 'routes["cf-router"][0].hostnames[1]' })]);
  });

  it('diffs registrations: new and changed ones are (re-)registered, gone ones unregistered, the rest not re-sent', () => {
    const before = routesOf(desired(cf), [actual(0), actual(1)]).http;
    const scaled = routesOf(desired(cf), [actual(0, { routable: true, availabilityZone: 'z2' }), actual(2)]).http;
    const d = diffBy(before, scaled, messageKey);
    expect(d.register.map((m) => m.private_instance_index)).toEqual(['0', '2']); // 0 changed zone, 2 new
    expect(d.unregister.map((m) => m.private_instance_index)).toEqual(['1']);
    expect(diffBy(before, before, messageKey)).toEqual({ register: [], unregister: [] });
    // A route removed from the DesiredLRP unregisters every endpoint under it.
    expect(diffBy(before, routesOf(desired({}), [actual(0), actual(1)]).http, messageKey).unregister).toHaveLength(2);
  });
});
