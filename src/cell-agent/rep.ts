// Diego's rep for one cell: registers the Cell, keeps its presence Lease, watches only the work placed on it
// (field selector spec.cellId), claims it with a compare-and-swap, runs it through the executor in a container
// of the backend, and reports RUNNING (once healthy), CRASHED, or a task's result; a task cancelled or deleted
// meanwhile is stopped. "Stop, then remove": it releases the container finalizer only after destroying the container.
import type { KubeConfig } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { GROUP, VERSION } from '../crds/kinds.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { createInformer, type Informer } from '../lib/informer.ts';
import { withDefaults } from '../lib/options.ts';
import { DiegoClient, isNotFound } from '../lib/resources.ts';
import { type InstanceKey, isUnclaimedOrdinary, type NetInfo } from '../lifecycle/actual-lrp.ts';
import { ordinaryNameOf, RESULT_MAX_BYTES } from '../lifecycle/names.ts';
import {
  claim,
  completeTask,
  crash,
  getOrUndefined,
  movedOn,
  MovedOnError,
  type Outcome,
  releaseContainer,
  retryMovedOn,
  setRoutable,
  start,
  startTask,
  uncertain,
} from '../lifecycle/ops.ts';
import type { Container, ContainerBackend } from './backends/types.ts';
import { Heartbeat } from '../lib/heartbeat.ts';
import { registerCell, releasePresence, renewPresence, untilRegistrable } from './presence.ts';
import { type EvacuationResult, Evacuator } from './evacuation.ts';
import { type SentClaim, unseenClaim, withSent } from './unseen-claim.ts';
import type { InstanceLog } from './logs/instance-log.ts';
import { CellTelemetry, type TelemetryOptions } from './telemetry.ts';
import {
  buildStep,
  DEFAULT_GRACEFUL_SHUTDOWN_MS,
  DEFAULT_MAX_CONCURRENT_DOWNLOADS,
  Semaphore,
  toStepError,
} from './executor/index.ts';
import {
  ContainerCreateError,
  ContainerStore,
  type ContainerStoreOptions,
  type StoredContainer,
} from './executor/container-store.ts';
import type { DownloadCache } from './executor/download-cache.ts';
import { Downloader } from './executor/downloader.ts';
import type { NetworkInfo } from './executor/steps/run.ts';
import { type ImageCredentialsSource, secretSource } from './image-credentials.ts';
import { lrpRunRequest, taskRunRequest, type RunRequest } from './run-request.ts';
import type { LongRunning } from './supervise.ts';
import { EventRecorder } from '../lib/events.ts';
import { adoptContainers, exitError, reattachAction, tagProcesses, waitForAction } from './adopt.ts';
import { BulkSyncLoop, taskHandle } from './bulk-sync.ts';
import { lrpKey, TAG_ACTION, taskKey } from './container-tags.ts';
import { repCellState } from './rep-state.ts';
import { CellResources, CellStatusPublisher, handBackLRP, insufficient, rejectTask } from './fit.ts';
import { ResultStore, type SavedOutcome } from './results.ts';
import { type RunningInstance, runVerdict } from './run-verdict.ts';
import { supervise } from './supervise.ts';

export interface RepOptions {
  kc: KubeConfig;
  cellId: string;
  zone?: string;
  capacity: { memoryMb: number; diskMb: number; containers: number };
  /** Stacks this cell can run as preloaded:<stack>. */
  stacks: string[];
  /** Rootfs providers besides preloaded that the backend runs (Diego's rep supported_providers), e.g. ['docker']. */
  rootfsProviders?: string[];
  /** Diego's placement_tags: work must ask for all of them to land here. */
  placementTags?: string[];
  /** Diego's optional_placement_tags: work may ask for these. */
  optionalPlacementTags?: string[];
  /** Volume drivers this cell offers (Diego: the volman drivers it found). */
  volumeDrivers?: string[];
  backend: ContainerBackend;
  log: Logger;
  systemNamespace?: string;
  /** Presence TTL (Diego: 15 s); renewed every third of it. */
  leaseSeconds?: number;
  /** SIGTERM → SIGKILL (Diego: 10 s); a DesiredLRP's terminationGracePeriodMs overrides it. */
  gracefulShutdownMs?: number;
  startupIntervalMs?: number;
  livenessIntervalMs?: number;
  /** Diego: evacuation_timeout 600 s, evacuation_polling_interval 10 s. */
  evacuationTimeoutMs?: number;
  evacuationPollingIntervalMs?: number;
  /** Log stream (hub, max_log_lines_per_second) and container metrics settings. */
  telemetry?: TelemetryOptions;
  /** Bulk sync period (Diego polling_interval 30 s). */
  pollingIntervalMs?: number;
  /** Diego tasks.max_retries: a task rejected this many times already fails on the next rejection. */
  maxTaskRetries?: number;
  /**
   * The executor's side of the cell: where it keeps per-container files, the download cache (cached
   * dependencies, cached download actions), the instance identity CA, trusted certificates, the container proxy
   * and the cell's address. Without it: no cache (cached dependencies fail), no identity, 127.0.0.1.
   */
  /**
   * Where the registry credentials a docker:// work names (spec.imageCredentialsSecret) come from: the controller's
   * endpoint (credentials/client.ts endpointSource). Default: the Secret read with `kc` — for an agent running with
   * an admin kubeconfig (make run, tests); the chart's agents cannot read Secrets.
   */
  imageCredentials?: ImageCredentialsSource;
  executor?: Partial<Omit<ContainerStoreOptions, 'backend' | 'logger' | 'cache'>> & {
    cache?: DownloadCache;
    /** The cell's downloader (share the cache's, so one limit bounds every transfer of the cell). */
    downloader?: Downloader;
  };
}

interface Running {
  stop: AbortController;
  done: Promise<void>;
  /** LRP containers: the instance they run and the instance guid they were claimed with. */
  instance?: RunningInstance & { processGuid: string };
  /** The container's handle (bulk sync leaves it alone while the rep works on it). */
  handle?: string;
  /** Lets go of the container without stopping it (an agent restart). */
  detach?: AbortController;
}

export class Rep {
  private readonly o: RepOptions & { systemNamespace: string; leaseSeconds: number; gracefulShutdownMs: number };
  private readonly client: DiegoClient;
  private readonly log: Logger;
  private actual?: Informer<IActualLRP>;
  private tasks?: Informer<ITask>;
  /** Presence renewals, a third of the lease apart, one at a time. */
  private heartbeat?: Heartbeat;
  /** The renewal in flight (stop waits for it: a late renewal would bring a released presence back). */
  private readonly running = new Map<string, Running>();
  /** Keys of instances being claimed right now. */
  private readonly claiming = new Set<string>();
  /**
   * Claims of instances and starts of tasks this agent sent whose answer was lost (a network error, the API server
   * restarting), by key: the uid of the record and what only that write put there (the instance guid the claim
   * named; the task start's updatedAt, to the millisecond). Found so afterwards, that write landed and the work is
   * this agent's to run (a Running task another start of this cell made — seen stale, run already — is not) —
   * its container is created only after a claim known to have landed, so it never ran. Without this the work would
   * wait for bulk sync to put the instance back to the auction or fail the task "task container does not exist".
   */
  private readonly unseenWrites = new Map<string, SentClaim>();
  readonly evacuator: Evacuator;
  /** Memory, disk and containers left on this cell (capacity minus what it runs). */
  readonly resources: CellResources;
  private readonly cellStatus: CellStatusPublisher;
  private readonly events: EventRecorder;
  private bulk?: BulkSyncLoop;
  /** Outcomes of tasks whose containers finished, kept on disk until reported. */
  private readonly results: ResultStore;
  /** Work whose handling failed on an API error, tried again with backoff (1 s doubling to 30 s). */
  private readonly retries = new Backoff(1_000, 30_000);
  /** Aborted when the agent stops: reports still retrying give up (the next agent's bulk sync repairs). */
  private readonly lifetime = new AbortController();
  /** Set by stop({ leaveContainers }): runs end without touching their containers or records. */
  private detached = false;
  /** The executor's container store: every container is created and destroyed through it. */
  readonly store: ContainerStore;
  /** Bounds the cell's concurrent downloads (Diego's max_concurrent_downloads). */
  private readonly downloader: Downloader;
  /** Instance logs (the hub the ops server streams from) and container metrics. */
  readonly telemetry: CellTelemetry;
  /** Registry credentials of docker:// work, asked for just before its pull. */
  private readonly imageCredentials: ImageCredentialsSource;
  /** Where this cell's ops server listens, as advertised on its Cell (advertiseOps). */
  private opsUrl: string | undefined;
  /** start() has begun registering the Cell (advertiseOps re-registers from then on). */
  private registering = false;
  /**
   * start()'s work, which a stop() lets end (it ends at its next step) before it stops the runs and releases the
   * presence: the containers it adopts meanwhile are then among the runs stopped, and its first renewal cannot bring
   * the presence back after the release.
   */
  private starting?: Promise<void>;

  constructor(opts: RepOptions) {
    this.o = withDefaults(
      { systemNamespace: 'diego-system', leaseSeconds: 15, gracefulShutdownMs: DEFAULT_GRACEFUL_SHUTDOWN_MS },
      opts,
    );
    this.client = new DiegoClient(opts.kc);
    this.imageCredentials = opts.imageCredentials ?? secretSource(opts.kc);
    this.log = opts.log.child({ component: 'rep', cellId: opts.cellId });
    this.resources = new CellResources(opts.capacity);
    this.cellStatus = new CellStatusPublisher(this.client, opts.cellId, () => this.liveStatus(), this.log);
    this.resources.onChange(() => this.cellStatus.changed());
    this.events = new EventRecorder(opts.kc, 'cell-agent', this.log);
    this.downloader =
      opts.executor?.downloader ??
      opts.executor?.cache?.downloader ??
      new Downloader({ limiter: new Semaphore(DEFAULT_MAX_CONCURRENT_DOWNLOADS) });
    this.results = new ResultStore(
      join(opts.executor?.stateDir ?? join(tmpdir(), `diego-executor-${opts.cellId}`), 'task-outcomes'),
    );
    this.store = new ContainerStore({
      stateDir: join(tmpdir(), `diego-executor-${opts.cellId}`),
      ...opts.executor,
      backend: opts.backend,
      cache: opts.executor?.cache,
      logger: this.log,
    });
    this.telemetry = new CellTelemetry({
      ...opts.telemetry,
      cellId: opts.cellId,
      capacity: opts.capacity,
      log: this.log,
    });
    this.evacuator = new Evacuator({
      client: this.client,
      cellId: opts.cellId,
      log: this.log,
      timeoutMs: opts.evacuationTimeoutMs,
      pollIntervalMs: opts.evacuationPollingIntervalMs,
      events: this.events,
      cell: {
        lrpContainers: () => [...this.running.values()].flatMap((r) => (r.instance ? [r.instance] : [])),
        taskContainers: () => [...this.running.values()].filter((r) => !r.instance).length,
        stopContainer: async (guid) => {
          const r = [...this.running.values()].find((x) => x.instance?.instanceGuid === guid);
          r?.stop.abort();
          await r?.done;
        },
        stopAll: async () => {
          for (const r of this.running.values()) r.stop.abort();
          await Promise.all([...this.running.values()].map((r) => r.done));
        },
      },
    });
  }

  /** The Cell object this agent presents (the auction's CellPresence); the ops server's URL once it listens. */
  private register(): Promise<void> {
    return registerCell(this.o.kc, {
      cellId: this.o.cellId,
      zone: this.o.zone ?? '',
      capacity: this.o.capacity,
      rootfsProviders: [
        // As Diego's rep: both fixed-set schemes with the same stacks (the auction matches the exact scheme).
        { name: 'preloaded', properties: this.o.stacks },
        { name: 'preloaded+layer', properties: this.o.stacks },
        ...(this.o.rootfsProviders ?? []).map((name) => ({ name })),
      ],
      placementTags: this.o.placementTags ?? [],
      optionalPlacementTags: this.o.optionalPlacementTags ?? [],
      volumeDrivers: this.o.volumeDrivers ?? [],
      // The ops server also answers the rep's GET /state (rep-state.ts): Diego's clients find it at repAddress.
      ...(this.opsUrl ? { opsUrl: this.opsUrl, repAddress: this.opsUrl } : {}),
    });
  }

  /**
   * Names the ops server (log stream, metrics) on the Cell, so that readers such as `kubectl diego logs` find the
   * cell's log stream. Called once the server listens (its port may only be known then); kept for re-registrations.
   * Before start() it is only kept: the first registration then names it (a restarted agent's Cell never loses it).
   */
  async advertiseOps(url: string): Promise<void> {
    this.opsUrl = url;
    if (this.registering) await this.register();
  }

  async start(): Promise<void> {
    this.starting = this.startUp();
    try {
      await this.starting;
    } catch (err) {
      // What start-up began (the heartbeat renewing the presence, the informers, the runs of adopted containers) must
      // not go on behind a caller that gives up: it stops, and the containers are left to the next agent. Unless a
      // stop() is under way already: that one decides what becomes of the containers.
      if (!this.lifetime.signal.aborted) await this.stop({ leaveContainers: true }).catch(() => undefined);
      throw err;
    }
  }

  private async startUp(): Promise<void> {
    const { kc, cellId } = this.o;
    // A stop() before or during start-up ends it at the next step: nothing it starts after the stop (heartbeat,
    // informers, bulk sync, container metrics) would ever be stopped, and the process would not end.
    const stopped = this.lifetime.signal;
    this.registering = true;
    const register = () => this.register();
    // Before the namespace or the CRDs exist (an agent started before the operator), wait rather than exit.
    try {
      await untilRegistrable(
        kc,
        this.o.systemNamespace,
        async () => {
          await register();
          await this.renew();
        },
        this.log,
        { signal: stopped },
      );
    } catch (err) {
      if (stopped.aborted) return;
      throw err;
    }
    if (stopped.aborted) return;
    await this.evacuator.resume(); // a restarted agent takes work again
    if (stopped.aborted) return;
    this.telemetry.start();
    this.heartbeat = new Heartbeat(
      () => this.renew(),
      (this.o.leaseSeconds * 1000) / 3,
      (err: unknown) => this.log.warn({ err }, 'lease renewal failed'),
    );
    this.heartbeat.start();
    const fieldSelector = `spec.cellId=${cellId}`;
    this.actual = createInformer<IActualLRP>(kc, {
      path: `/apis/${GROUP}/${VERSION}/actuallrps`,
      fieldSelector,
      logger: this.log,
      name: 'rep-actuallrps',
    });
    this.tasks = createInformer<ITask>(kc, {
      path: `/apis/${GROUP}/${VERSION}/tasks`,
      fieldSelector,
      logger: this.log,
      name: 'rep-tasks',
    });
    const onLRP = (a: IActualLRP) =>
      void this.handleLRP(a).then(
        () => this.retries.succeeded(lrpKey(a)),
        (err: unknown) => {
          this.log.warn({ err, key: lrpKey(a) }, 'instance: will try again');
          this.retries.later(lrpKey(a), () => {
            const latest = this.actual?.get(a.metadata.namespace, a.metadata.name ?? '');
            if (latest) onLRP(latest);
          });
        },
      );
    this.actual.on('add', onLRP);
    this.actual.on('update', onLRP);
    // A record gone from this cell's watch: deleted, or placed on another cell (a replacement claimed elsewhere).
    this.actual.on('delete', (a: IActualLRP) => void this.checkRunsOf(a));
    const onTask = (t: ITask) =>
      void this.handleTask(t).then(
        () => this.retries.succeeded(taskKey(t)),
        (err: unknown) => {
          this.log.warn({ err, key: taskKey(t) }, 'task: will try again');
          this.retries.later(taskKey(t), () => {
            const latest = this.tasks?.get(t.metadata.namespace, t.metadata.name ?? '');
            if (latest) onTask(latest);
          });
        },
      );
    this.tasks.on('add', onTask);
    this.tasks.on('update', onTask);
    this.tasks.on('delete', (t: ITask) => {
      this.unseenWrites.delete(taskKey(t));
      this.stopTask(t);
    });
    await Promise.all([this.actual.start(), this.tasks.start()]);
    if (stopped.aborted) return;
    await this.adopt();
    if (stopped.aborted) return;
    await this.cellStatus.publish();
    if (stopped.aborted) return;
    this.bulk = new BulkSyncLoop(
      {
        cellId,
        backend: this.store,
        client: this.client,
        log: this.log,
        lrps: () => this.actual?.list() ?? [],
        tasks: () => this.tasks?.list() ?? [],
        busy: () => ({
          handles: new Set([...this.running.values()].flatMap((r) => (r.handle ? [r.handle] : []))),
          keys: new Set([...this.running.keys(), ...this.claiming]),
        }),
        checkRuns: () => this.checkRuns(),
        landedUnseen: (work) => this.landedUnseen(work),
        reportKept: async (t) => {
          const saved = await this.results.get(taskHandle(t));
          if (!saved || saved.uid !== t.metadata.uid) return false;
          await this.reportOutcome(t, taskHandle(t), saved);
          return true;
        },
        unclaimed: (work) =>
          'taskGuid' in work.spec ? this.handleTask(work as ITask) : this.handleLRP(work as IActualLRP),
        // A container of work assigned here that nobody supervises (its adoption failed): take it over now.
        unsupervised: async (work) => {
          const isTask = 'taskGuid' in work.spec;
          const handle = isTask ? taskHandle(work as ITask) : ((work as IActualLRP).status?.instanceGuid ?? '');
          const container = await this.store.lookup(handle);
          if (!container || this.running.has(isTask ? taskKey(work as ITask) : lrpKey(work as IActualLRP))) return;
          if (isTask) this.startTask(work as ITask, container);
          else this.startInstance(work as IActualLRP, handle, container);
        },
      },
      this.o.pollingIntervalMs,
    );
    this.bulk.start();
    this.log.info({ capacity: this.o.capacity }, 'cell registered');
  }

  /** The container backend this rep runs its work in. */
  get backend(): ContainerBackend {
    return this.o.backend;
  }

  /** One bulk sync pass now (tests; an operator's nudge). */
  syncNow(): Promise<unknown> {
    return this.bulk?.syncNow() ?? Promise.resolve();
  }

  /**
   * Diego's rep state (GET /state on the ops server; `cfdot cell-states`): the records of the containers running
   * here, from this agent's caches, with what each reserved.
   */
  cellState(): Record<string, unknown> {
    const lrps = (this.actual?.list() ?? []).filter(
      (a) => a.status?.cellId === this.o.cellId && (a.status.state === 'CLAIMED' || a.status.state === 'RUNNING'),
    );
    const tasks = (this.tasks?.list() ?? []).filter(
      (t) => t.status?.cellId === this.o.cellId && t.status.state === 'Running',
    );
    return repCellState({
      cellId: this.o.cellId,
      repUrl: this.opsUrl ?? '',
      zone: this.o.zone ?? '',
      total: this.o.capacity,
      available: this.resources.remaining(),
      stacks: this.o.stacks,
      rootfsProviders: this.o.rootfsProviders ?? [],
      placementTags: this.o.placementTags ?? [],
      optionalPlacementTags: this.o.optionalPlacementTags ?? [],
      volumeDrivers: this.o.volumeDrivers ?? [],
      evacuating: this.evacuator.evacuating,
      // An EVACUATING copy holds the ORDINARY record's reservation (the same container).
      lrps: lrps.map((record) => ({
        record,
        held: this.resources.heldBy(`lrp:${record.metadata.namespace}/${ordinaryNameOf(record.metadata.name ?? '')}`),
      })),
      tasks: tasks.map((task) => ({ task, held: this.resources.heldBy(taskKey(task)) })),
    });
  }

  /** What the Cell's status says about this cell right now. */
  private liveStatus(): Record<string, unknown> {
    const runs = [...this.running.values()];
    return {
      available: this.resources.remaining(),
      lrpInstances: runs.filter((r) => r.instance).length,
      tasks: runs.filter((r) => !r.instance).length,
    };
  }

  /** Takes over the containers a previous agent left running (adopt.ts); destroys the rest. */
  private async adopt(): Promise<void> {
    // First what a previous agent finished but could not report: those tasks are not Running here any more after.
    await this.reportSavedOutcomes();
    await adoptContainers({
      cellId: this.o.cellId,
      backend: this.store,
      log: this.log,
      lrp: (ns, name) => this.actual?.get(ns, name),
      task: (ns, name) => this.tasks?.get(ns, name),
      adoptLRP: (a, container) => this.startInstance(a, a.status?.instanceGuid ?? container.handle, container),
      adoptTask: (t, container) => this.startTask(t, container),
    });
    // Cache entries only replaced versions still mounted by adopted containers kept: the rest can go now.
    await this.o.executor?.cache?.pruneUnused();
  }

  /**
   * Stops heartbeating and watching, stops every container it runs, and gives up its presence at once (so no
   * more work is placed here) instead of letting the lease run out.
   */
  async stop(opts: { leaveContainers?: boolean } = {}): Promise<void> {
    this.lifetime.abort();
    this.retries.clear();
    await this.heartbeat?.stop();
    await this.bulk?.stop();
    await Promise.all([this.actual?.stop(), this.tasks?.stop()]);
    await this.cellStatus.stop();
    await this.starting?.catch(() => undefined);
    if (opts.leaveContainers) {
      // An agent restart: the containers go on running and the presence stays (the next agent adopts them).
      this.detached = true;
      for (const r of this.running.values()) r.detach?.abort();
      this.store.detachAll();
      this.telemetry.stop();
      return;
    }
    for (const r of this.running.values()) r.stop.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
    await releasePresence(this.o.kc, this.o.systemNamespace, this.o.cellId).catch((err: unknown) =>
      this.log.warn({ err }, 'could not release the presence lease'),
    );
    this.telemetry.stop();
  }

  /** Diego's evacuation (SIGTERM, node drain): hands the cell's instances over to other cells, then returns. */
  evacuate(): Promise<EvacuationResult> {
    return this.evacuator.evacuate();
  }

  private renew(): Promise<void> {
    return renewPresence(this.o.kc, this.o.systemNamespace, this.o.cellId, this.o.leaseSeconds);
  }

  private async handleLRP(a: IActualLRP): Promise<void> {
    const key = lrpKey(a);
    if (a.status?.presence === 'EVACUATING') return this.evacuator.onCopy(a);
    if (a.metadata.deletionTimestamp) {
      const r = this.running.get(key);
      if (r) {
        r.stop.abort();
        await r.done;
      }
      // A SUSPECT copy retired by the converger: the container it stood for stops unless its record names it.
      if (a.status?.presence === 'SUSPECT') await this.checkRunsOf(a);
      return this.release(a);
    }
    // The record names another instance now (claimed by another cell after this one was declared lost).
    const run = this.running.get(key);
    if (run?.instance && a.status?.instanceGuid !== run.instance.instanceGuid) await this.checkRun(key);
    if (this.landedUnseen(a)) return;
    if (this.running.has(key) || !isUnclaimedOrdinary(a)) return;
    if (this.evacuator.evacuating) return this.evacuator.reject('ActualLRP', a);
    await this.claimOnce(
      key,
      a,
      () => this.claim(a),
      () => this.actual?.get(a.metadata.namespace, a.metadata.name ?? ''),
      (latest) => this.handleLRP(latest),
    );
  }

  /** Checks the runs of the index `a` (any of its records) stands for: see checkRun. */
  private async checkRunsOf(a: IActualLRP): Promise<void> {
    for (const [key, r] of this.running) {
      const i = r.instance;
      if (i && i.namespace === a.metadata.namespace && i.processGuid === a.spec.processGuid && i.index === a.spec.index)
        await this.checkRun(key).catch((err: unknown) => this.log.warn({ err, key }, 'checking an instance'));
    }
  }

  /**
   * Stops a container no record of this cell names any more (run-verdict.ts): its index was claimed by another
   * cell while this one was thought lost, or its records are gone. The watch only sees this cell's records and may
   * lag, so a doubt is settled by reading the record. Not while evacuating: the evacuator owns the containers.
   */
  private async checkRun(key: string): Promise<void> {
    const r = this.running.get(key);
    const run = r?.instance;
    if (!r || !run || this.detached || this.evacuator.evacuating || r.stop.signal.aborted) return;
    const copies = (this.actual?.list() ?? []).filter(
      (c) =>
        c.metadata.namespace === run.namespace &&
        c.spec.processGuid === run.processGuid &&
        c.spec.index === run.index &&
        c.metadata.name !== run.name,
    );
    let verdict = runVerdict(run, this.o.cellId, this.actual?.get(run.namespace, run.name), copies, false);
    if (verdict.verdict === 'confirm') {
      const fresh = await this.client.get('ActualLRP', run.namespace, run.name).catch((err: unknown) => {
        if (isNotFound(err)) return undefined;
        throw err;
      });
      verdict = runVerdict(run, this.o.cellId, fresh, copies, true);
    }
    if (verdict.verdict !== 'stop' || this.running.get(key) !== r) return;
    this.log.warn(
      { key, instanceGuid: run.instanceGuid, why: verdict.why },
      'stopping an instance this cell no longer owns',
    );
    r.stop.abort();
  }

  /** Every container run here, checked against its records (bulk sync). */
  private async checkRuns(): Promise<void> {
    for (const key of [...this.running.keys()]) {
      await this.checkRun(key).catch((err: unknown) => this.log.warn({ err, key }, 'checking an instance'));
    }
  }

  /**
   * Runs `claim` for `seen` unless an earlier event is claiming (or starting) `key` already. Events that
   * arrived meanwhile were skipped (a lost compare-and-swap counts on them), so a newer version in the cache
   * (`latest`) is handled again afterwards, unless the work runs by then.
   */
  private async claimOnce<T extends { metadata: { resourceVersion?: string } }>(
    key: string,
    seen: T,
    claim: () => Promise<void>,
    latest: () => T | undefined,
    handle: (latest: T) => Promise<void>,
  ): Promise<void> {
    if (this.claiming.has(key)) return;
    this.claiming.add(key);
    try {
      await claim();
    } finally {
      this.claiming.delete(key);
    }
    const now = latest();
    if (now && now.metadata.resourceVersion !== seen.metadata.resourceVersion && !this.running.has(key)) {
      await handle(now);
    }
  }

  private async claim(a: IActualLRP): Promise<void> {
    const key = lrpKey(a);
    // Reserve before claiming (Diego's AllocateContainers): what does not fit goes back to the auction.
    const d = await this.desiredFor(a);
    if (!d || this.running.has(key)) return;
    const problems = this.resources.reserve(key, { memoryMb: d.spec.memoryMb, diskMb: d.spec.diskMb });
    if (problems.length > 0) {
      await handBackLRP(this.client, a, this.o.cellId, insufficient(problems), { log: this.log, events: this.events });
      return;
    }
    const instanceGuid = randomUUID();
    let claimed: Outcome<IActualLRP>;
    try {
      // A claim that failed on a network error is read back before it is called lost (lifecycle/ops.ts).
      claimed = await claim(this.client, a, this.keyOf(instanceGuid), Date.now());
    } catch (err) {
      this.resources.release(key);
      if (uncertain(err) && a.metadata.uid)
        this.unseenWrites.set(key, withSent(this.unseenWrites.get(key), a.metadata.uid, { instanceGuid }));
      throw err; // not claimed (or unknown): tried again with backoff
    }
    // Lost a race against a newer version: maybe the one an earlier claim whose answer was lost made.
    if (claimed.outcome !== 'moved-on') this.unseenWrites.delete(key);
    if (claimed.outcome !== 'done') {
      this.resources.release(key);
      if (claimed.outcome === 'refused') this.log.debug({ key, reason: claimed.reason }, 'not claimed');
      return; // moved on meanwhile: a newer event follows
    }
    this.startInstance(claimed.value, instanceGuid);
  }

  private async desiredFor(a: IActualLRP): Promise<IDesiredLRP | undefined> {
    const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP')?.name ?? '';
    try {
      return await this.client.get('DesiredLRP', a.metadata.namespace, owner);
    } catch (err) {
      if (isNotFound(err)) return undefined; // being deleted: its instances go too
      throw err;
    }
  }

  /** Runs a claimed instance, or supervises the container a previous agent left running (`adopted`). */
  private startInstance(a: IActualLRP, instanceGuid: string, adopted?: Container): void {
    const key = lrpKey(a);
    if (this.running.has(key)) return;
    const stop = new AbortController();
    const detach = new AbortController();
    // A failure while reporting is logged: an unhandled rejection would end the agent and all its containers.
    const done = this.runInstance(a, instanceGuid, stop.signal, detach.signal, adopted)
      .catch((err: unknown) => this.log.warn({ err, key }, 'instance'))
      .finally(() => {
        this.running.delete(key);
        this.resources.release(key);
        if (this.detached) return;
        // Events that arrived while this run was ending were ignored: look at the latest version again.
        const latest = this.actual?.get(a.metadata.namespace, a.metadata.name ?? '');
        if (latest) void this.handleLRP(latest).catch((err: unknown) => this.log.warn({ err, key }, 'instance'));
      });
    this.running.set(key, {
      stop,
      done,
      instance: {
        namespace: a.metadata.namespace ?? '',
        name: a.metadata.name ?? '',
        index: a.spec.index,
        processGuid: a.spec.processGuid,
        instanceGuid,
      },
      handle: instanceGuid,
      detach,
    });
  }

  private async runInstance(
    a: IActualLRP,
    instanceGuid: string,
    signal: AbortSignal,
    detach: AbortSignal,
    adopted?: Container,
  ): Promise<void> {
    const d = await this.desiredFor(a);
    if (!d) {
      if (adopted) await this.store.destroy(instanceGuid).catch(() => undefined);
      return;
    }
    if (adopted) this.resources.reserve(lrpKey(a), { memoryMb: d.spec.memoryMb, diskMb: d.spec.diskMb });
    const logs = this.telemetry.lrpLog(d, a, instanceGuid);
    const log = logs.streamer;
    const req = lrpRunRequest(d, a, instanceGuid, {
      containerProxy: this.o.executor?.proxy !== undefined,
      imageCredentials: this.imageCredentials,
    });
    let stored: StoredContainer | undefined;
    /** Ends the run's pending reports (a RUNNING report retried through an API outage) once the run is over. */
    const ended = new AbortController();
    let runningSince: number | undefined =
      adopted && a.status?.state === 'RUNNING' ? Date.parse(a.status.since ?? '') || Date.now() : undefined;
    try {
      if (!adopted) logs.lifecycle('creating');
      stored = adopted
        ? await this.store.adopt(adopted, req.container)
        : await this.store.create(req.container, log, signal);
      const { container, network } = stored;
      if (!adopted) logs.lifecycle('created');
      this.telemetry.trackLRP(container, d, a, instanceGuid, logs);
      if (adopted && a.status?.state === 'RUNNING') this.telemetry.running(instanceGuid);
      signal.addEventListener('abort', () => logs.lifecycle('stopping'), { once: true });
      const info = await container.info();
      const ctx = this.executorContext(container, log, network, d.spec.terminationGracePeriodMs);
      if (req.setup && !adopted) await buildStep(req.setup, ctx).perform(signal);
      // With readiness checks an instance is routable only once they pass (Diego).
      let routableNow = (d.spec.checkDefinition?.readinessChecks ?? []).length === 0;
      const healthy = async () => {
        const since = (runningSince = Date.now());
        this.telemetry.running(instanceGuid);
        // Refused when the record no longer names this container (evacuated or handed back meanwhile).
        await this.report(
          a,
          (current) =>
            start(
              this.client,
              current,
              this.keyOf(instanceGuid),
              { netInfo: netInfoOf(network), routable: routableNow, availabilityZone: this.o.zone ?? '' },
              { now: since, claim: 'own' },
            ),
          AbortSignal.any([signal, ended.signal]),
        );
      };
      const long =
        (action: RunRequest['action'], tag: string): LongRunning =>
        (sig, ready) =>
          buildStep(action, { ...ctx, container: tagProcesses(container, tag) }).perform(sig, ready);
      let action = long(req.action, TAG_ACTION);
      let sidecars = req.sidecars.map((sc, i) => long(sc.action, sidecarTag(i)));
      if (adopted) {
        action = await this.reattach(adopted, TAG_ACTION, log, ctx.gracefulShutdownMs);
        sidecars = await Promise.all(
          req.sidecars.map((_, i) => this.reattach(adopted, sidecarTag(i), log, ctx.gracefulShutdownMs)),
        );
        this.log.info({ key: lrpKey(a), instanceGuid }, 'instance re-adopted');
      }
      const reason = await supervise({
        d,
        container,
        info,
        log,
        ctx,
        signal,
        detach,
        action,
        sidecars,
        onHealthy: () => void healthy().catch((err: unknown) => this.log.warn({ err }, 'reporting RUNNING')),
        onRoutable: (routable) => {
          routableNow = routable;
          void this.setRoutable(a, instanceGuid, routable);
        },
        alreadyHealthy: adopted !== undefined && a.status?.state === 'RUNNING',
        startupIntervalMs: this.o.startupIntervalMs,
        livenessIntervalMs: this.o.livenessIntervalMs,
      });
      if (reason === undefined || signal.aborted || this.detached) return; // stopped on purpose, or let go of
      await this.reportCrash(a, instanceGuid, reason, runningSince);
    } catch (err) {
      const reason = err instanceof ContainerCreateError ? err.reason : toStepError(err).message;
      if (!stored) logs.lifecycle('create-failed', reason);
      if (!signal.aborted && !this.detached) await this.reportCrash(a, instanceGuid, reason, runningSince);
    } finally {
      ended.abort();
      await this.destroyContainer(instanceGuid, stored !== undefined, logs, 'destroying container');
    }
  }

  /** What the executor's steps get for a container: its log, network (CF_INSTANCE_*), the cell's downloads. */
  private executorContext(container: Container, log: InstanceLog['streamer'], network: NetworkInfo, graceMs?: number) {
    return {
      container,
      log,
      gracefulShutdownMs: graceMs ?? this.o.gracefulShutdownMs,
      network,
      downloader: this.downloader,
      cache: this.o.executor?.cache,
    };
  }

  /**
   * A long-running process of an adopted container (the action, a sidecar), found by its tag: re-attached if it
   * still runs; if it exited with 0 while no agent watched, it counts as exited (a daemonizing process: the checks
   * decide); a non-zero exit is its failure.
   */
  private async reattach(
    container: Container,
    tag: string,
    log: InstanceLog['streamer'],
    graceMs: number,
  ): Promise<LongRunning> {
    const found = await reattachAction(container, log, tag);
    if (found.kind === 'none') throw new Error('the container left by the previous cell agent runs no action');
    if (found.kind === 'exited') {
      if (found.status !== 0) throw exitError(log, found.status);
      return (_sig, ready) => {
        ready?.();
        return Promise.resolve();
      };
    }
    return waitForAction(found.handles, log, graceMs);
  }

  /**
   * Destroys a container of ours once its work ended (lifecycle lines when it was created; a failure is logged
   * as `what`) and stops its metrics. Not when detached: on an agent restart the container goes on running for
   * the next agent.
   */
  private async destroyContainer(handle: string, created: boolean, logs: InstanceLog, what: string): Promise<void> {
    if (this.detached) return;
    if (created) logs.lifecycle('destroying');
    await this.store.destroy(handle).then(
      () => created && logs.lifecycle('destroyed'),
      (err: unknown) => {
        logs.lifecycle('destroy-failed');
        this.log.warn({ err }, what);
      },
    );
    this.telemetry.untrack(handle);
  }

  /** This cell's instance key for a container. */
  private keyOf(instanceGuid: string): InstanceKey {
    return { instanceGuid, cellId: this.o.cellId };
  }

  /**
   * A report about a container on its record, read fresh (the watch may lag), and read again while the write loses
   * a race; the operation refuses a record that no longer names the container. An API server that cannot be reached
   * or fails (a restart, an etcd outage) leaves the report unknown: it is made again, with backoff, until it lands
   * or is refused, or `until` (and in any case the agent's stop) ends it. The operation reads the record afresh
   * each time, so a report that did land is seen as done.
   */
  private async report(
    a: IActualLRP,
    op: (current: IActualLRP) => Promise<Outcome<IActualLRP>>,
    until?: AbortSignal,
  ): Promise<Outcome<IActualLRP>> {
    const giveUp = until ? AbortSignal.any([until, this.lifetime.signal]) : this.lifetime.signal;
    for (let attempt = 0; ; attempt++) {
      try {
        return await retryMovedOn(async () => {
          const current = await getOrUndefined(this.client, 'ActualLRP', a.metadata.namespace, a.metadata.name ?? '');
          return current ? op(current) : movedOn('gone');
        });
      } catch (err) {
        if (!uncertain(err) || giveUp.aborted) throw err;
        if (attempt === 0) this.log.warn({ err, key: lrpKey(a) }, 'report not made (API error): trying again');
        const delay = Math.min(REPORT_RETRY_MIN_MS * 2 ** attempt, REPORT_RETRY_MAX_MS);
        await sleep(delay, undefined, { signal: giveUp }).catch(() => {
          throw err;
        });
      }
    }
  }

  /** Readiness: routable true/false on the instance while it is still this container's. */
  private async setRoutable(a: IActualLRP, instanceGuid: string, routable: boolean): Promise<void> {
    await this.report(a, (current) => setRoutable(this.client, current, this.keyOf(instanceGuid), routable)).catch(
      (err: unknown) => this.log.warn({ err }, 'reporting readiness'),
    );
  }

  private async reportCrash(
    a: IActualLRP,
    instanceGuid: string,
    reason: string,
    runningSince: number | undefined,
  ): Promise<void> {
    // Refused when the record no longer names this container (evacuated: the evacuator removes its copy).
    const crashed = await this.report(a, (current) =>
      crash(this.client, current, this.keyOf(instanceGuid), reason, { now: Date.now(), runningSince }),
    );
    if (crashed.outcome !== 'done') return;
    this.log.info({ key: lrpKey(a), reason }, 'instance crashed');
    // The converger records the crash (count, next restart) on the DesiredLRP; a failed check says more here.
    const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP');
    if (owner && /^Instance (became unhealthy|never healthy)/.test(reason)) {
      const target = {
        apiVersion: owner.apiVersion,
        kind: owner.kind,
        metadata: { name: owner.name, namespace: a.metadata.namespace, uid: owner.uid },
      };
      this.events.record(
        target,
        'Warning',
        'HealthCheckFailed',
        `instance ${a.spec.index} on cell ${this.o.cellId}: ${reason}`,
      );
    }
  }

  /** "Stop, then remove": the container is gone, so the record may go. */
  private async release(a: IActualLRP): Promise<void> {
    await releaseContainer(this.client, a);
  }

  private async handleTask(t: ITask): Promise<void> {
    const key = taskKey(t);
    // Cancelled (the task controller completed it), deleted, or completed elsewhere while it runs here: the
    // container goes (Diego's CancelTask deletes it); the controller is the one writer of its status.
    if (t.status?.state !== 'Running' && t.status?.state !== 'Pending') this.stopTask(t);
    if (this.landedUnseen(t)) return;
    if (t.status?.state !== 'Pending' || t.spec.cellId !== this.o.cellId || this.running.has(key)) return;
    if (this.evacuator.evacuating) return this.evacuator.reject('Task', t);
    await this.claimOnce(
      key,
      t,
      () => this.claimTask(t),
      () => this.tasks?.get(t.metadata.namespace, t.metadata.name ?? ''),
      (latest) => this.handleTask(latest),
    );
  }

  private async claimTask(t: ITask): Promise<void> {
    const key = taskKey(t);
    // Reserve before starting: a task that does not fit is rejected (Diego's RejectTask) and auctioned again.
    const problems = this.resources.reserve(key, { memoryMb: t.spec.memoryMb, diskMb: t.spec.diskMb });
    if (problems.length > 0) {
      await rejectTask(this.client, t, this.o.cellId, insufficient(problems), {
        log: this.log,
        events: this.events,
        maxRetries: this.o.maxTaskRetries,
      });
      return;
    }
    let started;
    const now = new Date();
    try {
      // A start that failed on a network error is read back before it is called lost (lifecycle/ops.ts).
      started = await startTask(this.client, t, this.o.cellId, now);
    } catch (err) {
      this.resources.release(key);
      if (uncertain(err) && t.metadata.uid)
        this.unseenWrites.set(
          key,
          withSent(this.unseenWrites.get(key), t.metadata.uid, { startedAt: now.toISOString() }),
        );
      throw err; // not started (or unknown): tried again with backoff
    }
    if (started.outcome !== 'moved-on') this.unseenWrites.delete(key);
    // Another cell or a newer version has it, or it runs here already.
    if (started.outcome !== 'done' || !started.value.shouldStart) {
      this.resources.release(key);
      return;
    }
    this.startTask(t);
  }

  /**
   * Work found claimed by this cell (an instance CLAIMED with the guid this agent's claim named, a task Running here)
   * but not run here, whose claim this agent sent without hearing the answer: the claim landed, so the work runs now.
   * Returns whether it was such work. Any other version of the record ends the doubt but an unchanged UNCLAIMED or
   * Pending one (the claim did not land: it is made again).
   */
  private landedUnseen(work: IActualLRP | ITask): boolean {
    const isTask = 'taskGuid' in work.spec;
    const key = isTask ? taskKey(work as ITask) : lrpKey(work as IActualLRP);
    const sent = this.unseenWrites.get(key);
    if (!sent) return false;
    const verdict = unseenClaim(sent, work, this.o.cellId);
    if (verdict !== 'landed') {
      if (verdict === 'other') this.unseenWrites.delete(key);
      return false;
    }
    this.unseenWrites.delete(key);
    const cancelled = isTask && (work as ITask).spec.cancelled;
    if (this.running.has(key) || work.metadata.deletionTimestamp || cancelled) return true;
    this.log.info({ key }, 'a claim whose answer was lost had landed: running the work');
    if (isTask) {
      const t = work as ITask;
      const problems = this.resources.reserve(key, { memoryMb: t.spec.memoryMb, diskMb: t.spec.diskMb });
      if (problems.length > 0) return false; // bulk sync fails it
      this.startTask(t);
    } else {
      void this.startClaimed(work as IActualLRP, (work as IActualLRP).status?.instanceGuid ?? '').catch(
        (err: unknown) => this.log.warn({ err, key }, 'instance'),
      );
    }
    return true;
  }

  /** Runs an instance this cell claimed (resources reserved here: its DesiredLRP says how much). */
  private async startClaimed(a: IActualLRP, instanceGuid: string): Promise<void> {
    const key = lrpKey(a);
    const d = await this.desiredFor(a);
    if (!d || this.running.has(key)) return;
    const problems = this.resources.reserve(key, { memoryMb: d.spec.memoryMb, diskMb: d.spec.diskMb });
    if (problems.length > 0) return; // bulk sync sends it back to the auction
    this.startInstance(a, instanceGuid);
  }

  /** Stops the run of this task, if any (an ActualLRP of the same name has a run of its own under the same key). */
  private stopTask(t: ITask): void {
    const r = this.running.get(taskKey(t));
    if (r?.handle === taskHandle(t)) r.stop.abort();
  }

  /** Runs a started task, or follows the container a previous agent left running (`adopted`). */
  private startTask(t: ITask, adopted?: Container): void {
    const key = taskKey(t);
    if (this.running.has(key)) return;
    if (adopted) this.resources.reserve(key, { memoryMb: t.spec.memoryMb, diskMb: t.spec.diskMb });
    const stop = new AbortController();
    const detach = new AbortController();
    const done = this.runTask(t, stop.signal, detach.signal, adopted)
      .catch((err: unknown) => this.log.warn({ err, key }, 'task'))
      .finally(() => {
        this.running.delete(key);
        this.resources.release(key);
      });
    this.running.set(key, { stop, done, handle: taskHandle(t), detach });
  }

  private async runTask(t: ITask, signal: AbortSignal, detach: AbortSignal, adopted?: Container): Promise<void> {
    const handle = taskHandle(t);
    let completion: { failed: boolean; failureReason?: string; result?: string } | undefined;
    /** A retryable failure before the task ran (Diego: RejectTask, so another cell may take it). */
    let rejection: string | undefined;
    const logs = this.telemetry.taskLog(t);
    const req = taskRunRequest(t, { imageCredentials: this.imageCredentials });
    let created = false;
    try {
      if (!adopted) logs.lifecycle('creating');
      const stored = adopted
        ? await this.store.adopt(adopted, req.container)
        : await this.store.create(req.container, logs.streamer, signal);
      const { container, network } = stored;
      created = true;
      if (!adopted) logs.lifecycle('created');
      this.telemetry.trackTask(container, t, logs);
      this.telemetry.running(handle);
      signal.addEventListener('abort', () => logs.lifecycle('stopping'), { once: true });
      const ctx = this.executorContext(container, logs.streamer, network);
      let action = async (sig: AbortSignal) => {
        if (req.setup) await buildStep(req.setup, ctx).perform(sig);
        await buildStep(req.action, { ...ctx, container: tagProcesses(container) }).perform(sig);
      };
      if (adopted) {
        const found = await reattachAction(adopted, logs.streamer);
        if (found.kind === 'none') throw new Error('the container left by the previous cell agent runs no action');
        if (found.kind === 'exited' && found.status !== 0) throw exitError(logs.streamer, found.status);
        action =
          found.kind === 'running'
            ? (sig) => waitForAction(found.handles, logs.streamer, this.o.gracefulShutdownMs)(sig, undefined)
            : () => Promise.resolve();
        this.log.info({ key: taskKey(t) }, 'task re-adopted');
      }
      // An agent restart lets go of the task: nothing is reported, the next agent follows it.
      const gone = new Promise<'detached'>((resolve) =>
        detach.addEventListener('abort', () => resolve('detached'), { once: true }),
      );
      const ran = action(signal);
      ran.catch(() => undefined);
      if ((await Promise.race([ran, gone])) === 'detached') return;
      const result = t.spec.resultFile ? await readResult(await container.streamOut(t.spec.resultFile)) : '';
      completion = { failed: false, result };
    } catch (err) {
      const reason = err instanceof ContainerCreateError ? err.reason : toStepError(err).message;
      if (!created) logs.lifecycle('create-failed', reason);
      if (err instanceof ContainerCreateError && err.retryable) rejection = reason;
      completion = { failed: true, failureReason: reason };
    } finally {
      // The outcome reaches the cell's disk before the container goes: an agent killed from here on leaves it
      // for the next agent to report (results.ts), instead of a task "failed" because its container is gone.
      if (completion !== undefined && !this.detached) {
        await this.results
          .save(handle, { ...outcomeOf(t), ...completion, ...(rejection !== undefined ? { rejection } : {}) })
          .catch((err: unknown) => this.log.error({ err, key: taskKey(t) }, 'could not keep the task outcome on disk'));
      }
      await this.destroyContainer(handle, created, logs, 'destroying task container');
    }
    if (this.detached) return;
    await this.reportOutcome(t, handle, {
      ...outcomeOf(t),
      ...completion,
      ...(rejection !== undefined ? { rejection } : {}),
    });
  }

  /**
   * Reports a task's outcome (kept on disk since its container finished) and forgets it: completes the Task, or
   * rejects it for a retryable failure. Nothing is written to a task that is no longer Running on this cell.
   */
  private async reportOutcome(t: ITask, handle: string, outcome: SavedOutcome): Promise<void> {
    const current = await this.client.get('Task', t.metadata.namespace, t.metadata.name ?? '').catch((err: unknown) => {
      if (isNotFound(err)) return undefined; // deleted meanwhile: nothing to report
      throw err;
    });
    if (
      current?.metadata.uid === outcome.uid &&
      current.status?.state === 'Running' &&
      current.status.cellId === this.o.cellId
    ) {
      if (outcome.rejection !== undefined) {
        await rejectTask(this.client, current, this.o.cellId, outcome.rejection, {
          log: this.log,
          events: this.events,
          maxRetries: this.o.maxTaskRetries,
        });
      } else {
        const { failed, failureReason, result } = outcome;
        const completed = await retryMovedOn(async () => {
          const latest = await getOrUndefined(this.client, 'Task', t.metadata.namespace, t.metadata.name ?? '');
          if (latest?.metadata.uid !== outcome.uid) return movedOn('gone');
          return completeTask(
            this.client,
            latest,
            this.o.cellId,
            {
              failed,
              ...(failureReason !== undefined ? { failureReason } : {}),
              ...(result !== undefined ? { result } : {}),
            },
            new Date(),
          );
        });
        // Still changing: keep the outcome on disk for the next try (bulk sync). Refused: no longer Running here
        // (cancelled, or failed as its cell was thought lost): nothing to report.
        if (completed.outcome === 'moved-on' && completed.why === 'changed') throw new MovedOnError('reporting a task');
        if (completed.outcome === 'done') this.log.info({ key: taskKey(t), failed }, 'task completed');
      }
    }
    await this.results.remove(handle);
  }

  /** Outcomes a previous agent kept on disk and could not report (killed after the task ended): report them now. */
  private async reportSavedOutcomes(): Promise<void> {
    for (const [handle, saved] of await this.results.list()) {
      const t = this.tasks?.get(saved.namespace, saved.name);
      if (!t || t.metadata.uid !== saved.uid) {
        await this.results.remove(handle);
        continue;
      }
      this.log.info({ key: taskKey(t), failed: saved.failed }, 'reporting the outcome a previous agent kept');
      await this.reportOutcome(t, handle, saved).catch((err: unknown) =>
        this.log.warn({ err, key: taskKey(t) }, 'reporting a kept task outcome'),
      );
    }
  }
}

/** Who a kept outcome belongs to. */
function outcomeOf(t: ITask): Pick<SavedOutcome, 'namespace' | 'name' | 'uid' | 'taskGuid'> {
  return {
    namespace: t.metadata.namespace ?? '',
    name: t.metadata.name ?? '',
    uid: t.metadata.uid ?? '',
    taskGuid: t.spec.taskGuid,
  };
}

/** The tag of sidecar i's processes (a restarted agent re-attaches to them). */
const sidecarTag = (i: number) => `sidecar-${i}`;

/** An instance's net info for its ActualLRP status (Diego's ActualLRPNetInfo), from the executor's network. */
function netInfoOf(network: NetworkInfo): NetInfo {
  return {
    address: network.externalIp,
    instanceAddress: network.internalIp,
    ports: network.ports.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      ...(p.containerTlsProxyPort ? { containerTlsProxyPort: p.containerTlsProxyPort } : {}),
      ...(p.hostTlsProxyPort ? { hostTlsProxyPort: p.hostTlsProxyPort } : {}),
    })),
    preferredAddress: 'HOST',
  };
}

/** The first 10 KB of the one file in a tar stream (Diego's result file), via the system tar. */
async function readResult(tarStream: Readable): Promise<string> {
  const tar = spawn('tar', ['-xOf', '-'], { stdio: ['pipe', 'pipe', 'ignore'] });
  tarStream.pipe(tar.stdin);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of tar.stdout as AsyncIterable<Buffer>) {
    if (size < RESULT_MAX_BYTES) chunks.push(chunk);
    size += chunk.length;
  }
  return Buffer.concat(chunks).subarray(0, RESULT_MAX_BYTES).toString('utf8');
}

/** A report lost to an API error is made again after 0.5 s, doubling up to 10 s. */
const REPORT_RETRY_MIN_MS = 500;
const REPORT_RETRY_MAX_MS = 10_000;

/** Per-key retry timers with exponential backoff; a success resets the key. */
class Backoff {
  readonly #timers = new Map<string, { timer: NodeJS.Timeout; attempt: number }>();
  readonly #attempts = new Map<string, number>();
  readonly #minMs: number;
  readonly #maxMs: number;

  constructor(minMs: number, maxMs: number) {
    this.#minMs = minMs;
    this.#maxMs = maxMs;
  }

  /** Calls fn once after the key's next delay (a pending retry of the key is kept, not doubled). */
  later(key: string, fn: () => void): void {
    if (this.#timers.has(key)) return;
    const attempt = this.#attempts.get(key) ?? 0;
    this.#attempts.set(key, attempt + 1);
    const timer = setTimeout(
      () => {
        this.#timers.delete(key);
        fn();
      },
      Math.min(this.#minMs * 2 ** attempt, this.#maxMs),
    );
    timer.unref();
    this.#timers.set(key, { timer, attempt });
  }

  succeeded(key: string): void {
    this.#attempts.delete(key);
  }

  clear(): void {
    for (const { timer } of this.#timers.values()) clearTimeout(timer);
    this.#timers.clear();
    this.#attempts.clear();
  }
}
