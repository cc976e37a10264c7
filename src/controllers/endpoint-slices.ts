// Kubernetes-native routing, the shell around endpoint-slices-plan.ts: keeps each routed DesiredLRP's headless
// Service and EndpointSlices as planned, from the controllers' caches. Writes are server-side applies (idempotent,
// one field manager), both objects are owned by the DesiredLRP (garbage-collected with it), and slices no longer
// planned are deleted. A Service of that name that is not ours is left alone, with a Warning on the DesiredLRP.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { IDesiredLRP } from '../crds/models.ts';
import type { EventRecorder } from '../lib/events.ts';
import { applyAt, rawRequest } from '../lib/kube.ts';
import { isNotFound } from '../lib/resources.ts';
import { WorkQueue, type ReconcileResult } from '../lib/workqueue.ts';
import { LABEL_DESIRED_LRP_UID } from '../lifecycle/names.ts';
import type { DiegoCache } from './cache.ts';
import { DESIRED_LABEL, MANAGED_BY, planEndpoints, serviceName } from './endpoint-slices-plan.ts';

const FIELD_MANAGER = 'diego-operator-endpoints';

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  labels?: Record<string, string>;
  ownerReferences?: { uid: string; kind?: string; name?: string }[];
}

export interface EndpointSlicesOptions {
  kc: KubeConfig;
  cache: DiegoCache;
  log: Logger;
  events?: EventRecorder;
}

export class EndpointSlices {
  private readonly o: EndpointSlicesOptions;
  private readonly log: Logger;
  private readonly queue: WorkQueue;

  constructor(opts: EndpointSlicesOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'endpoint-slices' });
    this.queue = new WorkQueue({ name: 'endpoint-slices', logger: this.log });
  }

  /** Call before the cache starts: follows DesiredLRPs and their ActualLRPs. */
  register(): void {
    const { cache } = this.o;
    const byDesired = (d: IDesiredLRP) => this.queue.add(`${d.metadata.namespace}/${d.metadata.name}`);
    cache.desired.on('add', byDesired);
    cache.desired.on('update', byDesired);
    cache.desired.on('delete', byDesired);
    const byActual = (a: { metadata: { labels?: Record<string, string> } }) => {
      const uid = a.metadata.labels?.[LABEL_DESIRED_LRP_UID];
      const d = uid ? cache.desiredByUid.get(uid)[0] : undefined;
      if (d) byDesired(d);
    };
    cache.actual.on('add', byActual);
    cache.actual.on('update', byActual);
    cache.actual.on('delete', byActual);
  }

  start(): void {
    this.queue.run((key) => this.reconcile(key), 4);
  }

  stop(): Promise<void> {
    return this.queue.shutDown();
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const d = this.o.cache.desired.get(namespace, name);
    // Gone: its Service and slices go with it (owner references); nothing to do.
    if (!d || d.metadata.deletionTimestamp) return;
    const actuals = this.o.cache.actualByDesiredUid.get(d.metadata.uid ?? '');
    const plan = planEndpoints(d, actuals);
    const slicesPath = `/apis/discovery.k8s.io/v1/namespaces/${namespace}/endpointslices`;
    const existing = (
      await rawRequest<{ items: { metadata: Meta }[] }>(this.o.kc, {
        method: 'GET',
        path: `${slicesPath}?labelSelector=${encodeURIComponent(`${DESIRED_LABEL}=${name}`)}`,
      })
    ).items.filter((s) =>
      // Ours, or a deleted DesiredLRP of this name's (recreated faster than the garbage collector removed them).
      s.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid || (o.kind === 'DesiredLRP' && o.name === name)),
    );
    const keep = new Set<string>();
    if (plan) {
      const owner = {
        apiVersion: 'diego.dev/v1alpha1',
        kind: 'DesiredLRP',
        name,
        uid: d.metadata.uid,
        controller: true,
        blockOwnerDeletion: false,
      };
      const labels = { [DESIRED_LABEL]: name, 'app.kubernetes.io/managed-by': 'diego-operator' };
      const free = await this.ownService(d, plan.service);
      // Taken by another object: look again later (it may go). A previous DesiredLRP of this name's: gone soon.
      if (free !== 'ours') return { requeueAfterMs: free === 'stale' ? 1_000 : 60_000 };
      await applyAt(
        this.o.kc,
        `/api/v1/namespaces/${namespace}/services/${plan.service}`,
        {
          apiVersion: 'v1',
          kind: 'Service',
          metadata: { name: plan.service, namespace, labels, ownerReferences: [owner] },
          spec: { clusterIP: 'None', ports: plan.ports.map((p) => ({ ...p, targetPort: p.port })) },
        },
        FIELD_MANAGER,
      );
      for (const s of plan.slices) {
        keep.add(s.name);
        await applyAt(
          this.o.kc,
          `${slicesPath}/${s.name}`,
          {
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
          },
          FIELD_MANAGER,
        );
      }
    }
    for (const s of existing) {
      if (keep.has(s.metadata.name)) continue;
      await rawRequest(this.o.kc, { method: 'DELETE', path: `${slicesPath}/${s.metadata.name}` }).catch(
        (err: unknown) => {
          if (!isNotFound(err)) throw err;
        },
      );
    }
    // No longer routed: the Service goes too (only ours).
    if (!plan) {
      const svc = await this.service(namespace, serviceName(name));
      if (svc?.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid))
        await rawRequest(this.o.kc, {
          method: 'DELETE',
          path: `/api/v1/namespaces/${namespace}/services/${svc.metadata.name}`,
        }).catch((err: unknown) => {
          if (!isNotFound(err)) throw err;
        });
    }
  }

  private async service(namespace: string, name: string): Promise<{ metadata: Meta } | undefined> {
    try {
      return await rawRequest<{ metadata: Meta }>(this.o.kc, {
        method: 'GET',
        path: `/api/v1/namespaces/${namespace}/services/${name}`,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Whether the Service name is free or already this DesiredLRP's ('ours'), still held by a deleted DesiredLRP of
   * the same name ('stale': deleted here rather than waiting for the garbage collector), or someone else's.
   */
  private async ownService(d: IDesiredLRP, name: string): Promise<'ours' | 'stale' | 'taken'> {
    const namespace = d.metadata.namespace ?? '';
    const svc = await this.service(namespace, name);
    if (!svc || svc.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid)) return 'ours';
    const previous = svc.metadata.ownerReferences?.find(
      (o) => o.kind === 'DesiredLRP' && o.name === d.metadata.name && o.uid !== d.metadata.uid,
    );
    if (previous) {
      await rawRequest(this.o.kc, {
        method: 'DELETE',
        path: `/api/v1/namespaces/${namespace}/services/${name}`,
        body: { preconditions: { uid: svc.metadata.uid } },
      }).catch((err: unknown) => {
        if (!isNotFound(err)) throw err;
      });
      return 'stale';
    }
    this.o.events?.record(
      { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', metadata: d.metadata },
      'Warning',
      'ServiceNameTaken',
      `a Service named ${name} exists and is not this DesiredLRP's: no Service or EndpointSlices for its instances; ` +
        `rename one of them, or set the annotation diego.dev/endpoints: "false"`,
    );
    return 'taken';
  }
}
