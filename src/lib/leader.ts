// Leader election on a coordination.k8s.io/v1 Lease: what Diego does with Locket locks to keep one
// active BBS/auctioneer. The algorithm is client-go's (tools/leaderelection): acquire a lease that is
// absent, ours, released or expired; renew it every retryPeriod; stop leading the moment renewals have
// failed for renewDeadline, which is shorter than the leaseDuration others wait for.
import type { KubeConfig } from '@kubernetes/client-node';
import { setTimeout as sleep } from 'node:timers/promises';
import { Gauge } from 'prom-client';
import type { Logger } from 'pino';
import { KubeError, rawRequest } from './kube.ts';
import { createLogger } from './log.ts';
import { registry } from './metrics.ts';
import { microTime } from './lease.ts';

export interface LeaderElectionOptions {
  namespace: string;
  name: string;
  /** Unique per replica, e.g. the pod name. */
  identity: string;
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  logger?: Logger;
}

export interface LeaderCallbacks {
  /** Start work; stop it when `signal` aborts. */
  onStartedLeading: (signal: AbortSignal) => void | Promise<void>;
  onStoppedLeading?: () => void;
  /** Called whenever the observed holder changes (ourselves included). */
  onNewLeader?: (identity: string) => void;
}

interface Lease {
  apiVersion: 'coordination.k8s.io/v1';
  kind: 'Lease';
  metadata: { name: string; namespace: string; resourceVersion?: string };
  spec?: {
    holderIdentity?: string | null;
    leaseDurationSeconds?: number | null;
    acquireTime?: string | null;
    renewTime?: string | null;
    leaseTransitions?: number | null;
  };
}

/** client-go's name, so dashboards built for Go controllers work. */
const leaderGauge = new Gauge({
  name: 'leader_election_master_status',
  help: '1 while this process holds the named lease, else 0',
  labelNames: ['name'] as const,
  registers: [registry],
});

/** metav1.MicroTime, "2006-01-02T15:04:05.000000Z". */
export { microTime };

type Attempt = { outcome: 'acquired'; lease: Lease } | { outcome: 'held'; holder: string };

export class LeaderElector {
  private readonly kc: KubeConfig;
  private readonly opts: Required<Omit<LeaderElectionOptions, 'logger'>>;
  private readonly log: Logger;
  private readonly path: string;
  /** A hung request must not outlive the renew deadline (rawRequest has no timeout of its own). */
  private readonly requestTimeoutMs: number;
  private readonly stopper = new AbortController();
  private callbacks: LeaderCallbacks | undefined;
  private loop: Promise<void> | undefined;
  /** The lease as we last wrote it; its resourceVersion guards the next write. */
  private lease: Lease | undefined;
  private leading = false;
  private leadership: AbortController | undefined;
  private deadline: NodeJS.Timeout | undefined;
  /** When the last successful acquire/renew began: leadership is valid until this + renewDeadline. */
  private renewedAt = 0;
  private observedHolder = '';

  constructor(kc: KubeConfig, opts: LeaderElectionOptions) {
    this.kc = kc;
    this.opts = {
      namespace: opts.namespace,
      name: opts.name,
      identity: opts.identity,
      leaseDurationMs: opts.leaseDurationMs ?? 15_000,
      renewDeadlineMs: opts.renewDeadlineMs ?? 10_000,
      retryPeriodMs: opts.retryPeriodMs ?? 2_000,
    };
    const { leaseDurationMs, renewDeadlineMs, retryPeriodMs } = this.opts;
    if (!opts.identity) throw new Error('leader election needs a non-empty identity');
    // The margin between renewDeadline and leaseDuration is what keeps two leaders from overlapping.
    if (!(leaseDurationMs > renewDeadlineMs && renewDeadlineMs > retryPeriodMs && retryPeriodMs > 0)) {
      throw new Error('leader election needs leaseDuration > renewDeadline > retryPeriod > 0');
    }
    this.requestTimeoutMs = Math.max(100, renewDeadlineMs / 2);
    leaderGauge.set({ name: opts.name }, 0);
    this.path = `/apis/coordination.k8s.io/v1/namespaces/${opts.namespace}/leases`;
    this.log = (opts.logger ?? createLogger()).child({
      component: 'leader-election',
      lease: `${opts.namespace}/${opts.name}`,
      identity: opts.identity,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /**
   * Why this process may not write as the leader now, or undefined when it may: not leading, or its last
   * successful renewal began more than renewDeadline ago. Read from the clock at each call (not from a timer,
   * which a starved process fires late), so a client can fence every write with it.
   */
  fenceReason(now = Date.now()): string | undefined {
    if (!this.leading) return 'this replica is not the leader';
    const left = this.renewedAt + this.opts.renewDeadlineMs - now;
    return left > 0
      ? undefined
      : `the leader lease was last renewed ${now - this.renewedAt} ms ago (renew deadline ${this.opts.renewDeadlineMs} ms)`;
  }

  /**
   * Campaigns until stop(); calls onStartedLeading with an AbortSignal that aborts the moment leadership
   * is lost (renew failed past renewDeadline, or stop()). After a loss it campaigns again.
   */
  run(callbacks: LeaderCallbacks): void {
    if (this.loop) throw new Error('LeaderElector.run() was already called');
    this.callbacks = callbacks;
    this.loop = this.campaign();
  }

  /**
   * Stops leading at once, then releases the lease (if held) so another replica can take it without waiting.
   * With release: false the lease is left to expire, as when a process dies.
   */
  async stop(opts: { release?: boolean } = {}): Promise<void> {
    this.stopper.abort();
    if (this.leading) this.stopLeading('stopped');
    await this.loop;
    if (opts.release === false || this.lease?.spec?.holderIdentity !== this.opts.identity) return;
    const released: Lease = {
      ...this.lease,
      spec: {
        ...this.lease.spec,
        holderIdentity: '',
        leaseDurationSeconds: 1,
        acquireTime: microTime(new Date()),
        renewTime: microTime(new Date()),
      },
    };
    try {
      this.lease = await this.withTimeout(this.write('PUT', released));
      this.log.info('Released the lease');
    } catch (err) {
      // 409: someone else wrote it since, so it is not ours to release.
      this.log.warn({ err }, 'Could not release the lease; others take it when it expires');
    }
  }

  private async campaign(): Promise<void> {
    const signal = this.stopper.signal;
    while (!signal.aborted) {
      const attemptAt = Date.now();
      try {
        const attempt = await this.withTimeout(this.tryAcquireOrRenew(new Date(attemptAt)));
        if (signal.aborted) {
          // stop() came while this write was on its way: it releases the lease as written (with the version it
          // replaced, the release would fail with a 409 and leave the standby waiting out the whole lease).
          if (attempt.outcome === 'acquired') this.lease = attempt.lease;
          break;
        }
        if (attempt.outcome === 'acquired') {
          this.lease = attempt.lease;
          this.observe(this.opts.identity);
          if (!this.leading) this.startLeading();
          this.armDeadline(attemptAt);
        } else {
          this.observe(attempt.holder);
          this.lease = undefined;
          if (this.leading) this.stopLeading(`lease taken over by ${attempt.holder}`);
        }
      } catch (err) {
        if (signal.aborted) break;
        if (err instanceof KubeError && err.code === 409) {
          this.lease = undefined; // lost a write race; read the lease afresh next time
          this.log.debug('Lease changed under us');
        } else {
          this.log.warn({ err, leading: this.leading }, 'Failed to acquire or renew the lease');
        }
      }
      await sleep(this.opts.retryPeriodMs, undefined, { signal }).catch(() => undefined); // aborted by stop()
    }
  }

  private async tryAcquireOrRenew(now: Date): Promise<Attempt> {
    const { identity, leaseDurationMs, name, namespace } = this.opts;
    const leaseDurationSeconds = Math.ceil(leaseDurationMs / 1000);
    // Fast path while leading: write over our own last version; a 409 sends us to the slow path.
    if (this.leading && this.lease) {
      const spec = { ...this.lease.spec, holderIdentity: identity, leaseDurationSeconds, renewTime: microTime(now) };
      return { outcome: 'acquired', lease: await this.write('PUT', { ...this.lease, spec }) };
    }
    const current = await this.read();
    if (!current) {
      const lease: Lease = {
        apiVersion: 'coordination.k8s.io/v1',
        kind: 'Lease',
        metadata: { name, namespace },
        spec: {
          holderIdentity: identity,
          leaseDurationSeconds,
          acquireTime: microTime(now),
          renewTime: microTime(now),
          leaseTransitions: 0,
        },
      };
      return { outcome: 'acquired', lease: await this.write('POST', lease) };
    }
    const spec = current.spec ?? {};
    const holder = spec.holderIdentity ?? '';
    if (holder && holder !== identity && !expired(spec, now)) return { outcome: 'held', holder };
    const ours = holder === identity;
    const next: Lease = {
      ...current,
      spec: {
        ...spec,
        holderIdentity: identity,
        leaseDurationSeconds,
        acquireTime: ours ? (spec.acquireTime ?? microTime(now)) : microTime(now),
        renewTime: microTime(now),
        leaseTransitions: (spec.leaseTransitions ?? 0) + (ours ? 0 : 1),
      },
    };
    if (!ours) this.log.info({ previousHolder: holder || undefined }, 'Taking over the lease');
    return { outcome: 'acquired', lease: await this.write('PUT', next) };
  }

  private async read(): Promise<Lease | undefined> {
    try {
      return await rawRequest<Lease>(this.kc, { method: 'GET', path: `${this.path}/${this.opts.name}` });
    } catch (err) {
      if (err instanceof KubeError && err.code === 404) return undefined;
      throw err;
    }
  }

  /** POST creates; PUT replaces only if metadata.resourceVersion is still current (else 409). */
  private write(method: 'POST' | 'PUT', lease: Lease): Promise<Lease> {
    const path = method === 'POST' ? this.path : `${this.path}/${this.opts.name}`;
    return rawRequest<Lease>(this.kc, { method, path, body: lease });
  }

  private startLeading(): void {
    this.leading = true;
    leaderGauge.set({ name: this.opts.name }, 1);
    this.leadership = new AbortController();
    this.log.info('Started leading');
    try {
      const result = this.callbacks?.onStartedLeading(this.leadership.signal);
      if (result instanceof Promise) result.catch((err: unknown) => this.log.error({ err }, 'onStartedLeading failed'));
    } catch (err) {
      this.log.error({ err }, 'onStartedLeading failed');
    }
  }

  private stopLeading(reason: string): void {
    this.leading = false;
    leaderGauge.set({ name: this.opts.name }, 0);
    clearTimeout(this.deadline);
    this.leadership?.abort(new Error(`leadership lost: ${reason}`));
    this.log.warn({ reason }, 'Stopped leading');
    try {
      this.callbacks?.onStoppedLeading?.();
    } catch (err) {
      this.log.error({ err }, 'onStoppedLeading failed');
    }
  }

  /** Gives up leadership renewDeadline after the last successful renewal began, even if a request hangs. */
  private armDeadline(renewedAt: number): void {
    this.renewedAt = renewedAt;
    clearTimeout(this.deadline);
    this.deadline = setTimeout(
      () => this.stopLeading('renew deadline exceeded'),
      renewedAt + this.opts.renewDeadlineMs - Date.now(),
    );
  }

  private observe(holder: string): void {
    if (!holder || holder === this.observedHolder) return;
    this.observedHolder = holder;
    this.log.info({ leader: holder }, 'New leader observed');
    try {
      this.callbacks?.onNewLeader?.(holder);
    } catch (err) {
      this.log.error({ err }, 'onNewLeader failed');
    }
  }

  private withTimeout<T>(p: Promise<T>): Promise<T> {
    let timer: NodeJS.Timeout | undefined;
    const timeout = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () => reject(new Error(`lease request timed out after ${this.requestTimeoutMs} ms`)),
        this.requestTimeoutMs,
      );
    });
    return Promise.race([p, timeout]).finally(() => clearTimeout(timer));
  }
}

/** Expired when renewTime + leaseDurationSeconds has passed (assumes replicas' clocks roughly agree). */
function expired(spec: NonNullable<Lease['spec']>, now: Date): boolean {
  const renewed = Date.parse(spec.renewTime ?? spec.acquireTime ?? '');
  if (Number.isNaN(renewed)) return true;
  return renewed + (spec.leaseDurationSeconds ?? 0) * 1000 < now.getTime();
}
