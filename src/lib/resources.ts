// A small typed client for the Diego custom resources, on raw JSON (see rawRequest). Every state change is a
// merge patch that carries the object's resourceVersion, so a concurrent writer makes it fail with 409: the
// compare-and-swap Diego gets from SQL.
import type { KubeConfig } from '@kubernetes/client-node';
import { GROUP, type KindInfo, KINDS, VERSION } from '../crds/kinds.ts';
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { FIELD_MANAGER, KubeError, rawRequest } from './kube.ts';
import type { TokenBucket } from './rate-limit.ts';

export type DiegoKind = KindInfo['kind'];
export interface KindMap {
  DesiredLRP: IDesiredLRP;
  ActualLRP: IActualLRP;
  Task: ITask;
  Cell: ICell;
}

const MERGE = 'application/merge-patch+json';

export function kindInfoOf(kind: DiegoKind): KindInfo {
  const info = KINDS.find((k) => k.kind === kind);
  if (!info) throw new Error(`unknown kind ${kind}`);
  return info;
}

/** REST path of a kind, optionally of one object and a subresource. */
export function resourcePath(kind: DiegoKind, namespace?: string, name?: string, sub?: 'status' | 'scale'): string {
  const info = kindInfoOf(kind);
  const ns = info.scope === 'Namespaced' && namespace ? `/namespaces/${namespace}` : '';
  return `/apis/${GROUP}/${VERSION}${ns}/${info.plural}${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;
}

export const isConflict = (err: unknown) => err instanceof KubeError && err.code === 409;
export const isNotFound = (err: unknown) => err instanceof KubeError && err.code === 404;
/** The namespace is being deleted: nothing can be created in it, and nothing needs to be. */
export const isNamespaceTerminating = (err: unknown) =>
  err instanceof KubeError && err.code === 403 && JSON.stringify(err.body).includes('NamespaceTerminating');
export const isAlreadyExists = (err: unknown) =>
  isConflict(err) &&
  (err as KubeError).body !== undefined &&
  (err as { body: { reason?: string } }).body.reason === 'AlreadyExists';

export interface ObjectRef {
  namespace?: string;
  name: string;
  /** The resourceVersion the change is based on; the write fails with 409 if the object moved on. */
  resourceVersion?: string;
}

/** A write refused before it was sent: this process may no longer write (a leader past its renew deadline). */
export class FencedError extends Error {
  constructor(reason: string) {
    super(`write refused: ${reason}`);
    this.name = 'FencedError';
  }
}

export class DiegoClient {
  readonly kc: KubeConfig;
  /**
   * Asked before every write: a reason means the write must not go out (it throws FencedError). A leader's
   * controllers set it to their lease's validity, so a leader that lost its lease (or could not renew it in time,
   * e.g. starved of CPU) stops writing at once, whatever its timers say.
   */
  fence?: () => string | undefined;
  /**
   * The client-side limit on this client's requests (--kube-api-qps, --kube-api-burst); none if absent. A write
   * waits for its turn before the fence is asked, so a write queued behind the limit still never goes out late.
   */
  limiter?: TokenBucket;
  /** Called with how long each request waited for the limiter (the rate limiter metric). */
  onLimited?: (ms: number) => void;
  constructor(kc: KubeConfig) {
    this.kc = kc;
  }

  async #turn(): Promise<void> {
    if (!this.limiter) return;
    const waited = await this.limiter.take();
    this.onLimited?.(waited);
  }

  async #fenced(): Promise<void> {
    await this.#turn();
    const why = this.fence?.();
    if (why) throw new FencedError(why);
  }

  async get<K extends DiegoKind>(kind: K, namespace: string | undefined, name: string): Promise<KindMap[K]> {
    await this.#turn();
    return rawRequest(this.kc, { method: 'GET', path: resourcePath(kind, namespace, name) });
  }

  async list<K extends DiegoKind>(
    kind: K,
    opts: { namespace?: string; labelSelector?: string; fieldSelector?: string } = {},
  ): Promise<KindMap[K][]> {
    const items: KindMap[K][] = [];
    let cont: string | undefined;
    do {
      const q = new URLSearchParams({ limit: '500' });
      if (opts.labelSelector) q.set('labelSelector', opts.labelSelector);
      if (opts.fieldSelector) q.set('fieldSelector', opts.fieldSelector);
      if (cont) q.set('continue', cont);
      await this.#turn();
      const page = await rawRequest<{ items: KindMap[K][]; metadata: { continue?: string } }>(this.kc, {
        method: 'GET',
        path: `${resourcePath(kind, opts.namespace)}?${q.toString()}`,
      });
      items.push(...page.items);
      cont = page.metadata.continue || undefined;
    } while (cont);
    return items;
  }

  async create<K extends DiegoKind>(
    kind: K,
    obj: Omit<KindMap[K], 'apiVersion' | 'kind'> & Partial<Pick<KindMap[K], 'apiVersion' | 'kind'>>,
  ): Promise<KindMap[K]> {
    await this.#fenced();
    return rawRequest(this.kc, {
      method: 'POST',
      path: `${resourcePath(kind, obj.metadata.namespace)}?fieldManager=${FIELD_MANAGER}`,
      body: { apiVersion: `${GROUP}/${VERSION}`, kind, ...obj },
    });
  }

  /** Merge-patches metadata/spec; with ref.resourceVersion it is a compare-and-swap. */
  patch<K extends DiegoKind>(
    kind: K,
    ref: ObjectRef,
    patch: { metadata?: Record<string, unknown>; spec?: Record<string, unknown> },
  ): Promise<KindMap[K]> {
    return this.mergePatch(kind, ref, patch);
  }

  /** Merge-patches status (status subresource); with ref.resourceVersion it is a compare-and-swap. */
  patchStatus<K extends DiegoKind>(kind: K, ref: ObjectRef, status: Record<string, unknown>): Promise<KindMap[K]> {
    return this.mergePatch(kind, ref, { status }, 'status');
  }

  async delete(kind: DiegoKind, ref: ObjectRef): Promise<void> {
    await this.#fenced();
    const body = ref.resourceVersion ? { preconditions: { resourceVersion: ref.resourceVersion } } : undefined;
    try {
      await rawRequest(this.kc, { method: 'DELETE', path: resourcePath(kind, ref.namespace, ref.name), body });
    } catch (err) {
      if (!isNotFound(err)) throw err;
    }
  }

  private async mergePatch<K extends DiegoKind>(
    kind: K,
    ref: ObjectRef,
    body: Record<string, unknown>,
    sub?: 'status',
  ): Promise<KindMap[K]> {
    await this.#fenced();
    const withRv = ref.resourceVersion
      ? {
          ...body,
          metadata: {
            ...((body.metadata as Record<string, unknown> | undefined) ?? {}),
            resourceVersion: ref.resourceVersion,
          },
        }
      : body;
    return rawRequest(this.kc, {
      method: 'PATCH',
      path: `${resourcePath(kind, ref.namespace, ref.name, sub)}?fieldManager=${FIELD_MANAGER}`,
      body: withRv,
      contentType: MERGE,
    });
  }
}

/** The ref of an object at its current resourceVersion (for a compare-and-swap write). */
export function refOf(obj: { metadata: { namespace?: string; name?: string; resourceVersion?: string } }): ObjectRef {
  return {
    namespace: obj.metadata.namespace,
    name: obj.metadata.name ?? '',
    resourceVersion: obj.metadata.resourceVersion,
  };
}

/**
 * Runs a read-check-write step again when its compare-and-swap loses to another writer: the step re-reads,
 * so its checks (e.g. the state it may transition from) are made against the newest version each time.
 */
export async function retryOnConflict<T>(step: () => Promise<T>, attempts = 5): Promise<T> {
  for (let i = 1; ; i++) {
    try {
      return await step();
    } catch (err) {
      if (!isConflict(err) || i >= attempts) throw err;
    }
  }
}
