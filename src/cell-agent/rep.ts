// Diego's rep for one cell: registers the Cell, keeps its presence Lease, watches only the work placed on it
// (field selector spec.cellId), claims it with a compare-and-swap, runs it through the executor in a container
// of the backend, and reports RUNNING (once healthy), CRASHED, or a task's result. "Stop, then remove": it
// releases the container finalizer only after destroying the container.
import type { KubeConfig } from '@kubernetes/client-node';
import { spawn } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import type { Readable } from 'node:stream';
import type { Logger } from 'pino';
import { nextCrashCount } from '../controllers/crash-policy.ts';
import { FINALIZER_CONTAINER } from '../controllers/names.ts';
import { completeTask, startTask } from '../controllers/task-lifecycle.ts';
import { RESULT_MAX_BYTES } from '../crds/common.ts';
import { GROUP, VERSION } from '../crds/kinds.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import { createInformer, type Informer, keyOf } from '../lib/informer.ts';
import { withDefaults } from '../lib/options.ts';
import { DiegoClient, isConflict, isNotFound, refOf } from '../lib/resources.ts';
import type { Container, ContainerBackend } from './backends/types.ts';
import { registerCell, releasePresence, renewPresence } from './presence.ts';
import { type EvacuationResult, Evacuator } from './evacuation.ts';
import {
  buildStep,
  checkTargetFor,
  LogStreamer,
  probesFromChecks,
  startupThenLiveness,
  toStepError,
} from './executor/index.ts';

export interface RepOptions {
  kc: KubeConfig;
  cellId: string;
  zone?: string;
  capacity: { memoryMb: number; diskMb: number; containers: number };
  /** Stacks this cell can run as preloaded:<stack>. */
  stacks: string[];
  /** Rootfs providers besides preloaded that the backend runs (Diego's rep supported_providers), e.g. ['docker']. */
  rootfsProviders?: string[];
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
}

interface Running {
  stop: AbortController;
  done: Promise<void>;
  /** LRP containers: the instance guid they were claimed with. */
  instanceGuid?: string;
}

export class Rep {
  private readonly o: RepOptions & { systemNamespace: string; leaseSeconds: number };
  private readonly client: DiegoClient;
  private readonly log: Logger;
  private actual?: Informer<IActualLRP>;
  private tasks?: Informer<ITask>;
  private renewTimer?: NodeJS.Timeout;
  private readonly running = new Map<string, Running>();
  readonly evacuator: Evacuator;

  constructor(opts: RepOptions) {
    this.o = withDefaults({ systemNamespace: 'diego-system', leaseSeconds: 15 }, opts);
    this.client = new DiegoClient(opts.kc);
    this.log = opts.log.child({ component: 'rep', cellId: opts.cellId });
    this.evacuator = new Evacuator({
      client: this.client,
      cellId: opts.cellId,
      log: this.log,
      timeoutMs: opts.evacuationTimeoutMs,
      pollIntervalMs: opts.evacuationPollingIntervalMs,
      cell: {
        lrpContainers: () =>
          [...this.running].flatMap(([key, r]) => {
            const [namespace = '', name = ''] = key.split('/');
            return r.instanceGuid ? [{ namespace, name, instanceGuid: r.instanceGuid }] : [];
          }),
        taskContainers: () => [...this.running.values()].filter((r) => !r.instanceGuid).length,
        stopContainer: async (guid) => {
          const r = [...this.running.values()].find((x) => x.instanceGuid === guid);
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

  async start(): Promise<void> {
    const { kc, cellId } = this.o;
    await registerCell(kc, {
      cellId,
      zone: this.o.zone ?? '',
      capacity: this.o.capacity,
      rootfsProviders: [
        { name: 'preloaded', properties: this.o.stacks },
        ...(this.o.rootfsProviders ?? []).map((name) => ({ name })),
      ],
    });
    await this.evacuator.resume(); // a restarted agent takes work again
    await this.renew();
    this.renewTimer = setInterval(
      () => void this.renew().catch((err: unknown) => this.log.warn({ err }, 'lease renewal failed')),
      (this.o.leaseSeconds * 1000) / 3,
    );
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
      void this.handleLRP(a).catch((err: unknown) => this.log.warn({ err, key: keyOf(a) }, 'instance'));
    this.actual.on('add', onLRP);
    this.actual.on('update', onLRP);
    const onTask = (t: ITask) =>
      void this.handleTask(t).catch((err: unknown) => this.log.warn({ err, key: keyOf(t) }, 'task'));
    this.tasks.on('add', onTask);
    this.tasks.on('update', onTask);
    await Promise.all([this.actual.start(), this.tasks.start()]);
    this.log.info({ capacity: this.o.capacity }, 'cell registered');
  }

  /**
   * Stops heartbeating and watching, stops every container it runs, and gives up its presence at once (so no
   * more work is placed here) instead of letting the lease run out.
   */
  async stop(): Promise<void> {
    clearInterval(this.renewTimer);
    await Promise.all([this.actual?.stop(), this.tasks?.stop()]);
    for (const r of this.running.values()) r.stop.abort();
    await Promise.all([...this.running.values()].map((r) => r.done));
    await releasePresence(this.o.kc, this.o.systemNamespace, this.o.cellId).catch((err: unknown) =>
      this.log.warn({ err }, 'could not release the presence lease'),
    );
  }

  /** Diego's evacuation (SIGTERM, node drain): hands the cell's instances over to other cells, then returns. */
  evacuate(): Promise<EvacuationResult> {
    return this.evacuator.evacuate();
  }

  private renew(): Promise<void> {
    return renewPresence(this.o.kc, this.o.systemNamespace, this.o.cellId, this.o.leaseSeconds);
  }

  private async handleLRP(a: IActualLRP): Promise<void> {
    const key = keyOf(a);
    if (a.status?.presence === 'EVACUATING') return this.evacuator.onCopy(a);
    if (a.metadata.deletionTimestamp) {
      const r = this.running.get(key);
      if (r) {
        r.stop.abort();
        await r.done;
      }
      return this.release(a);
    }
    if (this.running.has(key) || a.status?.state !== 'UNCLAIMED' || a.status.presence !== 'ORDINARY') return;
    if (this.evacuator.evacuating) return this.evacuator.reject('ActualLRP', a);
    const instanceGuid = randomUUID();
    let claimed: IActualLRP;
    try {
      claimed = await this.client.patchStatus('ActualLRP', refOf(a), {
        state: 'CLAIMED',
        cellId: this.o.cellId,
        instanceGuid,
        since: new Date().toISOString(),
        placementError: null,
      });
    } catch (err) {
      if (isConflict(err) || isNotFound(err)) return; // moved on meanwhile; a newer event follows
      throw err;
    }
    const stop = new AbortController();
    const done = this.runInstance(claimed, instanceGuid, stop.signal).finally(() => {
      this.running.delete(key);
      // Events that arrived while this run was ending were ignored: look at the latest version again.
      const latest = this.actual?.get(a.metadata.namespace, a.metadata.name ?? '');
      if (latest) void this.handleLRP(latest).catch((err: unknown) => this.log.warn({ err, key }, 'instance'));
    });
    this.running.set(key, { stop, done, instanceGuid });
  }

  private async runInstance(a: IActualLRP, instanceGuid: string, signal: AbortSignal): Promise<void> {
    const owner = a.metadata.ownerReferences?.find((r) => r.kind === 'DesiredLRP')?.name ?? '';
    const d: IDesiredLRP = await this.client.get('DesiredLRP', a.metadata.namespace, owner);
    const log = this.appLog(d.spec.logGuid ?? d.spec.processGuid, a.spec.index, d.spec.logSource);
    let container: Container | undefined;
    let runningSince: number | undefined;
    try {
      container = await this.o.backend.create({
        handle: instanceGuid,
        rootfs: d.spec.rootFs,
        env: (d.spec.environmentVariables ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })),
        limits: { memoryMb: d.spec.memoryMb, diskMb: d.spec.diskMb, pids: d.spec.maxPids, cpuWeight: d.spec.cpuWeight },
        netIn: (d.spec.ports ?? []).map((containerPort) => ({ containerPort })),
      });
      const info = await container.info();
      const ctx = { container, log, gracefulShutdownMs: d.spec.terminationGracePeriodMs ?? this.o.gracefulShutdownMs };
      if (d.spec.setup) await buildStep(d.spec.setup, ctx).perform(signal);
      const healthy = async () => {
        runningSince = Date.now();
        const current = await this.client.get('ActualLRP', a.metadata.namespace, a.metadata.name ?? '');
        if (current.status?.instanceGuid !== instanceGuid) return; // evacuated meanwhile: no longer this container
        await this.client.patchStatus('ActualLRP', refOf(current), {
          state: 'RUNNING',
          since: new Date(runningSince).toISOString(),
          availabilityZone: this.o.zone ?? '',
          routable: true,
          netInfo: {
            address: '127.0.0.1',
            instanceAddress: info.ip ?? '127.0.0.1',
            ports: info.ports,
            preferredAddress: 'HOST',
          },
        });
      };
      const probes = probesFromChecks(d.spec.checkDefinition?.checks ?? [], checkTargetFor(info), {
        livenessIntervalMs: this.o.livenessIntervalMs,
      });
      const stopBoth = new AbortController();
      const both = AbortSignal.any([signal, stopBoth.signal]);
      const action = buildStep(d.spec.action, ctx).perform(
        both,
        probes.length === 0 ? () => void healthy() : undefined,
      );
      const health =
        probes.length > 0
          ? startupThenLiveness(
              { probes, startTimeoutMs: d.spec.startTimeoutMs ?? 0, startupIntervalMs: this.o.startupIntervalMs, log },
              both,
              () => void healthy(),
            )
          : new Promise<never>(() => undefined);
      // The instance lives while both the action runs and the checks pass; whichever ends first ends it.
      const outcome = await Promise.race([action.then(() => 'the process exited'), health]).catch(
        (err: unknown) => toStepError(err).message,
      );
      stopBoth.abort();
      await action.catch(() => undefined);
      if (signal.aborted) return; // stopped on purpose: not a crash
      await this.reportCrash(a, String(outcome), runningSince);
    } catch (err) {
      if (!signal.aborted) await this.reportCrash(a, toStepError(err).message, runningSince);
    } finally {
      await this.o.backend
        .destroy(instanceGuid)
        .catch((err: unknown) => this.log.warn({ err }, 'destroying container'));
    }
  }

  private async reportCrash(a: IActualLRP, reason: string, runningSince: number | undefined): Promise<void> {
    const current = await this.client.get('ActualLRP', a.metadata.namespace, a.metadata.name ?? '');
    // Evacuated: the record is another placement's now (the evacuator removes this container's copy).
    if (current.status?.instanceGuid !== a.status?.instanceGuid) return;
    await this.client.patchStatus('ActualLRP', refOf(current), {
      state: 'CRASHED',
      crashCount: nextCrashCount(current.status?.crashCount ?? 0, runningSince, Date.now()),
      crashReason: reason.slice(0, 1024),
      since: new Date().toISOString(),
      instanceGuid: null,
      cellId: null,
      netInfo: null,
    });
    this.log.info({ key: keyOf(a), reason }, 'instance crashed');
  }

  private async release(a: IActualLRP): Promise<void> {
    const finalizers = a.metadata.finalizers ?? [];
    if (!finalizers.includes(FINALIZER_CONTAINER)) return;
    try {
      await this.client.patch('ActualLRP', refOf(a), {
        metadata: { finalizers: finalizers.filter((f) => f !== FINALIZER_CONTAINER) },
      });
    } catch (err) {
      if (!isConflict(err) && !isNotFound(err)) throw err;
    }
  }

  private async handleTask(t: ITask): Promise<void> {
    const key = keyOf(t);
    if (t.status?.state !== 'Pending' || t.spec.cellId !== this.o.cellId || this.running.has(key)) return;
    if (this.evacuator.evacuating) return this.evacuator.reject('Task', t);
    let won: boolean;
    try {
      won = await startTask(this.client, t, this.o.cellId);
    } catch {
      return; // another cell or a newer version has it
    }
    if (!won) return;
    const stop = new AbortController();
    const done = this.runTask(t, stop.signal).finally(() => this.running.delete(key));
    this.running.set(key, { stop, done });
  }

  private async runTask(t: ITask, signal: AbortSignal): Promise<void> {
    const handle = `task-${t.metadata.uid ?? randomUUID()}`;
    let completion: { failed: boolean; failureReason?: string; result?: string };
    try {
      const container = await this.o.backend.create({
        handle,
        rootfs: t.spec.rootFs,
        env: (t.spec.environmentVariables ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })),
        limits: { memoryMb: t.spec.memoryMb, diskMb: t.spec.diskMb, pids: t.spec.maxPids, cpuWeight: t.spec.cpuWeight },
      });
      await buildStep(t.spec.action, {
        container,
        log: this.appLog(t.spec.logGuid ?? t.spec.taskGuid, 0, t.spec.logSource),
        gracefulShutdownMs: this.o.gracefulShutdownMs,
      }).perform(signal);
      const result = t.spec.resultFile ? await readResult(await container.streamOut(t.spec.resultFile)) : '';
      completion = { failed: false, result };
    } catch (err) {
      completion = { failed: true, failureReason: toStepError(err).message };
    } finally {
      await this.o.backend.destroy(handle).catch((err: unknown) => this.log.warn({ err }, 'destroying task container'));
    }
    const current = await this.client.get('Task', t.metadata.namespace, t.metadata.name ?? '');
    if (current.status?.state === 'Running') await completeTask(this.client, current, this.o.cellId, completion);
    this.log.info({ key: keyOf(t), failed: completion.failed }, 'task completed');
  }

  /** App log lines, one structured line each (the log stream per log guid is issue #4's next step). */
  private appLog(logGuid: string, index: number, source: string | undefined): LogStreamer {
    const appLog = this.log.child({ logGuid, index });
    return new LogStreamer((m) => appLog.info({ source: m.source, stream: m.stream }, m.line), source);
  }
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
