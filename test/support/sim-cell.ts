// A simulated cell for integration tests: it registers a Cell and keeps its Lease, watches only the work
// placed on it (field selector spec.cellId), and plays the cell-agent's side of the protocol through the real
// API server with the same fenced operations as the rep (src/lifecycle/ops.ts): claim, start, crash, complete, and
// release the container finalizer.
import type { KubeConfig } from '@kubernetes/client-node';
import { randomUUID } from 'node:crypto';
import { GROUP, VERSION } from '../../src/crds/kinds.ts';
import type { IActualLRP, ITask } from '../../src/crds/models.ts';
import { instanceKeyOf, isUnclaimedOrdinary } from '../../src/lifecycle/actual-lrp.ts';
import { FINALIZER_CONTAINER } from '../../src/lifecycle/names.ts';
import { claim, completeTask, crash, orThrow, releaseContainer, start, startTask } from '../../src/lifecycle/ops.ts';
import type { Completion } from '../../src/lifecycle/task.ts';
import { createInformer, type Informer, keyOf } from '../../src/lib/informer.ts';
import { cellObjectName, registerCell, releasePresence, renewPresence } from '../../src/cell-agent/presence.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { createLogger } from '../../src/lib/log.ts';
import { type EvacuationResult, Evacuator } from '../../src/cell-agent/evacuation.ts';
import { EventRecorder } from '../../src/lib/events.ts';

export interface SimCellOptions {
  cellId: string;
  zone?: string;
  memoryMb?: number;
  diskMb?: number;
  containers?: number;
  stacks?: string[];
  placementTags?: string[];
  /** Lease TTL in seconds (Diego: 15). */
  leaseSeconds?: number;
  namespace?: string; // where leases live
  /** Claim and start placed instances on its own (default true). */
  autoStart?: boolean;
  /** Report claimed instances RUNNING at once (default true); false leaves them CLAIMED (starting). */
  autoRun?: boolean;
  /** Start claimed tasks on its own (default true); they stay Running until complete() unless autoComplete. */
  autoStartTasks?: boolean;
  autoComplete?: Completion;
  /** The address its instances report (default 127.0.0.1). */
  address?: string;
  /** Evacuation timeout (Diego: 600 s) and polling interval (Diego: 10 s) for evacuate(). */
  evacuationTimeoutMs?: number;
  evacuationPollIntervalMs?: number;
}

export class SimCell {
  readonly o: Required<
    Omit<SimCellOptions, 'autoComplete' | 'evacuationTimeoutMs' | 'evacuationPollIntervalMs' | 'address'>
  > &
    Pick<SimCellOptions, 'autoComplete' | 'evacuationTimeoutMs' | 'evacuationPollIntervalMs' | 'address'>;
  readonly client: DiegoClient;
  private readonly kc: KubeConfig;
  private actual?: Informer<IActualLRP>;
  private tasks?: Informer<ITask>;
  private renewTimer?: NodeJS.Timeout;
  /** "Containers": instance guids this cell runs. */
  readonly containers = new Set<string>();
  /** How often each ActualLRP was claimed here (to prove no double placement). */
  readonly claims = new Map<string, number>();
  /** Every task guid this cell started (to prove at-most-once). */
  readonly startedTasks: string[] = [];
  private readonly log = createLogger(process.env.LOG_LEVEL ?? 'warn');
  /** The ORDINARY record (namespace/name) each LRP "container" was claimed as. */
  private readonly claimedAs = new Map<string, string>();
  /** The same evacuator as the cell-agent's, over these simulated containers. */
  readonly evacuator: Evacuator;

  constructor(kc: KubeConfig, opts: SimCellOptions) {
    this.kc = kc;
    this.client = new DiegoClient(kc);
    this.o = {
      zone: 'z1',
      memoryMb: 1024,
      diskMb: 4096,
      containers: 100,
      stacks: ['busybox'],
      placementTags: [],
      leaseSeconds: 15,
      namespace: 'diego-system',
      autoStart: true,
      autoRun: true,
      autoStartTasks: true,
      ...opts,
    };
    this.evacuator = new Evacuator({
      client: this.client,
      cellId: this.o.cellId,
      log: this.log,
      timeoutMs: this.o.evacuationTimeoutMs,
      pollIntervalMs: this.o.evacuationPollIntervalMs,
      events: new EventRecorder(kc, 'sim-cell', this.log),
      cell: {
        lrpContainers: () =>
          [...this.containers].flatMap((instanceGuid) => {
            const [namespace = '', name = ''] = (this.claimedAs.get(instanceGuid) ?? '').split('/');
            return name ? [{ namespace, name, instanceGuid }] : [];
          }),
        taskContainers: () =>
          (this.tasks?.list() ?? []).filter((t) => t.status?.state === 'Running' && t.status.cellId === this.o.cellId)
            .length,
        stopContainer: (guid) => Promise.resolve(void this.containers.delete(guid)),
        stopAll: () => Promise.resolve(this.containers.clear()),
      },
    });
  }

  get name(): string {
    return cellObjectName(this.o.cellId);
  }

  async start(): Promise<this> {
    await registerCell(this.kc, {
      cellId: this.o.cellId,
      zone: this.o.zone,
      capacity: { memoryMb: this.o.memoryMb, diskMb: this.o.diskMb, containers: this.o.containers },
      // As a rep advertises them: preloaded and preloaded+layer with the same stacks.
      rootfsProviders: [
        { name: 'preloaded', properties: this.o.stacks },
        { name: 'preloaded+layer', properties: this.o.stacks },
        { name: 'docker' },
      ],
      placementTags: this.o.placementTags,
    });
    await this.renew();
    this.resumeHeartbeat();
    const selector = `spec.cellId=${this.o.cellId}`;
    this.actual = createInformer<IActualLRP>(this.kc, {
      path: `/apis/${GROUP}/${VERSION}/actuallrps`,
      fieldSelector: selector,
      logger: this.log,
    });
    this.tasks = createInformer<ITask>(this.kc, {
      path: `/apis/${GROUP}/${VERSION}/tasks`,
      fieldSelector: selector,
      logger: this.log,
    });
    const onLRP = (a: IActualLRP) =>
      void this.handleLRP(a).catch((err: unknown) => this.log.warn({ err }, 'sim cell LRP'));
    this.actual.on('add', onLRP);
    this.actual.on('update', onLRP);
    const onTask = (t: ITask) =>
      void this.handleTask(t).catch((err: unknown) => this.log.warn({ err }, 'sim cell task'));
    this.tasks.on('add', onTask);
    this.tasks.on('update', onTask);
    await Promise.all([this.actual.start(), this.tasks.start()]);
    return this;
  }

  /** Stops heartbeating (the lease then expires) and watching; the Cell object stays, as after a crash. */
  async kill(): Promise<void> {
    this.pauseHeartbeat();
    await Promise.all([this.actual?.stop(), this.tasks?.stop()]);
  }

  pauseHeartbeat(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = undefined;
  }

  resumeHeartbeat(): void {
    clearInterval(this.renewTimer);
    this.renewTimer = setInterval(() => void this.renew().catch(() => undefined), (this.o.leaseSeconds * 1000) / 3);
  }

  renew(): Promise<void> {
    return renewPresence(this.kc, this.o.namespace, this.o.cellId, this.o.leaseSeconds);
  }

  /** Instances placed on this cell, from its own watch. */
  instances(): IActualLRP[] {
    return this.actual?.list() ?? [];
  }

  /**
   * Diego's evacuation, as the cell-agent does it on SIGTERM: hands instances over, then stops heartbeating
   * and gives its presence up (the Cell object stays until stop()).
   */
  async evacuate(): Promise<EvacuationResult> {
    const result = await this.evacuator.evacuate();
    await this.kill();
    await releasePresence(this.kc, this.o.namespace, this.o.cellId).catch(() => undefined);
    return result;
  }

  /** Claims (and starts) what is placed here now, e.g. after turning autoStart on. */
  async claimPlaced(): Promise<void> {
    for (const a of this.instances()) await this.handleLRP(a);
  }

  /** An LRP container exits on its own (no report, as when the cell no longer owns its record). */
  exitContainer(instanceGuid: string): void {
    this.containers.delete(instanceGuid);
  }

  private async handleLRP(a: IActualLRP): Promise<void> {
    if (a.status?.presence === 'EVACUATING') return this.evacuator.onCopy(a);
    if (a.metadata.deletionTimestamp) return this.release(a);
    if (!this.o.autoStart || a.spec.cellId !== this.o.cellId) return;
    // Claim only what the controller has marked as an ORDINARY instance waiting for a cell.
    if (isUnclaimedOrdinary(a)) {
      if (this.evacuator.evacuating) return this.evacuator.reject('ActualLRP', a);
      const key = { instanceGuid: randomUUID(), cellId: this.o.cellId };
      const claimed = await claim(this.client, a, key, Date.now());
      if (claimed.outcome !== 'done') return; // moved on (or not ours): a newer event follows
      this.containers.add(key.instanceGuid);
      this.claimedAs.set(key.instanceGuid, keyOf(a));
      this.claims.set(keyOf(a), (this.claims.get(keyOf(a)) ?? 0) + 1);
      if (!this.o.autoRun) return;
      const netInfo = {
        address: this.o.address ?? '127.0.0.1',
        instanceAddress: '10.255.0.1',
        ports: [{ containerPort: 8080, hostPort: 61000 }],
      };
      const info = { netInfo, routable: true, availabilityZone: this.o.zone };
      orThrow(await start(this.client, claimed.value, key, info, { now: Date.now(), claim: 'own' }), 'starting');
    }
  }

  /** "Stops the container", then releases the finalizer (unless another record still uses the container). */
  private async release(a: IActualLRP): Promise<void> {
    if (!a.metadata.finalizers?.includes(FINALIZER_CONTAINER)) return;
    const guid = a.status?.instanceGuid;
    const stillUsed = this.instances().some(
      (o) => o !== a && !o.metadata.deletionTimestamp && o.status?.instanceGuid === guid,
    );
    if (guid && !stillUsed) this.containers.delete(guid);
    await releaseContainer(this.client, a);
  }

  /** Makes an instance crash, as the agent reports it when the process exits. */
  async crash(name: string, namespace: string, reason = 'APP/PROC/WEB: Exited with status 1'): Promise<void> {
    const a = await this.client.get('ActualLRP', namespace, name);
    if (a.status?.instanceGuid) this.containers.delete(a.status.instanceGuid);
    orThrow(await crash(this.client, a, instanceKeyOf(a), reason, { now: Date.now() }), `crashing ${name}`);
  }

  private async handleTask(t: ITask): Promise<void> {
    if (
      !this.o.autoStartTasks ||
      t.spec.cellId !== this.o.cellId ||
      (t.status?.state ?? 'Pending') !== 'Pending' ||
      !t.status?.state
    )
      return;
    if (this.evacuator.evacuating) return this.evacuator.reject('Task', t);
    const started = await startTask(this.client, t, this.o.cellId, new Date());
    // Lost the race or not startable: someone else has it.
    if (started.outcome !== 'done' || !started.value.shouldStart) return;
    this.startedTasks.push(t.spec.taskGuid);
    if (this.o.autoComplete) {
      const running = await this.client.get('Task', t.metadata.namespace, t.metadata.name ?? '');
      orThrow(await completeTask(this.client, running, this.o.cellId, this.o.autoComplete, new Date()), 'completing');
    }
  }

  async complete(name: string, namespace: string, completion: Completion): Promise<void> {
    const t = await this.client.get('Task', namespace, name);
    orThrow(await completeTask(this.client, t, this.o.cellId, completion, new Date()), `completing ${name}`);
  }

  async stop(): Promise<void> {
    await this.kill();
    await releasePresence(this.kc, this.o.namespace, this.o.cellId).catch(() => undefined);
    await this.client.delete('Cell', { name: this.name });
  }

  static key(obj: IActualLRP | ITask): string {
    return keyOf(obj);
  }
}
