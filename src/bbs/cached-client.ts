// The BBS facade's reads from informer caches instead of the API server: Diego's BBS answers from SQL in
// milliseconds, and a list of every ActualLRP per request (Cloud Controller's and the route-emitter's bulk calls)
// costs the API server far more than a watch. Reads stay consistent with the facade's own writes (read your
// writes): after a write of a kind, reads of that kind wait until the cache has seen the version written (or, for
// a delete, the object gone or deleting). A read the cache cannot serve in time, or cannot evaluate (a selector it
// does not understand), goes to the API server as before. Writes by others (cells, controller) show after the watch's
// delay, milliseconds; docs/differences.md says so.
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { createInformer, type Informer } from '../lib/informer.ts';
import { KubeError } from '../lib/kube.ts';
import { DiegoClient, type DiegoKind, type KindMap, type ObjectRef, resourcePath } from '../lib/resources.ts';

/** What the cache reads of an object. */
interface KubernetesObject {
  metadata?: {
    name?: string;
    namespace?: string;
    resourceVersion?: string;
    deletionTimestamp?: string;
    labels?: Record<string, string>;
  };
  spec?: Record<string, unknown>;
}

/** The kinds served from the cache (namespaced, in the BBS namespace). Cells are few and cluster-scoped: not cached. */
const CACHED = ['DesiredLRP', 'ActualLRP', 'Task'] as const;
type CachedKind = (typeof CACHED)[number];
const isCached = (kind: DiegoKind): kind is CachedKind => (CACHED as readonly string[]).includes(kind);

/** How long a read waits for the cache to catch up with a write before it asks the API server instead. */
const CATCH_UP_MS = 2_000;

/** An equality requirement of a field or label selector ("spec.processGuid=web", "diego.dev/index=3"). */
interface Requirement {
  key: string;
  value: string;
}

/**
 * Parses "a=b,c=d" with the escapes sel() writes (\, \= \\). Undefined when it is anything else (!=, in (...),
 * exists): the API server evaluates those.
 */
export function parseSelector(selector: string | undefined): Requirement[] | undefined {
  if (!selector) return [];
  const out: Requirement[] = [];
  let key = '';
  let value = '';
  let inValue = false;
  const end = () => {
    if (!inValue || !key) return false;
    out.push({ key, value });
    key = '';
    value = '';
    inValue = false;
    return true;
  };
  for (let i = 0; i < selector.length; i++) {
    const c = selector[i]!;
    if (c === '\\' && i + 1 < selector.length) {
      const next = selector[++i]!;
      if (inValue) value += next;
      else key += next;
    } else if (c === ',') {
      if (!end()) return undefined;
    } else if (c === '=' && !inValue) {
      if (selector[i + 1] === '=') i++; // "==" is "=" too
      inValue = true;
    } else if (c === '!' || c === '(' || c === ')') {
      return undefined;
    } else if (inValue) value += c;
    else key += c;
  }
  return end() ? out : undefined;
}

/** The field a selector names on the object (only metadata.name, metadata.namespace and spec.<field>). */
function fieldOf(obj: KubernetesObject, path: string): string | undefined {
  if (path === 'metadata.name') return obj.metadata?.name ?? '';
  if (path === 'metadata.namespace') return obj.metadata?.namespace ?? '';
  if (!path.startsWith('spec.') || path.indexOf('.', 5) !== -1) return undefined;
  const v = obj.spec?.[path.slice(5)];
  if (v === undefined || v === null) return '';
  if (typeof v === 'string') return v;
  return typeof v === 'number' || typeof v === 'boolean' ? String(v) : undefined;
}

const rvOf = (o: KubernetesObject | undefined): bigint | undefined => {
  const rv = o?.metadata?.resourceVersion;
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
};

interface Cache {
  informer: Informer<KubernetesObject>;
  started: Promise<void>;
  /** The highest resourceVersion the informer has delivered. */
  seen: bigint;
  /** The highest resourceVersion this client wrote. */
  written: bigint;
  /** Names this client deleted whose deletion the informer has not shown yet. */
  deleting: Set<string>;
  waiters: Set<() => void>;
}

export class CachedDiegoClient extends DiegoClient {
  readonly namespace: string;
  private readonly log?: Logger;
  private readonly caches = new Map<CachedKind, Cache>();
  private stopped = false;
  /** Reads served from the cache, and those that went to the API server (for tests and metrics). */
  readonly reads = { cache: 0, api: 0 };

  constructor(kc: KubeConfig, opts: { namespace: string; log?: Logger }) {
    super(kc);
    this.namespace = opts.namespace;
    this.log = opts.log;
  }

  /** Starts the caches now (otherwise on the first read). Resolves once they are synced. */
  async start(): Promise<void> {
    if (this.stopped) return; // informers started now would have nobody to stop them
    await Promise.all(CACHED.map((k) => this.cache(k).started));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    await Promise.all([...this.caches.values()].map((c) => c.informer.stop()));
    for (const c of this.caches.values()) for (const w of c.waiters) w();
  }

  /**
   * The informer this client reads `kind` from (started on first use), for other readers of the same objects in this
   * process, e.g. the BBS event hub: one watch per kind. Stopped by stop().
   */
  informerOf(kind: DiegoKind): Informer<KubernetesObject> | undefined {
    return this.stopped || !isCached(kind) ? undefined : this.cache(kind).informer;
  }

  private cache(kind: CachedKind): Cache {
    const c = this.caches.get(kind);
    if (c) return c;
    const informer = createInformer<KubernetesObject>(this.kc, {
      path: resourcePath(kind, this.namespace),
      name: `bbs-${kind.toLowerCase()}s`,
      ...(this.log ? { logger: this.log } : {}),
    });
    const entry: Cache = {
      informer,
      started: Promise.resolve(),
      seen: 0n,
      written: 0n,
      deleting: new Set(),
      waiters: new Set(),
    };
    const saw = (o: KubernetesObject, gone: boolean) => {
      const rv = rvOf(o);
      if (rv !== undefined && rv > entry.seen) entry.seen = rv;
      if (gone || o.metadata?.deletionTimestamp) entry.deleting.delete(o.metadata?.name ?? '');
      for (const w of entry.waiters) w();
    };
    informer.on('add', (o) => saw(o, false));
    informer.on('update', (o) => saw(o, false));
    informer.on('delete', (o) => saw(o, true));
    entry.started = informer.start().catch((err: unknown) => this.log?.warn({ err, kind }, 'BBS read cache'));
    this.caches.set(kind, entry);
    return entry;
  }

  /** The cache of `kind` once it has caught up with this client's writes; undefined to ask the API server. */
  private async caughtUp(kind: DiegoKind, namespace: string | undefined): Promise<Cache | undefined> {
    if (this.stopped || !isCached(kind) || namespace !== this.namespace) return undefined;
    const c = this.cache(kind);
    if (!c.informer.synced) return undefined; // still listing: the API server answers meanwhile
    const current = () => c.seen >= c.written && c.deleting.size === 0;
    if (current()) return c;
    const ok = await new Promise<boolean>((resolve) => {
      const timer = setTimeout(() => done(false), CATCH_UP_MS);
      const done = (v: boolean) => {
        clearTimeout(timer);
        c.waiters.delete(check);
        resolve(v);
      };
      const check = () => {
        if (current()) done(true);
        else if (this.stopped) done(false);
      };
      c.waiters.add(check);
    });
    return ok ? c : undefined;
  }

  private wrote(kind: DiegoKind, obj: KubernetesObject): void {
    if (!isCached(kind)) return;
    const rv = rvOf(obj);
    const c = this.caches.get(kind);
    if (c && rv !== undefined && rv > c.written) c.written = rv;
  }

  override async get<K extends DiegoKind>(kind: K, namespace: string | undefined, name: string): Promise<KindMap[K]> {
    const c = await this.caughtUp(kind, namespace);
    if (!c) {
      this.reads.api++;
      return super.get(kind, namespace, name);
    }
    this.reads.cache++;
    const obj = c.informer.get(namespace, name);
    if (!obj) {
      throw new KubeError(404, { reason: 'NotFound', message: `${kind} "${name}" not found` }, `GET ${kind}`);
    }
    return obj as KindMap[K];
  }

  override async list<K extends DiegoKind>(
    kind: K,
    opts: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<KindMap[K][]> {
    const fields = parseSelector(opts.fieldSelector);
    const labels = parseSelector(opts.labelSelector);
    // Only equality on the fields the cache can read (metadata.name, metadata.namespace, spec.<scalar>).
    const readable = fields?.every((r) => /^(metadata\.(name|namespace)|spec\.[^.]+)$/.test(r.key));
    const c = fields && labels && readable ? await this.caughtUp(kind, opts.namespace) : undefined;
    if (!c || !fields || !labels) {
      this.reads.api++;
      return super.list(kind, opts);
    }
    this.reads.cache++;
    const out: KindMap[K][] = [];
    for (const obj of c.informer.list()) {
      if (!fields.every((r) => fieldOf(obj, r.key) === r.value)) continue;
      if (!labels.every((r) => obj.metadata?.labels?.[r.key] === r.value)) continue;
      out.push(obj as KindMap[K]);
    }
    // In the API server's order (by name, as etcd keys sort): callers that report per record see the same order.
    return out.sort((a, b) => {
      const x = a.metadata.name ?? '';
      const y = b.metadata.name ?? '';
      return x < y ? -1 : x > y ? 1 : 0;
    });
  }

  override async create<K extends DiegoKind>(
    kind: K,
    obj: Parameters<DiegoClient['create']>[1] & Partial<Pick<KindMap[K], 'apiVersion' | 'kind'>>,
  ): Promise<KindMap[K]> {
    const created = await super.create(kind, obj as never);
    this.wrote(kind, created);
    return created;
  }

  override async patch<K extends DiegoKind>(
    kind: K,
    ref: ObjectRef,
    patch: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> },
  ): Promise<KindMap[K]> {
    const patched = await super.patch(kind, ref, patch);
    this.wrote(kind, patched);
    return patched;
  }

  override async patchStatus<K extends DiegoKind>(
    kind: K,
    ref: ObjectRef,
    status: Record<string, unknown>,
  ): Promise<KindMap[K]> {
    const patched = await super.patchStatus(kind, ref, status);
    this.wrote(kind, patched);
    return patched;
  }

  override async delete(kind: DiegoKind, ref: ObjectRef): Promise<void> {
    await super.delete(kind, ref);
    if (!isCached(kind) || ref.namespace !== this.namespace) return;
    const c = this.caches.get(kind);
    // Still in the cache as it was: reads wait until it is gone or deleting (a finalizer holds it).
    const cached = c?.informer.get(ref.namespace, ref.name);
    if (c && cached && !cached.metadata?.deletionTimestamp) c.deleting.add(ref.name);
  }
}
