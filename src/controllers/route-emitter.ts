// Diego's route-emitter on our CRDs: keeps gorouter's (and service discovery's) routing table in step with the
// DesiredLRPs' routes and their RUNNING, routable instances, over NATS. The decision is pure
// (src/lifecycle/routing-table.ts: the registrations of a process, and the diff from what was sent); this file is
// the shell around it: informers, a work queue per process, the NATS messages and Diego's timings.
//
// * A change of a DesiredLRP or of one of its ActualLRPs re-computes that process's registrations and sends the
//   difference at once: router.register for new or changed ones, router.unregister for gone ones.
// * Every emit interval (gorouter's minimumRegisterIntervalInSeconds from its router.start / greet answer, default
//   20 s) the whole table is registered again: gorouter forgets routes not re-registered within its stale threshold.
// * Unregistrations are re-sent every 30 s, 20 times, unless the same route is registered again meanwhile.
// * Every sync interval (60 s) the table is rebuilt from a fresh LIST, not the watch caches.
// * A new router.start (a gorouter (re)started) makes it emit the whole table after a random jitter (0–20 % of the
//   interval); a NATS reconnect, at once. The table lives in this process, so nothing is lost across reconnects.
// Cell-local mode (Diego's local mode) follows only the ActualLRPs placed on one cell.
import type { Logger } from 'pino';
import { Counter, Gauge, Histogram } from 'prom-client';
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, VERSION } from '../crds/kinds.ts';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import {
  diffBy,
  messageKey,
  type ProcessRoutes,
  type RegistryMessage,
  type RoutingOptions,
  routesOf,
} from '../lifecycle/routing-table.ts';
import type { EventRecorder } from '../lib/events.ts';
import { createInformer, type Informer } from '../lib/informer.ts';
import { registry } from '../lib/metrics.ts';
import { pool } from '../lib/pool.ts';
import { DiegoClient, isNotFound } from '../lib/resources.ts';
import { WorkQueue } from '../lib/workqueue.ts';

/** What the emitter needs of a message bus (NATS in production, see nats-bus.ts). */
export interface RouteBus {
  publish(subject: string, message: unknown): void;
  /** Asks the routers for their intervals (router.greet); undefined when none answered. */
  greet(): Promise<RouterGreeting | undefined>;
  /** A router started (router.start). Returns what removes the handler. */
  onRouterStart(fn: (g: RouterGreeting) => void): () => void;
  /** The connection came back after a loss. Returns what removes the handler. */
  onReconnect(fn: () => void): () => void;
}

export interface RouterGreeting {
  minimumRegisterIntervalInSeconds?: number;
  pruneThresholdInSeconds?: number;
}

export const SUBJECTS = {
  register: 'router.register',
  unregister: 'router.unregister',
  internalRegister: 'service-discovery.register',
  internalUnregister: 'service-discovery.unregister',
} as const;

export interface RouteEmitterOptions extends RoutingOptions {
  kc: KubeConfig;
  bus: RouteBus;
  log: Logger;
  events?: EventRecorder;
  /** Only DesiredLRPs and ActualLRPs of this namespace (default: all). */
  namespace?: string;
  /**
   * Cell-local mode (Diego's local route-emitter): only the instances placed on this cell, and their DesiredLRPs
   * read one by one (GET, through the instance's owner reference) instead of watching every DesiredLRP, so a cell's
   * memory does not grow with the cluster. A route change reaches the routers at the next change of one of the
   * process's instances on this cell or at the next sync.
   */
  cellId?: string;
  /** Default emit interval until a router says otherwise (Diego: routing-release's 20 s). */
  emitIntervalMs?: number;
  /** Diego's sync_interval_in_seconds: 60 s. */
  syncIntervalMs?: number;
  /** Unregistrations re-sent every 30 s, 20 times (Diego). */
  unregisterResendMs?: number;
  unregisterResendCount?: number;
  /** Random jitter after a router.start, as a fraction of the interval (Diego: 0.2). */
  jitterFactor?: number;
}

const routesTotal = new Gauge({
  name: 'RoutesTotal',
  help: 'HTTP registrations (route × instance address) in the routing table',
  registers: [registry],
});
const httpRouteCount = new Gauge({
  name: 'HTTPRouteCount',
  help: 'Distinct HTTP route host names in the routing table',
  registers: [registry],
});
const tcpRouteCount = new Gauge({
  name: 'TCPRouteCount',
  help: 'TCP route mappings (route × instance) in the routing table (listed in EndpointSlices, not sent to a routing API)',
  registers: [registry],
});
const internalRouteCount = new Gauge({
  name: 'InternalRouteCount',
  help: 'Internal (service discovery) registrations in the routing table',
  registers: [registry],
});
const routesRegistered = new Counter({
  name: 'RoutesRegistered',
  help: 'router.register messages sent',
  registers: [registry],
});
const routesUnregistered = new Counter({
  name: 'RoutesUnregistered',
  help: 'router.unregister messages sent (re-sends included)',
  registers: [registry],
});
const routesSynced = new Counter({
  name: 'RoutesSynced',
  help: 'Registrations re-sent by the periodic full emit',
  registers: [registry],
});
const natsEmitted = new Counter({
  name: 'HTTPRouteNATSMessagesEmitted',
  help: 'NATS messages sent for HTTP routes',
  registers: [registry],
});
const internalEmitted = new Counter({
  name: 'InternalRouteNATSMessagesEmitted',
  help: 'NATS messages sent for internal routes',
  registers: [registry],
});
const syncDuration = new Histogram({
  name: 'RouteEmitterSyncDuration',
  help: 'Seconds to rebuild the routing table from a full LIST',
  buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30],
  registers: [registry],
});

interface Pending {
  message: RegistryMessage;
  subject: string;
  left: number;
}

const processKey = (namespace: string | undefined, guid: string) => `${namespace ?? ''}/${guid}`;

export class RouteEmitter {
  private readonly o: RouteEmitterOptions;
  private readonly log: Logger;
  private readonly client: DiegoClient;
  private desired?: Informer<IDesiredLRP>;
  private actual?: Informer<IActualLRP>;
  private readonly queue: WorkQueue;
  /** What the routers were last told, per process (namespace/processGuid). */
  private readonly sent = new Map<string, ProcessRoutes>();
  /** The informers' objects by process (namespace/processGuid): a reconcile reads one process, not the cache. */
  private readonly desiredBy = new Map<string, IDesiredLRP>();
  private readonly actualBy = new Map<string, Map<string, IActualLRP>>();
  /** Problems last reported per process, so an Event is recorded once per change. */
  private readonly told = new Map<string, string>();
  private readonly unregisters = new Map<string, Pending>();
  /** Registrations per route host name (HTTPRouteCount counts the names). */
  private readonly hostRefs = new Map<string, number>();
  private emitIntervalMs: number;
  private readonly timers: NodeJS.Timeout[] = [];
  private emitTimer?: NodeJS.Timeout;
  private stopped = false;
  /** Removes this emitter's handlers from the bus. */
  private readonly unsubscribe: (() => void)[] = [];

  constructor(opts: RouteEmitterOptions) {
    this.o = opts;
    this.log = opts.log.child({ component: 'route-emitter', ...(opts.cellId ? { cellId: opts.cellId } : {}) });
    this.client = new DiegoClient(opts.kc);
    this.queue = new WorkQueue({ name: 'route-emitter', logger: this.log });
    this.emitIntervalMs = opts.emitIntervalMs ?? 20_000;
  }

  async start(): Promise<void> {
    if (this.stopped) return; // stopped already: its informers would have nobody to stop them
    const ns = this.o.namespace;
    const path = (plural: string) => `/apis/${GROUP}/${VERSION}${ns ? `/namespaces/${ns}` : ''}/${plural}`;
    // Cell-local mode reads DesiredLRPs one by one (lookUpDesired).
    this.desired = this.o.cellId
      ? undefined
      : createInformer<IDesiredLRP>(this.o.kc, {
          path: path('desiredlrps'),
          logger: this.log,
          name: 'route-emitter-desiredlrps',
        });
    this.actual = createInformer<IActualLRP>(this.o.kc, {
      path: path('actuallrps'),
      ...(this.o.cellId ? { fieldSelector: `spec.cellId=${this.o.cellId}` } : {}),
      logger: this.log,
      name: 'route-emitter-actuallrps',
    });
    const desiredSeen = (gone: boolean) => (d: IDesiredLRP) => {
      const k = processKey(d.metadata.namespace, d.spec.processGuid);
      if (gone) this.desiredBy.delete(k);
      else this.desiredBy.set(k, d);
      this.queue.add(k);
    };
    const actualSeen = (gone: boolean) => (a: IActualLRP) => {
      const k = processKey(a.metadata.namespace, a.spec.processGuid);
      const m = this.actualBy.get(k) ?? this.actualBy.set(k, new Map()).get(k)!;
      if (gone) m.delete(a.metadata.name ?? '');
      else m.set(a.metadata.name ?? '', a);
      if (m.size === 0) this.actualBy.delete(k);
      this.queue.add(k);
    };
    this.desired?.on('add', desiredSeen(false));
    this.desired?.on('update', desiredSeen(false));
    this.desired?.on('delete', desiredSeen(true));
    this.actual.on('add', actualSeen(false));
    this.actual.on('update', actualSeen(false));
    this.actual.on('delete', actualSeen(true));
    // Removed at stop(): the bus outlives its emitters (one per leadership term in the route-emitter role), and
    // each handler would keep a stopped emitter and its caches in memory.
    this.unsubscribe.push(
      this.o.bus.onRouterStart((g) => this.routerStarted(g)),
      this.o.bus.onReconnect(() => {
        this.log.info('NATS connection back: emitting the whole table');
        this.emitAll();
      }),
    );
    await Promise.all([this.desired?.start(), this.actual.start()]);
    // A stop() meanwhile (leadership lost, a signal) must not be followed by timers nobody clears: they would list
    // every minute for good and keep the process from ending.
    if (this.stopped) return;
    this.queue.run((key) => this.reconcile(key), 4);
    const greeting = await this.o.bus.greet().catch(() => undefined);
    if (this.stopped) return; // greet() may take 30 s when no router answers
    if (greeting) this.setInterval(greeting);
    this.scheduleEmit();
    this.timers.push(
      setInterval(() => this.resendUnregisters(), this.o.unregisterResendMs ?? 30_000),
      setInterval(
        () => void this.sync().catch((err: unknown) => this.log.warn({ err }, 'sync failed')),
        this.o.syncIntervalMs ?? 60_000,
      ),
    );
    this.log.info({ emitIntervalMs: this.emitIntervalMs }, 'route emitter started');
  }

  async stop(): Promise<void> {
    this.stopped = true;
    for (const off of this.unsubscribe.splice(0)) off();
    for (const t of this.timers) clearInterval(t);
    clearTimeout(this.emitTimer);
    await this.queue.shutDown();
    await Promise.all([this.desired?.stop(), this.actual?.stop()]);
    // This emitter's table leaves the process's gauges (another may take over in the same process).
    for (const r of this.sent.values()) this.count(r, -1);
    this.sent.clear();
  }

  /** The registrations currently held for gorouter (for tests and the web view). */
  table(): RegistryMessage[] {
    return [...this.sent.values()].flatMap((r) => r.http);
  }

  /** Re-computes one process from the caches and sends what changed. */
  private async reconcile(key: string): Promise<void> {
    const actuals = [...(this.actualBy.get(key)?.values() ?? [])];
    if (this.o.cellId) await this.lookUpDesired(key, actuals);
    this.apply(key, this.desiredBy.get(key), actuals);
  }

  /** Cell-local mode: the process's DesiredLRP, read by the owner reference of one of its instances. */
  private async lookUpDesired(key: string, actuals: IActualLRP[], fresh = false): Promise<void> {
    if (actuals.length === 0) {
      this.desiredBy.delete(key);
      return;
    }
    const a = actuals[0]!;
    const owner = a.metadata.ownerReferences?.find((o) => o.kind === 'DesiredLRP')?.name;
    if (!owner || (!fresh && this.desiredBy.get(key)?.metadata.name === owner)) return;
    try {
      this.desiredBy.set(key, await this.client.get('DesiredLRP', a.metadata.namespace, owner));
    } catch (err) {
      if (!isNotFound(err)) throw err;
      this.desiredBy.delete(key);
    }
  }

  private apply(key: string, d: IDesiredLRP | undefined, actuals: IActualLRP[]): void {
    const next: ProcessRoutes = d ? routesOf(d, actuals, this.o) : { http: [], internal: [], tcp: [], problems: [] };
    const before = this.sent.get(key) ?? { http: [], internal: [], tcp: [], problems: [] };
    const http = diffBy(before.http, next.http, messageKey);
    const internal = diffBy(before.internal, next.internal, messageKey);
    for (const m of http.register) this.register(SUBJECTS.register, m);
    for (const m of http.unregister) this.unregister(SUBJECTS.unregister, m);
    for (const m of internal.register) this.register(SUBJECTS.internalRegister, m);
    for (const m of internal.unregister) this.unregister(SUBJECTS.internalUnregister, m);
    if (next.http.length + next.internal.length + next.tcp.length === 0) this.sent.delete(key);
    else this.sent.set(key, next);
    if (d) this.reportProblems(key, d, next);
    else this.told.delete(key);
    this.count(before, -1);
    this.count(next, +1);
  }

  private register(subject: string, m: RegistryMessage): void {
    // A registration cancels a pending unregistration of the same route (Diego's unregistration sender).
    this.unregisters.delete(`${subject}|${messageKey(m)}`);
    this.publish(subject, m);
  }

  private unregister(subject: string, m: RegistryMessage): void {
    const left = (this.o.unregisterResendCount ?? 20) - 1;
    if (left > 0) this.unregisters.set(`${subject}|${messageKey(m)}`, { message: m, subject, left });
    this.publish(subject, m);
  }

  private publish(subject: string, m: RegistryMessage): void {
    if (this.stopped) return;
    this.o.bus.publish(subject, m);
    if (subject === SUBJECTS.register) routesRegistered.inc();
    if (subject === SUBJECTS.unregister) routesUnregistered.inc();
    if (subject.startsWith('router.')) natsEmitted.inc();
    else internalEmitted.inc();
  }

  private resendUnregisters(): void {
    for (const [k, p] of this.unregisters) {
      this.publish(p.subject, p.message);
      if (--p.left <= 0) this.unregisters.delete(k);
    }
  }

  /** The whole table again (gorouter prunes what is not re-registered within its stale threshold). */
  private emitAll(): void {
    let n = 0;
    for (const r of this.sent.values()) {
      for (const m of r.http) this.publish(SUBJECTS.register, m);
      for (const m of r.internal) this.publish(SUBJECTS.internalRegister, m);
      n += r.http.length;
    }
    routesSynced.inc(n);
  }

  private scheduleEmit(delayMs = this.emitIntervalMs): void {
    clearTimeout(this.emitTimer);
    if (this.stopped) return;
    this.emitTimer = setTimeout(() => {
      this.emitAll();
      this.scheduleEmit();
    }, delayMs);
  }

  private setInterval(g: RouterGreeting): void {
    const s = g.minimumRegisterIntervalInSeconds;
    if (typeof s === 'number' && s > 0) this.emitIntervalMs = s * 1000;
  }

  private routerStarted(g: RouterGreeting): void {
    this.setInterval(g);
    const jitter = Math.random() * (this.o.jitterFactor ?? 0.2) * this.emitIntervalMs;
    this.log.info({ emitIntervalMs: this.emitIntervalMs, jitterMs: Math.round(jitter) }, 'a router started');
    this.scheduleEmit(jitter);
  }

  /** Diego's periodic sync: the table rebuilt from a fresh LIST (a watch may have missed something). */
  async sync(): Promise<void> {
    const end = syncDuration.startTimer();
    const ns = this.o.namespace;
    const [desired, actual] = await Promise.all([
      this.o.cellId ? Promise.resolve([]) : this.client.list('DesiredLRP', { ...(ns ? { namespace: ns } : {}) }),
      this.client.list('ActualLRP', {
        ...(ns ? { namespace: ns } : {}),
        ...(this.o.cellId ? { fieldSelector: `spec.cellId=${this.o.cellId}` } : {}),
      }),
    ]);
    const byKey = new Map<string, { d?: IDesiredLRP; a: IActualLRP[] }>();
    const slot = (k: string) => byKey.get(k) ?? byKey.set(k, { a: [] }).get(k)!;
    for (const d of desired) slot(processKey(d.metadata.namespace, d.spec.processGuid)).d = d;
    for (const a of actual) slot(processKey(a.metadata.namespace, a.spec.processGuid)).a.push(a);
    for (const k of this.sent.keys()) slot(k);
    if (this.o.cellId) {
      // Each process on this cell: its DesiredLRP read again (a route change shows here at the latest).
      await pool(
        [...byKey].map(([k, v]) => async () => {
          await this.lookUpDesired(k, v.a, true);
          v.d = this.desiredBy.get(k);
        }),
        8,
      ).catch((err: unknown) => this.log.warn({ err }, 'sync: reading DesiredLRPs'));
    }
    for (const [k, { d, a }] of byKey) this.apply(k, d, a);
    end();
  }

  private reportProblems(key: string, d: IDesiredLRP, r: ProcessRoutes): void {
    const text = r.problems.map((p) => `spec.${p.field}: ${p.message}`).join('; ');
    if (this.told.get(key) === text) return;
    this.told.set(key, text);
    if (!text) return;
    this.log.warn({ desiredLRP: key, problems: r.problems }, 'routes skipped');
    this.o.events?.record(
      { apiVersion: `${GROUP}/${VERSION}`, kind: 'DesiredLRP', metadata: d.metadata },
      'Warning',
      'MalformedRoute',
      `routes not registered: ${text}`.slice(0, 1024),
    );
  }

  /** The table's gauges, kept by adding each process's registrations in and out (no pass over the table). */
  private count(r: ProcessRoutes, sign: 1 | -1): void {
    const add = (g: Gauge, n: number) => (sign > 0 ? g.inc(n) : g.dec(n));
    add(routesTotal, r.http.length);
    add(internalRouteCount, r.internal.length);
    add(tcpRouteCount, r.tcp.length);
    for (const m of r.http)
      for (const u of m.uris) {
        const n = (this.hostRefs.get(u) ?? 0) + sign;
        if (n > 0) this.hostRefs.set(u, n);
        else this.hostRefs.delete(u);
      }
    httpRouteCount.set(this.hostRefs.size);
  }
}
