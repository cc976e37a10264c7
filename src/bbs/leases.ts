// Domains and cell presence as coordination.k8s.io Leases in the system namespace. A domain Lease's
// leaseDurationSeconds is the BBS ttl (absent: never expires); a cell is present while its Lease is renewed.
import { createHash } from 'node:crypto';
import type { KubeConfig } from '@kubernetes/client-node';
import { rawRequest } from '../lib/kube.ts';
import { type Lease, leaseCurrent, leasePath, microTime } from '../lib/lease.ts';
import {
  ANNOTATION_BBS_DOMAIN as ANNOTATION_DOMAIN,
  DEFAULT_PRESENCE_TTL_S,
  LABEL_BBS_DOMAIN as LABEL_DOMAIN,
  LABEL_CELL_PRESENCE,
} from '../lifecycle/names.ts';
import { isAlreadyExists } from '../lib/resources.ts';

/** Domain names may hold any characters; the Lease name is a hash, the domain itself an annotation. */
const domainLeaseName = (domain: string) =>
  `bbs-domain-${createHash('sha256').update(domain).digest('hex').slice(0, 16)}`;

export async function upsertDomain(kc: KubeConfig, ns: string, domain: string, ttl: number, now = new Date()) {
  const name = domainLeaseName(domain);
  // Lease validation rejects 0; "never expires" is an absent duration.
  const spec = { holderIdentity: 'bbs', renewTime: microTime(now), leaseDurationSeconds: ttl > 0 ? ttl : null };
  const lease = {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: { name, labels: { [LABEL_DOMAIN]: 'true' }, annotations: { [ANNOTATION_DOMAIN]: domain } },
    spec,
  };
  try {
    await rawRequest(kc, { method: 'POST', path: leasePath(ns), body: lease });
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
    await rawRequest(kc, {
      method: 'PATCH',
      path: leasePath(ns, name),
      body: { spec },
      contentType: 'application/merge-patch+json',
    });
  }
}

async function listLeases(kc: KubeConfig, ns: string, labelSelector?: string): Promise<Lease[]> {
  const q = labelSelector ? `?labelSelector=${encodeURIComponent(labelSelector)}` : '';
  return (await rawRequest<{ items: Lease[] }>(kc, { method: 'GET', path: leasePath(ns) + q })).items;
}

export async function listFreshDomains(kc: KubeConfig, ns: string, now = Date.now()): Promise<string[]> {
  const leases = await listLeases(kc, ns, `${LABEL_DOMAIN}=true`);
  return leases
    .filter((l) => leaseCurrent(l, now))
    .map((l) => l.metadata?.annotations?.[ANNOTATION_DOMAIN] ?? '')
    .filter(Boolean);
}

/** Cell ids whose presence Lease is current (holder = cell id, as the cell-agent writes it). */
export async function listPresentCells(kc: KubeConfig, ns: string, now = Date.now()): Promise<string[]> {
  const leases = await listLeases(kc, ns, `${LABEL_CELL_PRESENCE}=true`);
  return leases
    .filter((l) => l.spec?.holderIdentity && leaseCurrent(l, now, DEFAULT_PRESENCE_TTL_S))
    .map((l) => l.spec!.holderIdentity!);
}
