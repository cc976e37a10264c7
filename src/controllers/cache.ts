// One set of informers shared by the converger, the auctioneer and the task controller, with the indexes
// they need. Read-only: controllers write through DiegoClient and see their writes come back here.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { GROUP, VERSION } from '../crds/kinds.ts';
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { createInformer, type Informer, keyOf, type KubernetesObject } from '../lib/informer.ts';
import type { Lease } from '../lib/lease.ts';
import { LABEL_CELL_PRESENCE, LABEL_DESIRED_LRP_UID } from '../lifecycle/names.ts';

export type { Lease } from '../lib/lease.ts';

/** A multi-valued index kept in step with informer events. */
export class Index<T extends KubernetesObject> {
  private readonly byValue = new Map<string, Map<string, T>>();
  private readonly valueOf: (obj: T) => string | undefined;
  constructor(valueOf: (obj: T) => string | undefined) {
    this.valueOf = valueOf;
  }
  set(obj: T, old?: T): void {
    if (old) this.remove(old);
    const v = this.valueOf(obj);
    if (v === undefined || v === '') return;
    let bucket = this.byValue.get(v);
    if (!bucket) this.byValue.set(v, (bucket = new Map<string, T>()));
    bucket.set(keyOf(obj), obj);
  }
  remove(obj: T): void {
    const v = this.valueOf(obj);
    if (v === undefined) return;
    const bucket = this.byValue.get(v);
    bucket?.delete(keyOf(obj));
    if (bucket?.size === 0) this.byValue.delete(v);
  }
  get(value: string): T[] {
    return [...(this.byValue.get(value)?.values() ?? [])];
  }
  values(): string[] {
    return [...this.byValue.keys()];
  }
}

export function indexed<T extends KubernetesObject>(inf: Informer<T>, ...indexes: Index<T>[]): void {
  inf.on('add', (o) => indexes.forEach((i) => i.set(o)));
  inf.on('update', (o, old) => indexes.forEach((i) => i.set(o, old)));
  inf.on('delete', (o) => indexes.forEach((i) => i.remove(o)));
}

export class DiegoCache {
  readonly desired: Informer<IDesiredLRP>;
  readonly actual: Informer<IActualLRP>;
  readonly tasks: Informer<ITask>;
  readonly cells: Informer<ICell>;
  readonly leases: Informer<Lease>;
  readonly actualByDesiredUid = new Index<IActualLRP>((a) => a.metadata.labels?.[LABEL_DESIRED_LRP_UID]);
  readonly actualByCell = new Index<IActualLRP>((a) => a.spec.cellId);
  readonly tasksByCell = new Index<ITask>((t) => t.spec.cellId);
  readonly desiredByUid = new Index<IDesiredLRP>((d) => d.metadata.uid);
  readonly cellById = new Index<ICell>((c) => c.spec.cellId);
  private stopped = false;

  constructor(kc: KubeConfig, opts: { cellLeaseNamespace: string; logger: Logger }) {
    const api = `/apis/${GROUP}/${VERSION}`;
    const logger = opts.logger;
    this.desired = createInformer(kc, { path: `${api}/desiredlrps`, name: 'desiredlrps', logger });
    this.actual = createInformer(kc, { path: `${api}/actuallrps`, name: 'actuallrps', logger });
    this.tasks = createInformer(kc, { path: `${api}/tasks`, name: 'tasks', logger });
    this.cells = createInformer(kc, { path: `${api}/cells`, name: 'cells', logger });
    this.leases = createInformer(kc, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${opts.cellLeaseNamespace}/leases`,
      // Only cell presences: the namespace also holds the leader Lease and the BBS domains.
      labelSelector: `${LABEL_CELL_PRESENCE}=true`,
      name: 'cell-leases',
      logger,
    });
    indexed(this.actual, this.actualByDesiredUid, this.actualByCell);
    indexed(this.tasks, this.tasksByCell);
    indexed(this.desired, this.desiredByUid);
    indexed(this.cells, this.cellById);
  }

  async start(): Promise<void> {
    this.stopped = false;
    // Cells and leases first, so the first reconciles already know which cells are alive.
    await Promise.all([this.cells.start(), this.leases.start()]);
    // A stop() while the first ones listed (leadership lost or a signal during start-up) must not be followed by
    // watches nobody stops: they would keep the process alive after it has shut down.
    if (this.stopped) return;
    await Promise.all([this.desired.start(), this.actual.start(), this.tasks.start()]);
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all(this.informers().map((i) => i.stop()));
  }

  /** Whether any of its informers still lists or watches (false once stop() has resolved). */
  get running(): boolean {
    return this.informers().some((i) => i.running);
  }

  private informers() {
    return [this.desired, this.actual, this.tasks, this.cells, this.leases];
  }

  desiredFor(actual: IActualLRP): IDesiredLRP | undefined {
    const uid = actual.metadata.labels?.[LABEL_DESIRED_LRP_UID];
    return uid ? this.desiredByUid.get(uid)[0] : undefined;
  }

  cell(cellId: string): ICell | undefined {
    return this.cellById.get(cellId)[0];
  }
}
