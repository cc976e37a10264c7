// Runs the converger, the auctioneer and the task controller on one shared cache, only while this process
// holds the leader Lease (Diego keeps one active BBS and auctioneer through Locket locks).
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { hostname } from 'node:os';
import type { Logger } from 'pino';
import { withDefaults } from '../lib/options.ts';
import type { AuctionConfig } from '../auction/index.ts';
import { EventRecorder } from '../lib/events.ts';
import { LeaderElector } from '../lib/leader.ts';
import { rawRequest } from '../lib/kube.ts';
import { type RateLimit, TokenBucket } from '../lib/rate-limit.ts';
import { metrics } from './metrics.ts';
import { DiegoClient, isNotFound } from '../lib/resources.ts';
import { Auctioneer } from './auctioneer.ts';
import { CellReady } from './cell-ready.ts';
import { EndpointSlices } from './endpoint-slices.ts';
import { DiegoCache, type Lease } from './cache.ts';
import { Converger } from './converger.ts';
import { CellPresence } from './presence.ts';
import { RecentDecisions } from './auction-decisions.ts';
import { TaskController } from './tasks.ts';

export const DEFAULT_SYSTEM_NAMESPACE = 'diego-system';
export const LEADER_LEASE_NAME = 'diego-operator-controller';
/** Short enough that a standby takes over within Diego's 15 s lock TTL even after a retry period. */
export const DEFAULT_LEADER_LEASE_MS = 12_000;

/**
 * The controllers' default client-side limit: high enough not to slow placement (one write per new instance), low
 * enough that a runaway loop cannot flood the API server. Leader-election and presence Leases are not limited.
 */
export const DEFAULT_CLIENT_RATE_LIMIT: RateLimit = Object.freeze({ qps: 1000, burst: 2000 });

export interface ManagerOptions {
  kc: KubeConfig;
  log: Logger;
  /** Where cells keep their presence Leases and the controller its leader Lease. */
  systemNamespace?: string;
  /** Off for single-process setups (tests); on in a cluster. */
  leaderElection?: boolean;
  identity?: string;
  leaseDurationMs?: number;
  convergeIntervalMs?: number;
  auction?: Partial<AuctionConfig>;
  /** The controllers' client-side request limit (default DEFAULT_CLIENT_RATE_LIMIT; qps 0: none). */
  clientRateLimit?: RateLimit;
  task?: { expirePendingMs?: number; expireCompletedMs?: number; kickMs?: number };
  /** A headless Service and EndpointSlices for each routed DesiredLRP (endpoint-slices.ts). */
  endpointSlices?: boolean;
}

interface Running {
  cache: DiegoCache;
  presence: CellPresence;
  converger: Converger;
  auctioneer: Auctioneer;
  tasks: TaskController;
  endpoints?: EndpointSlices;
  cellReady: CellReady;
}

export class Manager {
  private readonly o: ManagerOptions & { systemNamespace: string; identity: string };
  private readonly log: Logger;
  private elector?: LeaderElector;
  private running?: Running;
  private leading: Promise<void> = Promise.resolve();
  /** Aborted by stop(): a start() still under way starts nothing more (no elector, no controllers). */
  private lifetime = new AbortController();
  /** The stop of the controllers under way (stop() waits for it, also when a loss of leadership began it). */
  private stopping: Promise<void> = Promise.resolve();
  /** The auctioneer's recent decisions, across leadership terms (the web view shows them). */
  readonly decisions = new RecentDecisions(100);

  constructor(opts: ManagerOptions) {
    this.o = withDefaults(
      { systemNamespace: DEFAULT_SYSTEM_NAMESPACE, identity: `${hostname()}-${process.pid}` },
      opts,
    );
    this.log = opts.log.child({ component: 'manager', identity: this.o.identity });
  }

  get isLeader(): boolean {
    return this.running !== undefined;
  }

  /** The cells the controllers see as present (empty while not leading): what the auction may place work on. */
  presentCells(): string[] {
    return this.running?.presence.presentCells() ?? [];
  }

  /** The live controllers (while leading), for tests and the dev role. */
  get controllers(): Running | undefined {
    return this.running;
  }

  async start(): Promise<void> {
    const lifetime = (this.lifetime = new AbortController());
    await ensureNamespace(this.o.kc, this.o.systemNamespace);
    // A stop() meanwhile (a signal during start-up) found nothing to stop: nothing may start after it.
    if (lifetime.signal.aborted) return;
    if (!this.o.leaderElection) {
      // Without an elector, stop() ends this term: a stop while the cache starts starts no controller.
      const leading = this.lead(lifetime.signal);
      this.leading = leading.catch(() => undefined);
      return leading;
    }
    const lease = this.o.leaseDurationMs ?? DEFAULT_LEADER_LEASE_MS;
    this.elector = new LeaderElector(this.o.kc, {
      namespace: this.o.systemNamespace,
      name: LEADER_LEASE_NAME,
      identity: this.o.identity,
      // client-go's proportions (15 s / 10 s / 2 s).
      leaseDurationMs: lease,
      renewDeadlineMs: Math.round((lease * 2) / 3),
      retryPeriodMs: Math.round(lease / 7.5),
      logger: this.log,
    });
    this.elector.run({
      onStartedLeading: (signal) => {
        this.leading = this.lead(signal).catch((err: unknown) =>
          this.log.error({ err }, 'failed to start controllers'),
        );
      },
      onNewLeader: (identity) => this.log.info({ leader: identity }, 'leader observed'),
    });
  }

  /** Stops the controllers; releases the leader lease unless releaseLease is false (a simulated crash). */
  async stop(opts: { releaseLease?: boolean } = {}): Promise<void> {
    this.lifetime.abort();
    await this.elector?.stop({ release: opts.releaseLease });
    await this.leading;
    await this.stopControllers();
  }

  private async lead(signal: AbortSignal): Promise<void> {
    const { kc, log } = this.o;
    const client = new DiegoClient(kc);
    const limit = this.o.clientRateLimit ?? DEFAULT_CLIENT_RATE_LIMIT;
    if (limit.qps > 0) {
      client.limiter = new TokenBucket(limit);
      client.onLimited = (ms) => metrics.rateLimiterDuration.observe(ms / 1000);
    }
    // Every write of the controllers is fenced by the lease: none goes out once the renew deadline has passed.
    const elector = this.elector;
    if (elector) client.fence = () => elector.fenceReason() ?? (signal.aborted ? 'leadership lost' : undefined);
    const cache = new DiegoCache(kc, { cellLeaseNamespace: this.o.systemNamespace, logger: log });
    // A leader confirms a cell's loss with a fresh read of its lease (and gives cells a grace after an outage).
    const presence = new CellPresence(cache, log, Date.now, (name) =>
      rawRequest<Lease>(kc, {
        method: 'GET',
        path: `/apis/coordination.k8s.io/v1/namespaces/${this.o.systemNamespace}/leases/${name}`,
      }).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      }),
    );
    const auctioneer = new Auctioneer({
      client,
      cache,
      presence,
      log,
      config: this.o.auction,
      retryIntervalMs: this.o.convergeIntervalMs,
      events: new EventRecorder(kc, 'diego-auctioneer', log),
      decisions: this.decisions,
    });
    const converger = new Converger({
      client,
      cache,
      presence,
      log,
      convergeIntervalMs: this.o.convergeIntervalMs,
      onUnplacedWork: () => auctioneer.kick(),
      placer: auctioneer,
      events: new EventRecorder(kc, 'diego-converger', log),
    });
    const tasks = new TaskController({
      client,
      cache,
      presence,
      log,
      convergeIntervalMs: this.o.convergeIntervalMs,
      events: new EventRecorder(kc, 'diego-tasks', log),
      ...this.o.task,
    });
    const endpoints = this.o.endpointSlices
      ? new EndpointSlices({ kc, cache, log, events: new EventRecorder(kc, 'diego-endpoints', log) })
      : undefined;
    endpoints?.register();
    const cellReady = new CellReady({ client, cache, presence, log });
    this.running = { cache, presence, converger, auctioneer, tasks, endpoints, cellReady };
    signal.addEventListener(
      'abort',
      () => void this.stopControllers().catch((err: unknown) => this.log.error({ err }, 'stopping the controllers')),
      { once: true },
    );
    // The endpoint informers (when on) with the cache: its reconciles read both.
    await Promise.all([cache.start(), endpoints?.sync()]);
    if (signal.aborted) return;
    presence.init();
    auctioneer.start();
    converger.start();
    tasks.start();
    endpoints?.start();
    cellReady.start();
    this.log.info('controllers started');
  }

  /** Stops the controllers of the current term; resolves once every stop begun so far (a lost term's too) is done. */
  private stopControllers(): Promise<void> {
    const r = this.running;
    if (!r) return this.stopping;
    this.running = undefined;
    const stopped = (async () => {
      // Stop writing first, then stop watching.
      await Promise.all([
        r.converger.stop(),
        r.auctioneer.stop(),
        r.tasks.stop(),
        r.endpoints?.stop(),
        r.cellReady.stop(),
      ]);
      r.presence.stop();
      await r.cache.stop();
      this.log.info('controllers stopped');
    })();
    const all = Promise.all([this.stopping, stopped]).then(() => undefined);
    this.stopping = all.catch(() => undefined); // a failed stop is its caller's to hear once
    return all;
  }
}

async function ensureNamespace(kc: KubeConfig, name: string): Promise<void> {
  const api = kc.makeApiClient(CoreV1Api);
  try {
    await api.createNamespace({ body: { metadata: { name } } });
  } catch (err) {
    // 409: it exists. 403: this service account may not create namespaces (the Helm chart grants none): the
    // installer made it; if not, the Lease writes fail with a NotFound that names it.
    const code = (err as { code?: number }).code;
    if (code !== 409 && code !== 403) throw err;
  }
}
