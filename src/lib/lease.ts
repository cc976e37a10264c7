// coordination.k8s.io/v1 Lease basics shared by leader election, cell presence and BBS domains.
import type { KubernetesObject } from './informer.ts';

export interface Lease extends KubernetesObject {
  metadata?: KubernetesObject['metadata'] & { labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: { holderIdentity?: string; leaseDurationSeconds?: number; renewTime?: string; acquireTime?: string };
}

/** Kubernetes MicroTime (RFC 3339 with microseconds), the format of a Lease's renewTime and acquireTime. */
export const microTime = (d: Date): string => d.toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

export const leasePath = (namespace: string, name = ''): string =>
  `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases${name ? `/${name}` : ''}`;

/** A Lease is current while renewTime (else acquireTime) + leaseDurationSeconds is ahead of `now` (ms); without a
 * duration, `defaultTtlS` applies, and without either it never expires. */
export function leaseCurrent(lease: Lease, now: number, defaultTtlS?: number): boolean {
  const ttl = lease.spec?.leaseDurationSeconds ?? defaultTtlS;
  if (ttl === undefined) return true;
  const renewed = Date.parse(lease.spec?.renewTime ?? lease.spec?.acquireTime ?? '');
  return Number.isFinite(renewed) && renewed + ttl * 1000 > now;
}
