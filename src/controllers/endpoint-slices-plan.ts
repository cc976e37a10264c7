// Kubernetes-native routing, the pure part: for a DesiredLRP with routes (or the annotation diego.dev/endpoints:
// "true"), a headless Service named after it and EndpointSlices (discovery.k8s.io/v1) listing its instances, so
// in-cluster clients, Ingress controllers and Gateway API implementations reach them without gorouter.
//
// An instance is reached at its cell's address and the host ports mapped to its container ports, which differ per
// instance, while an EndpointSlice's ports hold for all its endpoints: endpoints are grouped into one slice per
// distinct port mapping (in practice one per instance; one for all when instances are reached at their container
// address: preferredAddress INSTANCE). Conditions follow Diego's routing: ready = RUNNING and routable (readiness
// checks) and not evacuating; serving = RUNNING and routable; terminating = an EVACUATING copy, which keeps serving
// until its replacement runs. Zone hints come from the cell's zone.
import { createHash } from 'node:crypto';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { parseRoutes } from '../crds/routes.ts';

export const ENDPOINTS_ANNOTATION = 'diego.dev/endpoints';
export const MANAGED_BY = 'endpoint-slices.diego.dev';
/** The label every slice of ours has: the DesiredLRP it lists (and the Service, by kubernetes.io/service-name). */
export const DESIRED_LABEL = 'diego.dev/desired-lrp';
const OPERATOR_LABELS = { 'app.kubernetes.io/managed-by': 'diego-operator' } as const;
/** Selects the Services this module writes and nothing else (the chart's own carry managed-by: Helm). */
export const SERVICE_SELECTOR = `app.kubernetes.io/managed-by=diego-operator,${DESIRED_LABEL}`;
/** Selects the EndpointSlices this module writes and nothing else. */
export const SLICE_SELECTOR = `${SERVICE_SELECTOR},endpointslice.kubernetes.io/managed-by=${MANAGED_BY}`;
/** EndpointSlice's limit on endpoints per slice (the API server refuses more than 1000; kube uses 100). */
const MAX_ENDPOINTS = 100;

export interface ServicePort {
  name: string;
  port: number;
  protocol: 'TCP';
}

export interface SliceEndpoint {
  addresses: [string];
  conditions: { ready: boolean; serving: boolean; terminating: boolean };
  targetRef: { apiVersion: string; kind: 'ActualLRP'; namespace: string; name: string; uid?: string };
  zone?: string;
  hints?: { forZones: { name: string }[] };
}

export interface SlicePlan {
  name: string;
  addressType: 'IPv4' | 'IPv6';
  ports: ServicePort[];
  endpoints: SliceEndpoint[];
}

export interface EndpointsPlan {
  /** Service name (the DesiredLRP's). */
  service: string;
  ports: ServicePort[];
  slices: SlicePlan[];
}

export const portName = (containerPort: number): string => `port-${containerPort}`;

/** Whether a DesiredLRP gets a Service and EndpointSlices. */
export function wantsEndpoints(d: IDesiredLRP): boolean {
  const opt = d.metadata.annotations?.[ENDPOINTS_ANNOTATION];
  if (opt === 'false') return false;
  if (opt === 'true') return true;
  const r = parseRoutes(d.spec.routes, d.spec.ports ?? []);
  return r.http.length + r.tcp.length + r.internal.length > 0;
}

const ipv6 = (ip: string) => ip.includes(':');

/**
 * Whether an EndpointSlice may hold `ip`: the API server refuses loopback, link-local and unspecified addresses
 * (a cell on 127.0.0.1, as `make run`'s, is reachable only from its own host: its instances get no endpoints).
 */
export function sliceAddress(ip: string): boolean {
  if (ipv6(ip)) {
    const v = ip.toLowerCase();
    return v !== '::' && v !== '::1' && !/^fe[89ab][0-9a-f]:/.test(v);
  }
  const [a, b] = ip.split('.').map(Number);
  if (a === undefined || b === undefined) return false;
  return a !== 127 && a !== 0 && !(a === 169 && b === 254);
}

/** The Service and slices a DesiredLRP should have now; undefined when it wants none. */
export function planEndpoints(d: IDesiredLRP, actuals: readonly IActualLRP[]): EndpointsPlan | undefined {
  if (!wantsEndpoints(d) || !(d.spec.ports ?? []).length) return undefined;
  const name = serviceName(d.metadata.name!);
  const containerPorts = [...new Set(d.spec.ports)].sort((a, b) => a - b);
  const ports: ServicePort[] = containerPorts.map((p) => ({ name: portName(p), port: p, protocol: 'TCP' }));
  const groups = new Map<string, SlicePlan>();
  for (const a of actuals) {
    const s = a.status;
    if (a.spec.processGuid !== d.spec.processGuid || s?.state !== 'RUNNING' || !s.netInfo) continue;
    const net = s.netInfo;
    const inside = net.preferredAddress === 'INSTANCE' && !!net.instanceAddress;
    const address = inside ? net.instanceAddress! : net.address;
    if (!address || !sliceAddress(address)) continue;
    // Each container port at the address it is reached on; an instance missing a mapping is left out.
    const mapped = containerPorts.map((p) => {
      const m = net.ports?.find((x) => x.containerPort === p);
      return inside ? (m ? p : undefined) : m?.hostPort;
    });
    if (mapped.some((p) => !p)) continue;
    const slicePorts = containerPorts.map((p, i) => ({
      name: portName(p),
      port: mapped[i]!,
      protocol: 'TCP' as const,
    }));
    const addressType = ipv6(address) ? 'IPv6' : 'IPv4';
    const signature = `${addressType}|${slicePorts.map((p) => `${p.name}=${p.port}`).join(',')}`;
    const routable = s.routable !== false;
    const evacuating = s.presence === 'EVACUATING';
    const endpoint: SliceEndpoint = {
      addresses: [address],
      conditions: { ready: routable && !evacuating, serving: routable, terminating: evacuating },
      targetRef: {
        apiVersion: 'diego.dev/v1alpha1',
        kind: 'ActualLRP',
        namespace: a.metadata.namespace ?? '',
        name: a.metadata.name ?? '',
        ...(a.metadata.uid ? { uid: a.metadata.uid } : {}),
      },
      ...(s.availabilityZone ? { zone: s.availabilityZone, hints: { forZones: [{ name: s.availabilityZone }] } } : {}),
    };
    const group = groups.get(signature) ?? { name: '', addressType, ports: slicePorts, endpoints: [] };
    group.endpoints.push(endpoint);
    groups.set(signature, group);
  }
  const slices: SlicePlan[] = [];
  for (const [signature, g] of [...groups].sort(([a], [b]) => a.localeCompare(b))) {
    g.endpoints.sort((x, y) => x.targetRef.name.localeCompare(y.targetRef.name));
    for (let i = 0; i < g.endpoints.length; i += MAX_ENDPOINTS) {
      const part = Math.floor(i / MAX_ENDPOINTS);
      slices.push({
        ...g,
        name: sliceName(name, `${signature}#${part}`),
        endpoints: g.endpoints.slice(i, i + MAX_ENDPOINTS),
      });
    }
  }
  return { service: name, ports, slices };
}

export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: {
    name: string;
    namespace: string;
    labels: Record<string, string>;
    ownerReferences: { apiVersion: string; kind: string; name: string; uid?: string; controller: boolean }[];
  };
  [field: string]: unknown;
}

/**
 * The objects a plan is applied as: the headless Service and its slices, labelled (the controller's informers select
 * them by these labels) and owned by the DesiredLRP (garbage-collected with it).
 */
export function manifests(d: IDesiredLRP, plan: EndpointsPlan): { service: Manifest; slices: Manifest[] } {
  const name = d.metadata.name!;
  const namespace = d.metadata.namespace ?? '';
  const owner = {
    apiVersion: 'diego.dev/v1alpha1',
    kind: 'DesiredLRP',
    name,
    uid: d.metadata.uid,
    controller: true,
    blockOwnerDeletion: false,
  };
  const labels = { [DESIRED_LABEL]: name, ...OPERATOR_LABELS };
  return {
    service: {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: { name: plan.service, namespace, labels, ownerReferences: [owner] },
      spec: { clusterIP: 'None', ports: plan.ports.map((p) => ({ ...p, targetPort: p.port })) },
    },
    slices: plan.slices.map((s) => ({
      apiVersion: 'discovery.k8s.io/v1',
      kind: 'EndpointSlice',
      metadata: {
        name: s.name,
        namespace,
        labels: {
          ...labels,
          'kubernetes.io/service-name': plan.service,
          'endpointslice.kubernetes.io/managed-by': MANAGED_BY,
        },
        ownerReferences: [owner],
      },
      addressType: s.addressType,
      ports: s.ports,
      endpoints: s.endpoints,
    })),
  };
}

/**
 * Whether `have` (the object as the API server holds it) already has every field of `want` (what would be applied),
 * so that applying `want` would change nothing: objects may hold more keys (server defaults, other managers'
 * fields), arrays must have the same length and match element by element (a slice with an extra endpoint differs),
 * scalars must be equal. A key set to undefined in `want` is not sent, so not compared.
 */
export function covers(want: unknown, have: unknown): boolean {
  if (Array.isArray(want))
    return Array.isArray(have) && have.length === want.length && want.every((w, i) => covers(w, have[i]));
  if (want !== null && typeof want === 'object') {
    if (have === null || typeof have !== 'object' || Array.isArray(have)) return false;
    const h = have as Record<string, unknown>;
    return Object.entries(want).every(([k, w]) => w === undefined || covers(w, h[k]));
  }
  return want === have;
}

/**
 * The Service's name: the DesiredLRP's when it is a valid Service name (a DNS-1035 label: lower case, starts with a
 * letter, at most 63 characters), else `dlrp-` and a hash of it.
 */
export function serviceName(desired: string): string {
  if (/^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$/.test(desired)) return desired;
  return `dlrp-${createHash('sha256').update(desired).digest('hex').slice(0, 16)}`;
}

/** A stable slice name: the DesiredLRP's name (shortened) and a hash of what the slice groups. */
export function sliceName(desired: string, signature: string): string {
  const hash = createHash('sha256').update(signature).digest('hex').slice(0, 10);
  return `${desired.slice(0, 200)}-${hash}`;
}
