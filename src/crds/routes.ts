// The routers' parts of a DesiredLRP's `routes` (Diego's routing-info: cfroutes, tcp_routes, internalroutes):
// `cf-router` (gorouter's HTTP routes), `tcp-router` (the routing API's TCP routes) and `internal-router` (service
// discovery). Other keys (e.g. `diego-ssh`) are other components' and stay opaque. parseRoutes reads the three into
// typed routes and says, per field, what is wrong with them: the admission webhook refuses those, and the route
// emitter skips them (with an Event) on objects admitted before.

export const CF_ROUTER = 'cf-router';
export const TCP_ROUTER = 'tcp-router';
export const INTERNAL_ROUTER = 'internal-router';

/** One hostname of a cf-router route (Diego registers one message per hostname). */
export interface HttpRoute {
  hostname: string;
  port: number;
  routeServiceUrl?: string;
  isolationSegment?: string;
  protocol?: string;
  /** Opaque to Diego; gorouter reads e.g. {"loadbalancing": "least-connection"}. */
  options?: Record<string, unknown>;
}

export interface TcpRoute {
  routerGroupGuid: string;
  externalPort: number;
  containerPort: number;
  sniHostname?: string;
  terminateFrontendTls?: boolean;
  enableBackendMtls?: boolean;
}

export interface InternalRoute {
  hostname: string;
}

export interface RouteProblem {
  /** The field, as a JSON path under spec.routes, e.g. `routes["cf-router"][0].hostnames[1]`. */
  field: string;
  message: string;
}

export interface ParsedRoutes {
  http: HttpRoute[];
  tcp: TcpRoute[];
  internal: InternalRoute[];
  problems: RouteProblem[];
}

// A DNS name (RFC 1123 labels, a leading `*.` wildcard allowed), optionally followed by a context path, as
// Cloud Controller sends route hosts (gorouter routes "host/path" URIs too).
const LABEL = '[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?';
const HOSTNAME = new RegExp(`^(\\*\\.)?${LABEL}(\\.${LABEL})*(/[^\\s?#]*)?$`, 'i');
const MAX_HOSTNAME = 1024;

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isPort = (v: unknown): v is number => Number.isInteger(v) && (v as number) >= 1 && (v as number) <= 65535;

/** Whether `name` is a route hostname gorouter can match: a DNS name (maybe `*.`-wildcarded) and an optional path. */
export function isRouteHostname(name: string): boolean {
  if (name.length === 0 || name.length > MAX_HOSTNAME) return false;
  const host = name.split('/')[0]!;
  return host.length <= 253 && HOSTNAME.test(name);
}

/**
 * Reads the cf-router, tcp-router and internal-router entries of `routes`. `ports` are the DesiredLRP's container
 * ports: a route to a port the LRP does not expose is a problem (no instance could serve it).
 */
export function parseRoutes(routes: Record<string, unknown> | undefined, ports: readonly number[] = []): ParsedRoutes {
  const out: ParsedRoutes = { http: [], tcp: [], internal: [], problems: [] };
  if (!routes) return out;
  const problem = (field: string, message: string) => out.problems.push({ field, message });
  const exposed = new Set(ports);
  const list = (key: string): unknown[] => {
    const v = routes[key];
    if (v === undefined || v === null) return [];
    if (!Array.isArray(v)) {
      problem(`routes["${key}"]`, `must be a list of routes, got ${typeof v}`);
      return [];
    }
    return v;
  };
  const optionalString = (o: Record<string, unknown>, key: string, at: string): string | undefined => {
    const v = o[key];
    if (v === undefined || v === null || v === '') return undefined;
    if (typeof v !== 'string') {
      problem(`${at}.${key}`, 'must be a string');
      return undefined;
    }
    return v;
  };
  const portOf = (o: Record<string, unknown>, key: string, at: string): number | undefined => {
    const v = o[key];
    if (!isPort(v)) {
      problem(`${at}.${key}`, `must be a port number 1-65535, got ${JSON.stringify(v)}`);
      return undefined;
    }
    return v;
  };
  const exposedPort = (port: number, at: string) => {
    if (exposed.has(port)) return true;
    problem(at, `port ${port} is not one of spec.ports (${[...exposed].join(', ') || 'none'}): no instance serves it`);
    return false;
  };

  list(CF_ROUTER).forEach((r, i) => {
    const at = `routes["${CF_ROUTER}"][${i}]`;
    if (!isObject(r)) return problem(at, 'must be an object {hostnames, port, ...}');
    const port = portOf(r, 'port', at);
    if (port !== undefined && !exposedPort(port, `${at}.port`)) return;
    const hostnames = r.hostnames;
    if (!Array.isArray(hostnames)) return problem(`${at}.hostnames`, 'must be a list of host names');
    const routeServiceUrl = optionalString(r, 'route_service_url', at);
    if (routeServiceUrl !== undefined && !/^https:\/\/[^\s]+$/.test(routeServiceUrl))
      problem(`${at}.route_service_url`, `must be an https:// URL, got ${JSON.stringify(routeServiceUrl)}`);
    const isolationSegment = optionalString(r, 'isolation_segment', at);
    const protocol = optionalString(r, 'protocol', at);
    if (protocol !== undefined && protocol !== 'http1' && protocol !== 'http2')
      problem(`${at}.protocol`, `must be http1 or http2, got ${JSON.stringify(protocol)}`);
    const options = r.options;
    if (options !== undefined && options !== null && !isObject(options))
      problem(`${at}.options`, 'must be an object of route options');
    hostnames.forEach((h, j) => {
      if (typeof h !== 'string' || !isRouteHostname(h))
        return problem(
          `${at}.hostnames[${j}]`,
          `${JSON.stringify(h)} is not a host name (a DNS name, maybe with a leading "*." and a /path)`,
        );
      if (port === undefined) return;
      out.http.push({
        hostname: h.toLowerCase(),
        port,
        ...(routeServiceUrl !== undefined ? { routeServiceUrl } : {}),
        ...(isolationSegment !== undefined ? { isolationSegment } : {}),
        ...(protocol !== undefined ? { protocol } : {}),
        ...(isObject(options) ? { options } : {}),
      });
    });
  });

  list(TCP_ROUTER).forEach((r, i) => {
    const at = `routes["${TCP_ROUTER}"][${i}]`;
    if (!isObject(r)) return problem(at, 'must be an object {router_group_guid, external_port, container_port}');
    const externalPort = portOf(r, 'external_port', at);
    const containerPort = portOf(r, 'container_port', at);
    const routerGroupGuid = optionalString(r, 'router_group_guid', at);
    if (routerGroupGuid === undefined) problem(`${at}.router_group_guid`, 'is required');
    const sniHostname = optionalString(r, 'backend_sni_hostname', at);
    if (externalPort === undefined || containerPort === undefined || routerGroupGuid === undefined) return;
    if (!exposedPort(containerPort, `${at}.container_port`)) return;
    out.tcp.push({
      routerGroupGuid,
      externalPort,
      containerPort,
      ...(sniHostname !== undefined ? { sniHostname } : {}),
      ...(r.terminate_frontend_tls === true ? { terminateFrontendTls: true } : {}),
      ...(r.enable_backend_mtls === true ? { enableBackendMtls: true } : {}),
    });
  });

  list(INTERNAL_ROUTER).forEach((r, i) => {
    const at = `routes["${INTERNAL_ROUTER}"][${i}]`;
    if (!isObject(r)) return problem(at, 'must be an object {hostname}');
    const h = r.hostname;
    if (typeof h !== 'string' || !isRouteHostname(h) || h.includes('/'))
      return problem(`${at}.hostname`, `${JSON.stringify(h)} is not a host name`);
    out.internal.push({ hostname: h.toLowerCase() });
  });
  return out;
}
