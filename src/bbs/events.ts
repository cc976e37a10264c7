// The BBS event hub: one shared informer per Diego kind (not one apiserver watch per subscriber; the read cache's when
// the facade has one, so the process watches each kind once), its changes
// turned into BBS events once (event-calc.ts) and fanned out to every subscribed SSE stream. Like Diego's hub
// (bbs events/hub.go), a subscriber that falls too far behind is dropped rather than buffered without bound,
// and closing the hub ends every stream.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { createInformer, type Informer, type KubernetesObject } from '../lib/informer.ts';
import { registry } from '../lib/metrics.ts';
import { resourcePath } from '../lib/resources.ts';
import { actualLRPEvents, desiredLRPEvents, taskEvents, type BbsEvent } from './event-calc.ts';

/** The event families a stream can subscribe to. */
export type Topic = 'desired' | 'instance' | 'group' | 'task';

export interface Subscriber {
  readonly topics: readonly Topic[];
  /** Hands one event over; must not block. */
  deliver(event: BbsEvent): void;
  /** The hub is closing: end the stream. */
  close(): void;
}

const subscribers = new Gauge({
  name: 'bbs_event_stream_subscribers',
  help: 'Open BBS event streams, by topic',
  labelNames: ['topic'] as const,
  registers: [registry],
});
const eventsTotal = new Counter({
  name: 'bbs_events_total',
  help: 'BBS events computed from watched changes, by event type',
  labelNames: ['event'] as const,
  registers: [registry],
});

export type Kind = 'DesiredLRP' | 'ActualLRP' | 'Task';
const TOPICS: Record<Topic, Kind> = { desired: 'DesiredLRP', instance: 'ActualLRP', group: 'ActualLRP', task: 'Task' };

export interface EventHubOptions {
  /** Read only when the first stream opens, so an app without subscribers never watches. */
  kubeConfig: () => KubeConfig;
  namespace: string;
  logger: Logger;
  /** How long the first subscriber of a kind waits for its informer's initial list (default 30 s). */
  syncTimeoutMs?: number;
  /**
   * An informer of the namespace's objects of `kind` that another part of the process already keeps (the BBS read
   * cache): the hub listens to it instead of opening a second watch of the same objects. Its owner starts and stops
   * it. Kinds it answers undefined for get an informer of the hub's own.
   */
  sharedInformer?: (kind: Kind) => Informer<KubernetesObject> | undefined;
}

export class EventHub {
  private readonly opts: EventHubOptions;
  private readonly log: Logger;
  private readonly subs = new Set<Subscriber>();
  private readonly informers = new Map<
    Kind,
    { informer: Informer<KubernetesObject>; started: Promise<void>; shared: boolean }
  >();
  private closed = false;

  constructor(opts: EventHubOptions) {
    this.opts = opts;
    this.log = opts.logger.child({ component: 'bbs-events' });
  }

  /** Number of open subscriptions (for tests and logs). */
  get size(): number {
    return this.subs.size;
  }

  /**
   * Starts (once) the informers the topics need, waits for their initial list so that no change made after
   * this resolves is missed, then registers the subscriber. Rejects if the hub is closed or the list fails.
   */
  async subscribe(sub: Subscriber): Promise<void> {
    if (this.closed) throw new Error('the BBS event hub is closed');
    const kinds = [...new Set(sub.topics.map((t) => TOPICS[t]))];
    await Promise.all(kinds.map((k) => this.ensureInformer(k)));
    if (this.closed) throw new Error('the BBS event hub is closed');
    this.subs.add(sub);
    for (const t of sub.topics) subscribers.inc({ topic: t });
  }

  unsubscribe(sub: Subscriber): void {
    if (!this.subs.delete(sub)) return;
    for (const t of sub.topics) subscribers.dec({ topic: t });
  }

  /** Ends every stream and stops the informers. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const sub of [...this.subs]) {
      this.unsubscribe(sub);
      sub.close();
    }
    await Promise.all([...this.informers.values()].filter((i) => !i.shared).map((i) => i.informer.stop()));
  }

  private emit(topic: Topic, events: BbsEvent[]): void {
    if (this.closed) return; // a shared informer goes on delivering after the hub closed
    for (const ev of events) {
      eventsTotal.inc({ event: ev.name });
      for (const sub of this.subs) if (sub.topics.includes(topic)) sub.deliver(ev);
    }
  }

  private startInformer(kind: Kind): Promise<void> {
    const known = this.informers.get(kind);
    if (known) return known.started;
    const shared = this.opts.sharedInformer?.(kind);
    const informer =
      shared ??
      createInformer<KubernetesObject>(this.opts.kubeConfig(), {
        path: resourcePath(kind, this.opts.namespace),
        name: `bbs-events-${kind.toLowerCase()}`,
        logger: this.log,
      });
    // The initial list replays what exists; Diego streams only changes, so nothing is emitted until synced.
    const on = (fn: (before: KubernetesObject | undefined, after: KubernetesObject | undefined) => void) => {
      informer.on('add', (obj) => {
        if (informer.synced) fn(undefined, obj);
      });
      informer.on('update', (obj, old) => fn(old, obj));
      informer.on('delete', (obj) => fn(obj, undefined));
    };
    if (kind === 'DesiredLRP') {
      on((b, a) => this.emit('desired', desiredLRPEvents(b as IDesiredLRP, a as IDesiredLRP)));
    } else if (kind === 'ActualLRP') {
      on((b, a) => {
        const evs = actualLRPEvents(b as IActualLRP, a as IActualLRP);
        this.emit('instance', evs.instance);
        this.emit('group', evs.group);
      });
    } else {
      on((b, a) => this.emit('task', taskEvents(b as ITask, a as ITask)));
    }
    const started = informer.start(); // a shared informer's start() answers its first one's promise
    this.informers.set(kind, { informer, started, shared: !!shared });
    return started;
  }

  /** The informer's initial list, or a failure a subscriber can be told about when the API server is away. */
  private async ensureInformer(kind: Kind): Promise<void> {
    const timeoutMs = this.opts.syncTimeoutMs ?? 30_000;
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`could not list ${kind}s within ${timeoutMs} ms; is the API server reachable?`)),
        timeoutMs,
      );
    });
    try {
      await Promise.race([this.startInformer(kind), timeout]);
    } finally {
      clearTimeout(timer);
    }
  }
}
