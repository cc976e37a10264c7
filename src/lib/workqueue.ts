// A de-duplicating, rate-limited work queue in the shape of client-go's workqueue, as controller-runtime
// uses it: keys (not events) go in, so a burst of changes to one object costs one reconcile.
import { Counter, Gauge, Histogram, type Registry } from 'prom-client';
import type { Logger } from 'pino';
import { createLogger } from './log.ts';

export interface RateLimiterOptions {
  /** First retry delay of an item; doubles with each failure. Default 5 ms. */
  baseDelayMs?: number;
  /** Cap of the per-item delay. Default 1000 s. */
  maxDelayMs?: number;
  /** Overall retry rate (token bucket refill per second). Default 10. */
  qps?: number;
  /** Token bucket size. Default 100. */
  burst?: number;
}

export type ReconcileResult = void | { requeueAfterMs?: number };

/** prom-client metrics a queue reports to, labelled by queue name (client-go's `workqueue_*` names). */
export interface QueueMetrics {
  depth: Gauge<'name'>;
  adds: Counter<'name'>;
  retries: Counter<'name'>;
  queueDuration: Histogram<'name'>;
  workDuration: Histogram<'name'>;
}

/** Creates (or reuses, so every queue of a process can call it) the workqueue metrics in `registry`. */
export function createQueueMetrics(registry: Registry): QueueMetrics {
  const reuse = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();
  const registers = [registry];
  const labelNames = ['name'] as const;
  const buckets = [0.001, 0.005, 0.01, 0.05, 0.1, 0.5, 1, 5, 10, 60];
  return {
    depth: reuse(
      'workqueue_depth',
      () => new Gauge({ name: 'workqueue_depth', help: 'Current depth of the work queue', labelNames, registers }),
    ),
    adds: reuse(
      'workqueue_adds_total',
      () => new Counter({ name: 'workqueue_adds_total', help: 'Keys added to the work queue', labelNames, registers }),
    ),
    retries: reuse(
      'workqueue_retries_total',
      () => new Counter({ name: 'workqueue_retries_total', help: 'Rate-limited re-adds', labelNames, registers }),
    ),
    queueDuration: reuse(
      'workqueue_queue_duration_seconds',
      () =>
        new Histogram({
          name: 'workqueue_queue_duration_seconds',
          help: 'Time a key waits in the queue before it is processed',
          labelNames,
          buckets,
          registers,
        }),
    ),
    workDuration: reuse(
      'workqueue_work_duration_seconds',
      () =>
        new Histogram({
          name: 'workqueue_work_duration_seconds',
          help: 'Time spent processing a key',
          labelNames,
          buckets,
          registers,
        }),
    ),
  };
}

/**
 * client-go's DefaultControllerRateLimiter: the larger of a per-item exponential backoff and the delay an
 * overall token bucket imposes, so one hot failing key backs off and many failing keys cannot storm.
 */
export class RateLimiter {
  private readonly baseDelayMs: number;
  private readonly maxDelayMs: number;
  private readonly qps: number;
  private readonly burst: number;
  private readonly failures = new Map<string, number>();
  private tokens: number;
  private last = Date.now();

  constructor(opts: RateLimiterOptions = {}) {
    this.baseDelayMs = opts.baseDelayMs ?? 5;
    this.maxDelayMs = opts.maxDelayMs ?? 1_000_000;
    this.qps = opts.qps ?? 10;
    this.burst = opts.burst ?? 100;
    this.tokens = this.burst;
  }

  /** The delay before `key` may be retried; counts one more failure for it. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    const itemDelay = Math.min(this.baseDelayMs * 2 ** n, this.maxDelayMs);
    return Math.max(itemDelay, this.reserveToken());
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  numRequeues(key: string): number {
    return this.failures.get(key) ?? 0;
  }

  // Like golang.org/x/time/rate Reserve(): take a token now, possibly going into debt, and wait off the debt.
  private reserveToken(): number {
    const now = Date.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.qps);
    this.last = now;
    this.tokens -= 1;
    return this.tokens >= 0 ? 0 : (-this.tokens / this.qps) * 1000;
  }
}

/** A FIFO with O(1) push and shift (Array#shift is O(n), which hurts with 100k keys). */
class Fifo<K> {
  private items: K[] = [];
  private head = 0;
  get length(): number {
    return this.items.length - this.head;
  }
  push(k: K): void {
    this.items.push(k);
  }
  shift(): K | undefined {
    if (this.head >= this.items.length) return undefined;
    const k = this.items[this.head++];
    if (this.head > 1024 && this.head * 2 > this.items.length) {
      this.items = this.items.slice(this.head);
      this.head = 0;
    }
    return k;
  }
}

export interface WorkQueueOptions {
  name?: string;
  rateLimiter?: RateLimiterOptions;
  logger?: Logger;
  metrics?: QueueMetrics;
}

export class WorkQueue<K extends string = string> {
  readonly name: string;
  private readonly limiter: RateLimiter;
  private readonly log: Logger;
  private readonly metrics: QueueMetrics | undefined;
  private readonly queue = new Fifo<K>();
  /** Keys that need processing: queued, or added again while being processed. */
  private readonly dirty = new Set<K>();
  private readonly processing = new Set<K>();
  /** Delayed adds, one timer per key (the earliest wins). */
  private readonly waiting = new Map<K, { at: number; timer: NodeJS.Timeout }>();
  private readonly addedAt = new Map<K, number>();
  private readonly idleWorkers: Array<() => void> = [];
  private readonly workers: Promise<void>[] = [];
  private shuttingDown = false;

  constructor(opts: WorkQueueOptions = {}) {
    this.name = opts.name ?? 'workqueue';
    this.limiter = new RateLimiter(opts.rateLimiter);
    this.log = (opts.logger ?? createLogger()).child({ component: 'workqueue', queue: this.name });
    this.metrics = opts.metrics;
  }

  add(key: K): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.metrics?.adds.inc({ name: this.name });
    this.dirty.add(key);
    if (!this.addedAt.has(key)) this.addedAt.set(key, performance.now());
    // A key being processed goes back in line when its worker calls done().
    if (this.processing.has(key)) return;
    this.queue.push(key);
    this.updateDepth();
    this.idleWorkers.shift()?.();
  }

  addAfter(key: K, delayMs: number): void {
    if (this.shuttingDown) return;
    if (delayMs <= 0) return this.add(key);
    const at = Date.now() + delayMs;
    const pending = this.waiting.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.waiting.delete(key);
      this.add(key);
    }, delayMs);
    this.waiting.set(key, { at, timer });
  }

  addRateLimited(key: K): void {
    if (this.shuttingDown) return;
    this.metrics?.retries.inc({ name: this.name });
    this.addAfter(key, this.limiter.when(key));
  }

  forget(key: K): void {
    this.limiter.forget(key);
  }

  numRequeues(key: K): number {
    return this.limiter.numRequeues(key);
  }

  /** Keys ready to be processed (not counting delayed adds or keys in flight). */
  get length(): number {
    return this.queue.length;
  }

  /**
   * Runs `concurrency` workers until shutDown(); a handler error → log + addRateLimited; success → forget
   * (+ addAfter if requeueAfterMs). The same key is never processed concurrently.
   */
  run(handler: (key: K) => Promise<ReconcileResult>, concurrency = 1): void {
    for (let i = 0; i < concurrency; i++) this.workers.push(this.worker(handler));
  }

  /** Stops taking work, drops delayed adds and waits for in-flight handlers. */
  async shutDown(): Promise<void> {
    this.shuttingDown = true;
    for (const { timer } of this.waiting.values()) clearTimeout(timer);
    this.waiting.clear();
    for (const wake of this.idleWorkers.splice(0)) wake();
    await Promise.all(this.workers);
  }

  private async worker(handler: (key: K) => Promise<ReconcileResult>): Promise<void> {
    for (;;) {
      const key = await this.next();
      if (key === undefined) return;
      const started = performance.now();
      try {
        const result = await handler(key);
        this.forget(key);
        if (result?.requeueAfterMs !== undefined) this.addAfter(key, result.requeueAfterMs);
      } catch (err) {
        // A replica that stopped leading refuses its own writes: expected while it stands down, not an error.
        if (isFenced(err)) this.log.debug({ key, reason: (err as Error).message }, 'writes refused: not leading');
        else this.log.error({ err, key, requeues: this.numRequeues(key) }, 'Reconciler error');
        this.addRateLimited(key);
      } finally {
        this.metrics?.workDuration.observe({ name: this.name }, (performance.now() - started) / 1000);
        this.done(key);
      }
    }
  }

  /** The next key to process, or undefined once the queue shuts down. */
  private async next(): Promise<K | undefined> {
    while (this.queue.length === 0 && !this.shuttingDown) {
      await new Promise<void>((resolve) => this.idleWorkers.push(resolve));
    }
    if (this.shuttingDown) return undefined;
    const key = this.queue.shift() as K;
    this.processing.add(key);
    this.dirty.delete(key);
    const addedAt = this.addedAt.get(key);
    this.addedAt.delete(key);
    if (addedAt !== undefined)
      this.metrics?.queueDuration.observe({ name: this.name }, (performance.now() - addedAt) / 1000);
    this.updateDepth();
    return key;
  }

  private done(key: K): void {
    this.processing.delete(key);
    if (this.dirty.has(key) && !this.shuttingDown) {
      this.queue.push(key);
      this.updateDepth();
      this.idleWorkers.shift()?.();
    }
  }

  private updateDepth(): void {
    this.metrics?.depth.set({ name: this.name }, this.queue.length);
  }
}

/** A FencedError (resources.ts), or an AggregateError made only of them (a fan-out refused as a whole). */
function isFenced(err: unknown): boolean {
  if (err instanceof AggregateError) return err.errors.length > 0 && err.errors.every(isFenced);
  return err instanceof Error && err.name === 'FencedError';
}
