// A list+watch cache of one collection on plain HTTP. It does what client-node's ListWatch leaves out
// (peers.md §C.1): paginated lists, bookmarks, backoff on every error, a deadline against silent watches,
// and handlers that cannot kill it.
import type { KubeConfig } from '@kubernetes/client-node';
import type { ClientRequest, IncomingMessage } from 'node:http';
import { request as httpsRequest, type RequestOptions } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { Counter } from 'prom-client';
import type { Logger } from 'pino';
import { KubeError, rawRequest } from './kube.ts';
import { createLogger } from './log.ts';
import { registry } from './metrics.ts';

export interface InformerOptions {
  /** Collection path, e.g. '/apis/diego.dev/v1alpha1/actuallrps' or '/api/v1/namespaces/x/configmaps'. */
  path: string;
  labelSelector?: string;
  fieldSelector?: string;
  logger?: Logger;
  /** For logs and metrics; defaults to the path. */
  name?: string;
}

/**
 * What the informer needs of an object. Structural, and looser than client-node's KubernetesObject (whose
 * metadata timestamps are typed Date, while JSON off the wire holds strings), so that client-node types and
 * the @kubernetes-models classes in src/crds both fit.
 */
export interface KubernetesObject {
  apiVersion?: string;
  kind?: string;
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
}

interface ObjectList<T> {
  apiVersion?: string;
  kind?: string;
  metadata?: { resourceVersion?: string; continue?: string };
  items: T[];
}

export type InformerEvent = 'add' | 'update' | 'delete';

export interface Informer<T extends KubernetesObject> {
  /** `update` gets (new, old). Handlers should only enqueue keys; exceptions are logged and dropped. */
  on(event: InformerEvent, fn: (obj: T, old?: T) => void): void;
  /** Removes a handler added with on(). */
  off(event: InformerEvent, fn: (obj: T, old?: T) => void): void;
  /** Resolves after the initial list is in the cache (or when stop() comes first). */
  start(): Promise<void>;
  stop(): Promise<void>;
  list(): T[];
  get(namespace: string | undefined, name: string): T | undefined;
  readonly synced: boolean;
  /** Between start() and the end of stop(): it lists or watches. */
  readonly running: boolean;
}

/** 'namespace/name', or 'name' for cluster-scoped objects. */
export const keyOf = (obj: KubernetesObject): string => {
  const ns = obj.metadata?.namespace;
  const name = obj.metadata?.name ?? '';
  return ns ? `${ns}/${name}` : name;
};

/**
 * Caches hold objects without metadata.managedFields (as client-go's informers in kube-scheduler and
 * kube-controller-manager do): nothing here reads them, and they are a third to half of a small object's memory.
 * An update built from a cached object and sent without them keeps the server's (omitted means unchanged).
 */
function stripManagedFields<T extends KubernetesObject>(obj: T): T {
  const meta = obj.metadata as { managedFields?: unknown } | undefined;
  if (meta?.managedFields !== undefined) delete meta.managedFields;
  return obj;
}

export function createInformer<T extends KubernetesObject>(kc: KubeConfig, opts: InformerOptions): Informer<T> {
  return new ListWatch<T>(kc, opts);
}

const PAGE_SIZE = 500;
const BACKOFF_MIN_MS = 1_000;
const BACKOFF_MAX_MS = 30_000;
/** A watch that ends sooner than this without any event counts as a failure (client-go's "very short watch"). */
const SHORT_WATCH_MS = 1_000;
/** The server ends a watch after timeoutSeconds; if it has not after this much more, the connection is dead. */
const WATCH_GRACE_MS = 30_000;

const errorsTotal = new Counter({
  name: 'informer_errors_total',
  help: 'Failed lists and watches, by informer and operation',
  labelNames: ['informer', 'op'] as const,
  registers: [registry],
});
const listsTotal = new Counter({
  name: 'informer_lists_total',
  help: 'Full lists (initial, and after an expired resourceVersion)',
  labelNames: ['informer'] as const,
  registers: [registry],
});

const watchesTotal = new Counter({
  name: 'informer_watches_total',
  help: 'Watches that ended, by informer and how: closed (the server ended it: its timeout or a restart), gone (resourceVersion expired: a relist follows), error',
  labelNames: ['informer', 'end'] as const,
  registers: [registry],
});

type WatchEnd = 'closed' | 'gone';
interface WatchEvent {
  type: string;
  object: KubernetesObject & { code?: number; message?: string };
}

class ListWatch<T extends KubernetesObject> implements Informer<T> {
  private readonly kc: KubeConfig;
  private readonly opts: InformerOptions;
  private readonly name: string;
  private readonly log: Logger;
  private readonly cache = new Map<string, T>();
  private readonly handlers: Record<InformerEvent, Array<(obj: T, old?: T) => void>> = {
    add: [],
    update: [],
    delete: [],
  };
  /** Where the next watch starts; undefined means list first. */
  private resourceVersion: string | undefined;
  private hasSynced = false;
  private stopper = new AbortController();
  private loop: Promise<void> | undefined;
  /** The loop a stop() is waiting for. */
  private stopping: Promise<void> | undefined;
  private started: Promise<void> = Promise.resolve();
  private request: ClientRequest | undefined;

  constructor(kc: KubeConfig, opts: InformerOptions) {
    this.kc = kc;
    this.opts = opts;
    this.name = opts.name ?? opts.path;
    this.log = (opts.logger ?? createLogger()).child({ component: 'informer', informer: this.name });
  }

  get synced(): boolean {
    return this.hasSynced;
  }

  /** Between start() and the end of stop(): it lists or watches (once stop() has resolved, nothing runs). */
  get running(): boolean {
    return this.loop !== undefined || this.stopping !== undefined;
  }

  on(event: InformerEvent, fn: (obj: T, old?: T) => void): void {
    this.handlers[event].push(fn);
  }

  off(event: InformerEvent, fn: (obj: T, old?: T) => void): void {
    this.handlers[event] = this.handlers[event].filter((h) => h !== fn);
  }

  start(): Promise<void> {
    if (this.loop) return this.started;
    // A start while a stop() still waits for the last loop to end runs after it (one loop at a time).
    const previous = this.stopping ?? Promise.resolve();
    const stopper = (this.stopper = new AbortController());
    const synced = Promise.withResolvers<void>();
    this.loop = previous
      .then(() => {
        // A restart relists: the diff against the kept cache becomes add/update/delete events.
        this.resourceVersion = undefined;
        return this.run(stopper.signal, synced.resolve);
      })
      .finally(synced.resolve);
    this.started = synced.promise;
    return this.started;
  }

  async stop(): Promise<void> {
    const loop = this.loop;
    if (!loop) return this.stopping; // a stop() under way: resolve when it does
    this.loop = undefined;
    this.stopper.abort();
    this.request?.destroy();
    this.stopping = loop;
    await loop;
    if (this.stopping === loop) this.stopping = undefined;
  }

  list(): T[] {
    return [...this.cache.values()];
  }

  get(namespace: string | undefined, name: string): T | undefined {
    return this.cache.get(namespace ? `${namespace}/${name}` : name);
  }

  private async run(signal: AbortSignal, onSynced: () => void): Promise<void> {
    let failures = 0;
    while (!signal.aborted) {
      let op = 'list';
      const listing = this.resourceVersion === undefined;
      try {
        if (listing) {
          await this.relist(signal);
          onSynced();
        }
        op = 'watch';
        const began = Date.now();
        const { end, events } = await this.watch(signal);
        watchesTotal.inc({ informer: this.name, end });
        if (end === 'gone') {
          this.log.info({ resourceVersion: this.resourceVersion }, 'Watch resourceVersion expired; relisting');
          this.resourceVersion = undefined;
        }
        // An expired resourceVersion after a while away is normal: relist at once. Expired right after a list
        // is not, and must not become a relist loop.
        const healthy = events > 0 || Date.now() - began >= SHORT_WATCH_MS || (end === 'gone' && !listing);
        failures = healthy ? 0 : failures + 1;
        if (!healthy && !signal.aborted) this.log.warn({ end }, 'Watch ended at once; backing off');
      } catch (err) {
        if (signal.aborted) break;
        failures++;
        errorsTotal.inc({ informer: this.name, op });
        if (op === 'watch') watchesTotal.inc({ informer: this.name, end: 'error' });
        this.log.warn({ err, op, failures }, `Informer ${op} failed; retrying`);
      }
      if (failures > 0) {
        const delay = Math.min(BACKOFF_MAX_MS, BACKOFF_MIN_MS * 2 ** (failures - 1));
        await sleep(delay, undefined, { signal }).catch(() => undefined); // aborted by stop()
      }
    }
  }

  /** Lists the collection page by page and makes the cache match it, emitting the differences. */
  private async relist(signal: AbortSignal): Promise<void> {
    listsTotal.inc({ informer: this.name });
    const items: T[] = [];
    let listRV: string | undefined;
    let cont: string | undefined;
    for (;;) {
      let page: ObjectList<T>;
      try {
        page = await rawRequest<ObjectList<T>>(this.kc, {
          method: 'GET',
          path: this.url({ limit: PAGE_SIZE, continue: cont }),
        });
      } catch (err) {
        // A continue token expires with compaction; start the list over.
        if (err instanceof KubeError && err.code === 410 && cont !== undefined) {
          this.log.info('List continue token expired; listing again from the start');
          items.length = 0;
          listRV = cont = undefined;
          continue;
        }
        throw err;
      }
      if (signal.aborted) return;
      // Items of a typed list carry no apiVersion/kind; watch events do. Make the cache uniform.
      const kind = page.kind?.replace(/List$/, '');
      for (const item of page.items) {
        item.apiVersion ??= page.apiVersion;
        item.kind ??= kind;
        items.push(stripManagedFields(item));
      }
      listRV ??= page.metadata?.resourceVersion; // the first page's snapshot is the list's version
      cont = page.metadata?.continue || undefined;
      if (cont === undefined) break;
    }
    if (!listRV) throw new Error(`list of ${this.opts.path} returned no resourceVersion`);

    const fresh = new Map(items.map((o) => [keyOf(o), o]));
    for (const [key, old] of this.cache) {
      if (!fresh.has(key)) {
        this.cache.delete(key);
        this.emit('delete', old);
      }
    }
    for (const [key, obj] of fresh) {
      const old = this.cache.get(key);
      this.cache.set(key, obj);
      if (!old) this.emit('add', obj);
      else if (old.metadata?.resourceVersion !== obj.metadata?.resourceVersion) this.emit('update', obj, old);
    }
    this.resourceVersion = listRV;
    this.hasSynced = true;
  }

  /** One watch request from this.resourceVersion, until the server ends it, it breaks, or stop(). */
  private async watch(signal: AbortSignal): Promise<{ end: WatchEnd; events: number }> {
    const cluster = this.kc.getCurrentCluster();
    if (!cluster) throw new Error('the kubeconfig has no current cluster');
    // Jittered so that many informers do not reconnect in step.
    const timeoutSeconds = 300 + Math.floor(Math.random() * 300);
    const url = new URL(
      this.url({ watch: 1, resourceVersion: this.resourceVersion, allowWatchBookmarks: true, timeoutSeconds }),
      cluster.server,
    );
    const reqOpts: RequestOptions = { method: 'GET', headers: { accept: 'application/json' } };
    await this.kc.applyToHTTPSOptions(reqOpts);
    if (signal.aborted) return { end: 'closed', events: 0 };

    let events = 0;
    const end = await new Promise<WatchEnd>((resolve, reject) => {
      let settled = false;
      const finish = (result: WatchEnd | Error) => {
        if (settled) return;
        settled = true;
        clearTimeout(deadline);
        req.destroy();
        if (result instanceof Error) reject(result);
        else resolve(result);
      };
      // Watches can go silent behind load balancers without an error; do not wait on one forever.
      const deadline = setTimeout(
        () => finish(new Error(`watch did not end ${WATCH_GRACE_MS} ms after its timeout; reconnecting`)),
        timeoutSeconds * 1000 + WATCH_GRACE_MS,
      );
      const req = httpsRequest(url, reqOpts, (res) => {
        if (res.statusCode !== 200) {
          readBody(res).then(
            (body) => finish(res.statusCode === 410 ? 'gone' : new KubeError(res.statusCode ?? 0, body, 'WATCH')),
            finish,
          );
          return;
        }
        res.setEncoding('utf8');
        let buffer = '';
        res.on('data', (chunk: string) => {
          buffer += chunk;
          for (let nl = buffer.indexOf('\n'); nl >= 0 && !settled; nl = buffer.indexOf('\n')) {
            const line = buffer.slice(0, nl);
            buffer = buffer.slice(nl + 1);
            if (!line.trim()) continue;
            try {
              if (this.handleEvent(JSON.parse(line) as WatchEvent) === 'gone') finish('gone');
              else events++;
            } catch (err) {
              finish(err as Error);
            }
          }
        });
        res.on('end', () => finish('closed'));
        res.on('error', finish);
      });
      req.on('socket', (socket) => socket.setKeepAlive(true, 30_000));
      req.on('error', finish);
      req.on('close', () => finish(signal.aborted ? 'closed' : new Error('watch connection closed unexpectedly')));
      this.request = req;
      req.end();
    }).finally(() => (this.request = undefined));
    return { end, events };
  }

  /** Applies one watch event to the cache; 'gone' when the resourceVersion expired. */
  private handleEvent(event: WatchEvent): 'gone' | undefined {
    const obj = stripManagedFields(event.object);
    switch (event.type) {
      case 'ADDED':
      case 'MODIFIED': {
        const key = keyOf(obj);
        const old = this.cache.get(key);
        if (old && !isNewer(obj, old)) break; // a replay of what the cache already holds
        this.cache.set(key, obj as T);
        if (old) this.emit('update', obj as T, old);
        else this.emit('add', obj as T);
        break;
      }
      case 'DELETED': {
        const key = keyOf(obj);
        const old = this.cache.get(key);
        if (!old || !isNewer(obj, old)) break;
        this.cache.delete(key);
        this.emit('delete', obj as T);
        break;
      }
      case 'BOOKMARK':
        break; // only moves the resourceVersion on
      case 'ERROR':
        if (obj.code === 410) return 'gone';
        throw new KubeError(obj.code ?? 500, obj, 'WATCH event');
      default:
        this.log.warn({ type: event.type }, 'Unknown watch event type');
        return undefined;
    }
    const rv = obj.metadata?.resourceVersion;
    if (rv) this.resourceVersion = rv;
    return undefined;
  }

  private emit(event: InformerEvent, obj: T, old?: T): void {
    for (const fn of this.handlers[event]) {
      try {
        // Handlers are typed sync, but an async one must not leave an unhandled rejection behind.
        const result: unknown = fn(obj, old);
        if (result instanceof Promise) result.catch((err: unknown) => this.handlerFailed(err, event, obj));
      } catch (err) {
        this.handlerFailed(err, event, obj);
      }
    }
  }

  private handlerFailed(err: unknown, event: InformerEvent, obj: T): void {
    this.log.error({ err, event, key: keyOf(obj) }, 'Informer event handler failed');
  }

  private url(params: Record<string, string | number | boolean | undefined>): string {
    const query = new URLSearchParams();
    if (this.opts.labelSelector) query.set('labelSelector', this.opts.labelSelector);
    if (this.opts.fieldSelector) query.set('fieldSelector', this.opts.fieldSelector);
    for (const [k, v] of Object.entries(params)) if (v !== undefined) query.set(k, String(v));
    return `${this.opts.path}?${query.toString()}`;
  }
}

/** resourceVersions are opaque, but in practice etcd revisions; compare numerically when they are. */
function isNewer(obj: KubernetesObject, than: KubernetesObject): boolean {
  const a = obj.metadata?.resourceVersion;
  const b = than.metadata?.resourceVersion;
  if (a && b && /^\d+$/.test(a) && /^\d+$/.test(b)) return BigInt(a) > BigInt(b);
  return a !== b;
}

function readBody(res: IncomingMessage): Promise<unknown> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => {
      const text = Buffer.concat(chunks).toString('utf8');
      try {
        resolve(JSON.parse(text));
      } catch {
        resolve(text);
      }
    });
    res.on('error', reject);
  });
}
