// Diego's route-emitter routing table (route-emitter/routingtable), as pure functions: which registrations the
// routers should hold for a DesiredLRP's routes and its instances, and what to send when either side changes.
//
// Diego keeps an incremental table keyed by route and endpoint. Here the registrations of one process are computed
// whole from its DesiredLRP and ActualLRPs (a few per process) and diffed against what was sent before: the same
// messages, one rule to test. The I/O (informers, NATS, timers) lives in the route emitter's shell.
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { type HttpRoute, type InternalRoute, parseRoutes, type RouteProblem, type TcpRoute } from '../crds/routes.ts';

/** One routable address of a RUNNING instance for one container port (Diego's routingtable.Endpoint). */
export interface Endpoint {
  instanceGuid: string;
  index: number;
  /** The cell's address and the host port mapped to the container port. */
  host: string;
  port: number;
  tlsPort?: number;
  /** The container's own address and port (direct-instance routes, internal routes). */
  containerIp: string;
  containerPort: number;
  containerTlsPort?: number;
  /** When the instance became RUNNING, in nanoseconds since the epoch (Diego's `since`). */
  sinceNs: number;
  zone?: string;
  evacuating: boolean;
  preferredAddress: 'UNKNOWN' | 'INSTANCE' | 'HOST';
}

/** gorouter's registration message (route-emitter/routingtable RegistryMessage): the JSON gorouter reads. */
export interface RegistryMessage {
  host: string;
  port: number;
  tls_port?: number;
  uris: string[];
  protocol?: string;
  app?: string;
  route_service_url?: string;
  private_instance_id?: string;
  private_instance_index?: string;
  server_cert_domain_san?: string;
  isolation_segment?: string;
  endpoint_updated_at_ns?: number;
  tags?: Record<string, string>;
  availability_zone?: string;
  options?: Record<string, unknown>;
}

export interface RoutingOptions {
  /** Diego's register_direct_instance_routes: container address when an instance does not say (UNKNOWN). */
  directInstanceRoutes?: boolean;
  /** Diego's emit_endpoint_updated_at_ns: put the instance's `since` in each registration. */
  emitEndpointUpdatedAt?: boolean;
}

/** What the routers should hold for one process. */
export interface ProcessRoutes {
  /** gorouter (router.register). */
  http: RegistryMessage[];
  /** Service discovery (service-discovery.register). */
  internal: RegistryMessage[];
  /** The routing API's TCP route mappings. */
  tcp: TcpMapping[];
  /** Routes that could not be read (each skipped), to tell the DesiredLRP's owner. */
  problems: RouteProblem[];
}

/** One TCP route of one instance (the routing API's TcpRouteMapping). */
export interface TcpMapping {
  router_group_guid: string;
  port: number;
  backend_ip: string;
  backend_port: number;
  backend_tls_port?: number;
  instance_id: string;
  backend_sni_hostname?: string;
  terminate_frontend_tls?: boolean;
  enable_backend_mtls?: boolean;
}

const nsOf = (iso: string | undefined): number => {
  const ms = iso ? Date.parse(iso) : NaN;
  return Number.isFinite(ms) ? ms * 1e6 : 0;
};

/**
 * The endpoints of one ActualLRP record: one per container port, when it is RUNNING and routable (routable unset
 * counts as true, as Diego's readiness checks only set it when they exist). EVACUATING copies are endpoints too:
 * they stay registered until removed; SUSPECT copies keep serving while their cell is unreachable.
 */
export function endpointsOf(a: IActualLRP): Endpoint[] {
  const s = a.status;
  if (s?.state !== 'RUNNING' || s.routable === false || !s.instanceGuid) return [];
  const net = s.netInfo;
  if (!net?.address) return [];
  return (net.ports ?? []).map((p) => ({
    instanceGuid: s.instanceGuid!,
    index: a.spec.index,
    host: net.address!,
    port: p.hostPort ?? 0,
    ...(p.hostTlsProxyPort ? { tlsPort: p.hostTlsProxyPort } : {}),
    containerIp: net.instanceAddress ?? '',
    containerPort: p.containerPort,
    ...(p.containerTlsProxyPort ? { containerTlsPort: p.containerTlsProxyPort } : {}),
    sinceNs: nsOf(s.since),
    ...(s.availabilityZone ? { zone: s.availabilityZone } : {}),
    evacuating: s.presence === 'EVACUATING',
    preferredAddress: net.preferredAddress ?? 'UNKNOWN',
  }));
}

/** Diego's IsDirectInstanceRoute. */
const direct = (e: Endpoint, opts: RoutingOptions) =>
  e.preferredAddress === 'INSTANCE' || (e.preferredAddress === 'UNKNOWN' && (opts.directInstanceRoutes ?? false));

/** Metric tags of a registration: the DesiredLRP's, dynamic ones filled per instance, plus component. */
function tagsFor(d: IDesiredLRP, e: Endpoint): Record<string, string> {
  const tags: Record<string, string> = {};
  for (const [k, v] of Object.entries(d.spec.metricTags ?? {})) {
    if (v.dynamic === 'INDEX') tags[k] = String(e.index);
    else if (v.dynamic === 'INSTANCE_GUID') tags[k] = e.instanceGuid;
    else tags[k] = v.static ?? '';
  }
  tags.component = 'route-emitter';
  return tags;
}

function httpMessage(d: IDesiredLRP, r: HttpRoute, e: Endpoint, opts: RoutingOptions): RegistryMessage {
  const inside = direct(e, opts);
  const tlsPort = inside ? e.containerTlsPort : e.tlsPort;
  return {
    host: inside ? e.containerIp : e.host,
    port: inside ? e.containerPort : e.port,
    ...(tlsPort ? { tls_port: tlsPort } : {}),
    uris: [r.hostname],
    ...(r.protocol ? { protocol: r.protocol } : {}),
    ...(d.spec.logGuid ? { app: d.spec.logGuid } : {}),
    ...(r.routeServiceUrl ? { route_service_url: r.routeServiceUrl } : {}),
    private_instance_id: e.instanceGuid,
    private_instance_index: String(e.index),
    server_cert_domain_san: e.instanceGuid,
    ...(r.isolationSegment ? { isolation_segment: r.isolationSegment } : {}),
    ...(opts.emitEndpointUpdatedAt && e.sinceNs ? { endpoint_updated_at_ns: e.sinceNs } : {}),
    tags: tagsFor(d, e),
    ...(e.zone ? { availability_zone: e.zone } : {}),
    // Diego sends options only with the host address (InternalAddressRegistryMessageFor leaves them out).
    ...(r.options && !inside ? { options: r.options } : {}),
  };
}

function internalMessage(d: IDesiredLRP, r: InternalRoute, e: Endpoint, opts: RoutingOptions): RegistryMessage {
  return {
    host: e.containerIp,
    port: 0,
    uris: [r.hostname, `${e.index}.${r.hostname}`],
    ...(d.spec.logGuid ? { app: d.spec.logGuid } : {}),
    private_instance_index: String(e.index),
    ...(opts.emitEndpointUpdatedAt && e.sinceNs ? { endpoint_updated_at_ns: e.sinceNs } : {}),
    tags: { component: 'route-emitter' },
    ...(e.zone ? { availability_zone: e.zone } : {}),
  };
}

function tcpMapping(r: TcpRoute, e: Endpoint): TcpMapping {
  return {
    router_group_guid: r.routerGroupGuid,
    port: r.externalPort,
    backend_ip: e.host,
    backend_port: e.port,
    ...(e.tlsPort ? { backend_tls_port: e.tlsPort } : {}),
    instance_id: e.instanceGuid,
    ...(r.sniHostname ? { backend_sni_hostname: r.sniHostname } : {}),
    ...(r.terminateFrontendTls ? { terminate_frontend_tls: true } : {}),
    ...(r.enableBackendMtls ? { enable_backend_mtls: true } : {}),
  };
}

/** The registrations of one process: its routes × the endpoints of its routable instances. */
export function routesOf(d: IDesiredLRP, actuals: readonly IActualLRP[], opts: RoutingOptions = {}): ProcessRoutes {
  const parsed = parseRoutes(d.spec.routes, d.spec.ports ?? []);
  const out: ProcessRoutes = { http: [], internal: [], tcp: [], problems: parsed.problems };
  if (parsed.http.length + parsed.internal.length + parsed.tcp.length === 0) return out;
  const endpoints = actuals.filter((a) => a.spec.processGuid === d.spec.processGuid).flatMap(endpointsOf);
  for (const e of endpoints) {
    for (const r of parsed.http) if (r.port === e.containerPort) out.http.push(httpMessage(d, r, e, opts));
    for (const r of parsed.tcp) if (r.containerPort === e.containerPort) out.tcp.push(tcpMapping(r, e));
  }
  // Internal routes name the instance, not a port: one registration per instance (its first port's record).
  const seen = new Set<string>();
  for (const e of endpoints) {
    if (seen.has(`${e.instanceGuid}/${e.evacuating}`) || !e.containerIp) continue;
    seen.add(`${e.instanceGuid}/${e.evacuating}`);
    for (const r of parsed.internal) out.internal.push(internalMessage(d, r, e, opts));
  }
  return out;
}

/**
 * How a router tells registrations apart: gorouter keys an endpoint by URI and address (host:port) and replaces
 * one registered again with new fields. The same key with other fields is a re-registration, not a new endpoint.
 */
export const messageKey = (m: RegistryMessage): string => `${m.uris.join(' ')}|${m.host}:${m.port}`;
export const tcpKey = (m: TcpMapping): string => `${m.router_group_guid}|${m.port}|${m.backend_ip}:${m.backend_port}`;

export interface Diff<T> {
  /** New or changed: (re-)register them. */
  register: T[];
  /** Gone: unregister them (the message as it was last registered). */
  unregister: T[];
}

/** What to send to go from `before` to `after` (keyed by `key`); unchanged registrations are not re-sent. */
export function diffBy<T>(before: readonly T[], after: readonly T[], key: (m: T) => string): Diff<T> {
  const old = new Map(before.map((m) => [key(m), m]));
  const now = new Map(after.map((m) => [key(m), m]));
  const register = [...now].filter(([k, m]) => JSON.stringify(old.get(k)) !== JSON.stringify(m)).map(([, m]) => m);
  const unregister = [...old].filter(([k]) => !now.has(k)).map(([, m]) => m);
  return { register, unregister };
}
