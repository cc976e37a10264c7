// Kubernetes-native routing, the shell around endpoint-slices-plan.ts: keeps each routed DesiredLRP's headless
// Service and EndpointSlices as planned, from the controllers' caches and its own informers on the Services and
// slices it wrote (selected by their labels). A reconcile reads those caches and writes only what differs from the
// plan: server-side applies (one field manager) of changed objects, deletes of slices no longer planned; a steady
// state costs no API call. Changes to those objects (a slice deleted or edited by hand) bring the DesiredLRP back
// here, so drift is repaired. Both objects are owned by the DesiredLRP (garbage-collected with it). A Service of
// that name that is not ours is left alone, with a Warning on the DesiredLRP.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import type { IDesiredLRP } from '../crds/models.ts';
import type { EventRecorder } from '../lib/events.ts';
import { createInformer, type Informer, type InformerEvent } from '../lib/informer.ts';
import { applyAt, rawRequest } from '../lib/kube.ts';
import { isNotFound } from '../lib/resources.ts';
import { WorkQueue, type ReconcileResult } from '../lib/workqueue.ts';
import { LABEL_DESIRED_LRP_UID } from '../lifecycle/names.ts';
import { type DiegoCache, Index, indexed } from './cache.ts';
import { metrics } from './metrics.ts';
import {
  covers,
  DESIRED_LABEL,
  type Manifest,
  manifests,
  planEndpoints,
  SERVICE_SELECTOR,
  serviceName,
  SLICE_SELECTOR,
} from './endpoint-slices-plan.ts';

const FIELD_MANAGER = 'diego-operator-endpoints';
const SLICES_API = '/apis/discovery.k8s.io/v1';

interface Meta {
  name: string;
  namespace?: string;
  uid?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  ownerReferences?: { uid: string; kind?: string; name?: string }[];
}

/** A Service or EndpointSlice as read back (only the metadata is typed: covers() compares the rest). */
interface Owned {
  apiVersion?: string;
  kind?: string;
  metadata: Meta;
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
  /** Our Services and slices, all namespaces. */
  private readonly services: Informer<Owned>;
  private readonly slices: Informer<Owned>;
  /** Slices by namespace/DesiredLRP name (their DESIRED_LABEL). */
  private readonly slicesByDesired = new Index<Owned>((s) => {
    const desired = s.metadata.labels?.[DESIRED_LABEL];
    return desired ? `${s.metadata.namespace}/${desired}` : undefined;
  });

  constructor(opts: EndpointSlicesOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'endpoint-slices' });
    this.queue = new WorkQueue({ name: 'endpoint-slices', logger: this.log });
    this.services = createInformer<Owned>(opts.kc, {
      path: '/api/v1/services',
      labelSelector: SERVICE_SELECTOR,
      name: 'endpoint-services',
      logger: opts.log,
    });
    this.slices = createInformer<Owned>(opts.kc, {
      path: `${SLICES_API}/endpointslices`,
      labelSelector: SLICE_SELECTOR,
      name: 'endpoint-slices',
      logger: opts.log,
    });
    indexed(this.slices, this.slicesByDesired);
  }

  /** Call before the cache starts: follows DesiredLRPs, their ActualLRPs, and the Services and slices written here. */
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
    // Our own writes come back here too: their reconcile finds nothing to do.
    const byOwned = (o: Owned, old?: Owned) => {
      for (const x of old ? [o, old] : [o]) {
        const desired = x.metadata.labels?.[DESIRED_LABEL];
        if (desired && x.metadata.namespace) this.queue.add(`${x.metadata.namespace}/${desired}`);
      }
    };
    for (const event of ['add', 'update', 'delete'] as InformerEvent[]) {
      this.services.on(event, byOwned);
      this.slices.on(event, byOwned);
    }
  }

  /** Starts the Service and slice informers; resolves once both have listed (or stop() came first). */
  async sync(): Promise<void> {
    await Promise.all([this.services.start(), this.slices.start()]);
  }

  /** After sync(): reconciles start. */
  start(): void {
    this.queue.run((key) => this.reconcile(key), 4);
  }

  /** Stops writing, then watching. */
  async stop(): Promise<void> {
    await this.queue.shutDown();
    await Promise.all([this.services.stop(), this.slices.stop()]);
  }

  private async reconcile(key: string): Promise<ReconcileResult> {
    const [namespace, name] = key.split('/') as [string, string];
    const d = this.o.cache.desired.get(namespace, name);
    // Gone: its Service and slices go with it (owner references); nothing to do.
    if (!d || d.metadata.deletionTimestamp) return;
    const actuals = this.o.cache.actualByDesiredUid.get(d.metadata.uid ?? '');
    const plan = planEndpoints(d, actuals);
    const slicesPath = `${SLICES_API}/namespaces/${namespace}/endpointslices`;
    const existing = this.slicesByDesired.get(key).filter((s) =>
      // Ours, or a deleted DesiredLRP of this name's (recreated faster than the garbage collector removed them).
      s.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid || (o.kind === 'DesiredLRP' && o.name === name)),
    );
    const keep = new Set<string>();
    if (plan) {
      const want = manifests(d, plan);
      const svc = await this.ownService(d, plan.service);
      // Taken by another object: look again later (it may go). A previous DesiredLRP of this name's: gone soon.
      if (svc.owner !== 'ours') return { requeueAfterMs: svc.owner === 'stale' ? 1_000 : 60_000 };
      if (!svc.current || !covers(want.service, svc.current))
        await this.apply(`/api/v1/namespaces/${namespace}/services/${plan.service}`, want.service);
      for (const s of want.slices) {
        keep.add(s.metadata.name);
        const have = this.slices.get(namespace, s.metadata.name);
        if (!have || !covers(s, have)) await this.apply(`${slicesPath}/${s.metadata.name}`, s);
      }
    }
    for (const s of existing) {
      if (!keep.has(s.metadata.name)) await this.delete('EndpointSlice', `${slicesPath}/${s.metadata.name}`);
    }
    // No longer routed: the Service goes too (only ours; one not in the cache is not, or comes back here when it is).
    if (!plan) {
      const svc = this.services.get(namespace, serviceName(name));
      if (svc?.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid))
        await this.delete('Service', `/api/v1/namespaces/${namespace}/services/${svc.metadata.name}`);
    }
  }

  private async apply(path: string, obj: Manifest): Promise<void> {
    metrics.endpointWrites.inc({ kind: obj.kind, verb: 'apply' });
    await applyAt(this.o.kc, path, obj, FIELD_MANAGER);
  }

  /** Deletes, optionally only the object of that uid; already gone is fine. */
  private async delete(kind: string, path: string, uid?: string): Promise<void> {
    metrics.endpointWrites.inc({ kind, verb: 'delete' });
    await rawRequest(this.o.kc, {
      method: 'DELETE',
      path,
      ...(uid ? { body: { preconditions: { uid } } } : {}),
    }).catch((err: unknown) => {
      if (!isNotFound(err)) throw err;
    });
  }

  private async getService(namespace: string, name: string): Promise<Owned | undefined> {
    try {
      return await rawRequest<Owned>(this.o.kc, {
        method: 'GET',
        path: `/api/v1/namespaces/${namespace}/services/${name}`,
      });
    } catch (err) {
      if (isNotFound(err)) return undefined;
      throw err;
    }
  }

  /**
   * Whether the Service name is free or already this DesiredLRP's ('ours', with the Service as it is, if any), still
   * held by a deleted DesiredLRP of the same name ('stale': deleted here rather than waiting for the garbage
   * collector), or someone else's. Ours are in the cache; only a name missing there is read from the API server (a
   * Service without our labels, or one written here that the watch has not brought yet).
   */
  private async ownService(
    d: IDesiredLRP,
    name: string,
  ): Promise<{ owner: 'ours'; current?: Owned } | { owner: 'stale' | 'taken' }> {
    const namespace = d.metadata.namespace ?? '';
    const svc = this.services.get(namespace, name) ?? (await this.getService(namespace, name));
    if (!svc) return { owner: 'ours' };
    if (svc.metadata.ownerReferences?.some((o) => o.uid === d.metadata.uid)) return { owner: 'ours', current: svc };
    const previous = svc.metadata.ownerReferences?.find(
      (o) => o.kind === 'DesiredLRP' && o.name === d.metadata.name && o.uid !== d.metadata.uid,
    );
    if (previous) {
      await this.delete('Service', `/api/v1/namespaces/${namespace}/services/${name}`, svc.metadata.uid);
      return { owner: 'stale' };
    }
    this.o.events?.record(
      { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', metadata: d.metadata },
      'Warning',
      'ServiceNameTaken',
      `a Service named ${name} exists and is not this DesiredLRP's: no Service or EndpointSlices for its instances; ` +
        `rename one of them, or set the annotation diego.dev/endpoints: "false"`,
    );
    return { owner: 'taken' };
  }
}
