import { describe, expect, it } from 'vitest';
import { isRouteHostname, parseRoutes } from './routes.ts';

describe('parseRoutes (the routers’ parts of spec.routes)', () => {
  it('reads cf-router routes, one per hostname, with their options', () => {
    const parsed = parseRoutes(
      {
        'cf-router': [
          {
            hostnames: ['App.Example.test', 'example.test/api'],
            port: 8080,
            route_service_url: 'https://rs.example.test',
            isolation_segment: 'seg',
            protocol: 'http2',
            options: { loadbalancing: 'least-connection' },
          },
        ],
        'diego-ssh': { container_port: 2222, private_key: 'opaque to us' },
      },
      [8080],
    );
    expect(parsed.problems).toEqual([]);
    expect(parsed.http).toEqual([
      {
        hostname: 'app.example.test',
        port: 8080,
        routeServiceUrl: 'https://rs.example.test',
        isolationSegment: 'seg',
        protocol: 'http2',
        options: { loadbalancing: 'least-connection' },
      },
      {
        hostname: 'example.test/api',
        port: 8080,
        routeServiceUrl: 'https://rs.example.test',
        isolationSegment: 'seg',
        protocol: 'http2',
        options: { loadbalancing: 'least-connection' },
      },
    ]);
  });

  it('reads tcp-router and internal-router routes', () => {
    const parsed = parseRoutes(
      {
        'tcp-router': [{ router_group_guid: 'rg', external_port: 61000, container_port: 8080 }],
        'internal-router': [{ hostname: 'app.apps.internal' }],
      },
      [8080],
    );
    expect(parsed).toEqual({
      http: [],
      tcp: [{ routerGroupGuid: 'rg', externalPort: 61000, containerPort: 8080 }],
      internal: [{ hostname: 'app.apps.internal' }],
      problems: [],
    });
  });

  it('names each wrong field: not the cf-router shape, not a DNS name, a port the LRP does not expose', () => {
    const parsed = parseRoutes(
      {
        'cf-router': [
          { hostnames: ['ok.example.test', 'not a host', 'bad_name.example'], port: 8080 },
          { hostnames: ['x.example.test'], port: 9090 },
          { hostname: 'y.example.test', port: 8080 },
          'just a string',
          { hostnames: ['z.example.test'], port: 'eighty', protocol: 'gopher', route_service_url: 'http://plain' },
        ],
        'tcp-router': [{ external_port: 70000, container_port: 8080 }],
        'internal-router': { hostname: 'not a list' },
      },
      [8080],
    );
    expect(parsed.http.map((r) => r.hostname)).toEqual(['ok.example.test']);
    expect(parsed.problems.map((p) => p.field)).toEqual([
      'routes["cf-router"][0].hostnames[1]',
      'routes["cf-router"][0].hostnames[2]',
      'routes["cf-router"][1].port',
      'routes["cf-router"][2].hostnames',
      'routes["cf-router"][3]',
      'routes["cf-router"][4].port',
      'routes["cf-router"][4].route_service_url',
      'routes["cf-router"][4].protocol',
      'routes["tcp-router"][0].external_port',
      'routes["tcp-router"][0].router_group_guid',
      'routes["internal-router"]',
    ]);
    expect(parsed.problems[2]!.message).toBe('port 9090 is not one of spec.ports (8080): no instance serves it');
    expect(parsed.problems[0]!.message).toContain('"not a host" is not a host name');
  });

  it('knows a route host name', () => {
    for (const ok of ['a.b', '*.apps.example.test', 'example.test/path/x', 'xn--bcher-kva.example', 'a-1.b'])
      expect(isRouteHostname(ok), ok).toBe(true);
    for (const bad of ['', 'a b', '-a.b', 'a..b', 'a.b?x', `${'a'.repeat(64)}.b`, 'foo.*.b', 'a_b.c'])
      expect(isRouteHostname(bad), bad).toBe(false);
  });
});
