// A whole diego-operator system as separate OS processes, for fault injection: its own control plane (etcd,
// kube-apiserver, kube-controller-manager; restartable), the CRDs, the admission webhook (served from this
// process), controllers (`node src/main.ts controller`, leader-elected) and cell agents (`node src/main.ts
// cell-agent --backend process`, or test/chaos/runc-agent.ts for runc cells on their own CNI bridge), each of
// which can be killed with -9, stopped with SIGSTOP, resumed and restarted. stop() leaves nothing behind.
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, rmSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { KubeConfig } from '@kubernetes/client-node';
import type { Logger } from 'pino';
import { removeBridgeFirewall } from '../../src/cell-agent/backends/firewall.ts';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import { LEADER_LEASE_NAME } from '../../src/controllers/manager.ts';
import { startControlPlane, type ControlPlane } from '../../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../../src/lib/kube.ts';
import { leasePath } from '../../src/lib/lease.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { startLocalWebhook, type LocalWebhook } from '../../src/webhooks/local.ts';
import { type Child, REPO, startProcess, startRole } from './procs.ts';
import { alive, killRunProcesses } from './host.ts';
import type { RunInfo } from './work.ts';

export const SYSTEM_NAMESPACE = 'diego-system';
export const WORK_NAMESPACE = 'chaos';

export interface CellConfig {
  id: string;
  backend: 'process' | 'runc';
  memoryMb?: number;
  containers?: number;
}

export interface ClusterOptions {
  runId: string;
  /** Logs of every process (kept after stop). */
  logDir: string;
  controllers: number;
  cells: CellConfig[];
  log: Logger;
  /** The cells' bulk sync period in seconds (Diego: 30; the chaos runs use 5). */
  pollingIntervalS?: number;
}

export interface Cell {
  config: CellConfig;
  stateDir: string;
  agent: Child | undefined;
  paused: boolean;
  /** When the agent was last (re)started or resumed; undefined while it is down or stopped. */
  upSince: number | undefined;
  /** runc cells: their own bridge. */
  bridge?: string;
  subnet?: string;
}

export class ChaosCluster {
  readonly o: ClusterOptions;
  readonly run: RunInfo;
  readonly stateRoot: string;
  cp!: ControlPlane;
  kc!: KubeConfig;
  client!: DiegoClient;
  readonly controllers: Child[] = [];
  readonly cells = new Map<string, Cell>();
  /** When the control plane last came back from a fault (restart()); 0: never disturbed. */
  controlPlaneUpSince = 0;
  controlPlaneDown = false;
  #webhook: LocalWebhook | undefined;
  #controllerSeq = 0;
  #stopped = false;

  constructor(o: ClusterOptions) {
    this.o = o;
    this.run = { runId: o.runId, ownerPid: process.pid, namespace: WORK_NAMESPACE };
    this.stateRoot = join(tmpdir(), `diego-chaos-${o.runId}`);
  }

  /** Everything up: control plane, CRDs, webhook, namespaces, controllers (a leader elected), cells present. */
  async start(): Promise<void> {
    await sweepStale(this.o.log);
    mkdirSync(this.o.logDir, { recursive: true });
    mkdirSync(this.stateRoot, { recursive: true });
    this.cp = await startControlPlane({ controllerManager: true, logger: this.o.log });
    this.kc = kubeConfigFromString(this.cp.kubeconfig);
    this.client = new DiegoClient(this.kc);
    await installCRDs(this.kc);
    this.#webhook = await startLocalWebhook(this.kc, this.o.log);
    for (const ns of [SYSTEM_NAMESPACE, WORK_NAMESPACE]) {
      await rawRequest(this.kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
    }
    for (let i = 0; i < this.o.controllers; i++) await this.startController();
    await this.waitFor('a leader', async () => (await this.leader()) !== undefined, 120_000);
    let subnet = 0;
    for (const c of this.o.cells) {
      const cell: Cell = {
        config: c,
        stateDir: join(this.stateRoot, c.id),
        agent: undefined,
        paused: false,
        upSince: undefined,
      };
      if (c.backend === 'runc') {
        // Own bridge and subnet per cell and run: 10.(200+n).(pid % 250).0/24.
        cell.bridge = `dch${process.pid % 100000}${subnet}`.slice(0, 15);
        cell.subnet = `10.${200 + subnet}.${process.pid % 250}.0/24`;
        subnet++;
      }
      mkdirSync(cell.stateDir, { recursive: true });
      this.cells.set(c.id, cell);
      await this.startAgent(c.id);
    }
    await this.waitFor('every cell present', async () => this.allCellsPresent(), 120_000);
  }

  get kubeconfigPath(): string {
    return this.cp.kubeconfigPath;
  }

  // ---- controllers ----

  async startController(): Promise<Child> {
    const n = this.#controllerSeq++;
    const child = await startRole(
      `controller-${n}`,
      [
        'controller',
        '--kubeconfig',
        this.cp.kubeconfigPath,
        '--webhook-cert-dir=',
        '--metrics-address',
        '127.0.0.1:0',
        '--system-namespace',
        SYSTEM_NAMESPACE,
      ],
      join(this.o.logDir, `controller-${n}.log`),
    );
    this.controllers.push(child);
    return child;
  }

  /** The controller process holding the leader lease (its identity is `<hostname>-<pid>`), if any. */
  async leader(): Promise<Child | undefined> {
    const lease = await rawRequest<{ spec?: { holderIdentity?: string } }>(this.kc, {
      method: 'GET',
      path: leasePath(SYSTEM_NAMESPACE, LEADER_LEASE_NAME),
    }).catch(() => undefined);
    const holder = lease?.spec?.holderIdentity ?? '';
    return this.controllers.find((c) => c.alive && holder === `${hostname()}-${c.pid}`);
  }

  liveControllers(): Child[] {
    return this.controllers.filter((c) => c.alive);
  }

  // ---- cells ----

  cell(id: string): Cell {
    const c = this.cells.get(id);
    if (!c) throw new Error(`no cell ${id}`);
    return c;
  }

  async startAgent(id: string): Promise<void> {
    const cell = this.cell(id);
    if (cell.agent?.alive) throw new Error(`cell ${id} has a live agent already`);
    const c = cell.config;
    const polling = String(this.o.pollingIntervalS ?? 5);
    const common = [
      '--kubeconfig',
      this.cp.kubeconfigPath,
      '--cell-id',
      id,
      '--state-dir',
      cell.stateDir,
      '--system-namespace',
      SYSTEM_NAMESPACE,
      '--memory-mb',
      String(c.memoryMb ?? 8192),
      '--disk-mb',
      String(c.memoryMb ?? 8192),
      '--containers',
      String(c.containers ?? 250),
      '--polling-interval',
      polling,
    ];
    const log = join(this.o.logDir, `cell-${id}.log`);
    cell.agent =
      c.backend === 'runc'
        ? await startProcess(
            `cell-${id}`,
            process.execPath,
            [
              join(REPO, 'test', 'chaos', 'runc-agent.ts'),
              ...common,
              '--bridge',
              cell.bridge ?? '',
              '--subnet',
              cell.subnet ?? '',
            ],
            log,
          )
        : await startRole(
            `cell-${id}`,
            ['cell-agent', ...common, '--backend', 'process', '--ops-address', '127.0.0.1:0', '--zone', 'z1'],
            log,
          );
    cell.paused = false;
    cell.upSince = Date.now();
  }

  /** kill -9 of the agent (its containers go on running, as after a crash). */
  async killAgent(id: string): Promise<void> {
    const cell = this.cell(id);
    cell.upSince = undefined;
    await cell.agent?.kill();
  }

  async restartAgent(id: string, downMs = 0): Promise<void> {
    await this.killAgent(id);
    if (downMs > 0) await sleep(downMs);
    await this.startAgent(id);
  }

  /** SIGSTOP: the agent stops renewing its presence (and doing anything), its containers go on running. */
  pauseAgent(id: string): void {
    const cell = this.cell(id);
    cell.upSince = undefined;
    cell.paused = true;
    cell.agent?.signal('SIGSTOP');
  }

  resumeAgent(id: string): void {
    const cell = this.cell(id);
    cell.agent?.signal('SIGCONT');
    cell.paused = false;
    cell.upSince = Date.now();
  }

  /** When the cell's agent (and the control plane) have been up undisturbed since; undefined while disturbed. */
  settledSince(cellId: string | undefined): number | undefined {
    if (this.controlPlaneDown) return undefined;
    const cell = cellId ? this.cells.get(cellId) : undefined;
    if (cellId && !cell) return this.controlPlaneUpSince; // not one of ours
    if (cell && (cell.upSince === undefined || !cell.agent?.alive)) return undefined;
    return Math.max(cell?.upSince ?? 0, this.controlPlaneUpSince);
  }

  /** The cell whose state directory holds container `handle` (process: containers/<h>, runc: bundles/<h>). */
  cellOfHandle(handle: string): string | undefined {
    for (const [id, c] of this.cells) {
      if (existsSync(join(c.stateDir, 'containers', handle)) || existsSync(join(c.stateDir, 'bundles', handle)))
        return id;
    }
    return undefined;
  }

  /** The cell whose state directory contains `path` (a task's working directory). */
  cellOfPath(path: string): string | undefined {
    for (const [id, c] of this.cells) if (path.startsWith(c.stateDir + '/')) return id;
    return undefined;
  }

  async allCellsPresent(): Promise<boolean> {
    const leases = await rawRequest<{ items: { spec?: { holderIdentity?: string } }[] }>(this.kc, {
      method: 'GET',
      path: `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NAMESPACE}/leases`,
    }).catch(() => ({ items: [] }));
    const holders = new Set(leases.items.map((l) => l.spec?.holderIdentity));
    return [...this.cells.keys()].every((id) => holders.has(id));
  }

  // ---- control plane ----

  /** kill -9 of etcd or kube-apiserver, down for downMs, then started again; resolves once it is ready. */
  async restartControlPlane(name: 'etcd' | 'kube-apiserver', downMs: number): Promise<void> {
    if (!this.cp.restart) throw new Error('this control plane cannot restart its components');
    this.controlPlaneDown = true;
    try {
      await this.cp.restart(name, { downMs });
    } finally {
      this.controlPlaneDown = false;
      this.controlPlaneUpSince = Date.now();
    }
  }

  // ---- helpers ----

  async waitFor(what: string, cond: () => Promise<boolean> | boolean, timeoutMs: number, everyMs = 500): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      if (await Promise.resolve(cond()).catch(() => false)) return;
      if (Date.now() > deadline) throw new Error(`chaos: timed out after ${timeoutMs / 1000}s waiting for ${what}`);
      await sleep(everyMs);
    }
  }

  /**
   * Deletes the run's work and waits (bounded) until the cells have stopped its containers, then stops the
   * agents (SIGINT: stop at once, destroying what they still run), the controllers, the webhook and the control
   * plane; kills whatever of the run is still on the host, removes runc containers, bridges and state dirs.
   * Returns what had to be cleaned up by force (a finding: it should be nothing).
   */
  async stop(opts: { graceful?: boolean } = {}): Promise<string[]> {
    if (this.#stopped) return [];
    this.#stopped = true;
    const leftovers: string[] = [];
    const log = this.o.log;
    for (const c of this.cells.values()) if (c.paused) this.resumeAgent(c.config.id);
    if (opts.graceful !== false && this.client) {
      try {
        // An agent still starting would die of SIGINT before it stops anything: let the restarted ones come up.
        await this.waitFor('every cell agent serving', () => this.allCellsPresent(), 60_000).catch(() => undefined);
        await this.deleteAllWork();
        await this.waitFor(
          'every ActualLRP and Task to be gone',
          async () =>
            (await this.client.list('ActualLRP', { namespace: WORK_NAMESPACE })).length === 0 &&
            (await this.client.list('Task', { namespace: WORK_NAMESPACE })).length === 0,
          180_000,
          1000,
        );
      } catch (err) {
        leftovers.push(`work not removed gracefully: ${(err as Error).message}`);
      }
    }
    await Promise.all(
      [...this.cells.values()].map(async (c) => {
        const exit = await c.agent?.stop('SIGINT', 30_000);
        if (exit?.signal === 'SIGKILL') leftovers.push(`cell ${c.config.id}: agent did not stop within 30 s of SIGINT`);
      }),
    );
    await Promise.all(this.controllers.map((c) => c.stop('SIGTERM', 20_000)));
    log.info('chaos teardown: agents and controllers stopped');
    const killed = killRunProcesses(this.o.runId);
    if (killed.length > 0) leftovers.push(`${killed.length} app/task processes still running after the agents stopped`);
    for (const c of this.cells.values()) {
      if (c.config.backend === 'runc') leftovers.push(...(await cleanRuncCell(c)));
    }
    log.info('chaos teardown: stopping the webhook');
    await this.#webhook?.stop().catch(() => undefined);
    log.info('chaos teardown: stopping the control plane');
    await this.cp?.stop().catch((err: unknown) => log.warn({ err }, 'control plane stop failed'));
    rmSync(this.stateRoot, { recursive: true, force: true, maxRetries: 3 });
    return leftovers;
  }

  /** Deletes every app and task of the run. */
  async deleteAllWork(): Promise<void> {
    const [apps, tasks] = await Promise.all([
      this.client.list('DesiredLRP', { namespace: WORK_NAMESPACE }),
      this.client.list('Task', { namespace: WORK_NAMESPACE }),
    ]);
    await pool(
      [
        ...apps.map((a) => ['DesiredLRP', a.metadata.name!] as const),
        ...tasks.map((t) => ['Task', t.metadata.name!] as const),
      ],
      16,
      ([kind, name]) => this.client.delete(kind, { namespace: WORK_NAMESPACE, name }),
    );
  }
}

/** Runs `fn` over `items`, at most `n` at a time. */
export async function pool<T>(items: readonly T[], n: number, fn: (item: T) => Promise<unknown>): Promise<void> {
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(n, items.length) }, async () => {
      while (next < items.length) await fn(items[next++]!);
    }),
  );
}

/** Destroys the runc containers a cell left (with the backend's own destroy: cgroups, netns, iptables), and its bridge. */
async function cleanRuncCell(c: Cell): Promise<string[]> {
  const out: string[] = [];
  const backend = new RuncBackend({
    stateDir: c.stateDir,
    network: {
      bridge: c.bridge,
      subnet: c.subnet,
      networkName: `chaos-${c.bridge}`,
      ipamDataDir: join(c.stateDir, 'ipam'),
    },
  });
  try {
    for (const handle of await backend.list()) {
      out.push(`cell ${c.config.id}: runc container ${handle} left behind`);
      await backend.destroy(handle).catch(() => undefined);
    }
  } catch {
    // no runc state
  }
  out.push(...unmountBundles(c.stateDir, c.config.id));
  if (c.bridge) {
    await removeBridgeFirewall(c.bridge).catch(() => undefined);
    try {
      execFileSync('ip', ['link', 'delete', c.bridge], { stdio: 'ignore' });
    } catch {
      // never created, or gone
    }
  }
  return out;
}

/**
 * Bundles whose container runc no longer knows (an agent killed in the middle of a create or destroy) keep their
 * overlay mounted: unmounted here, and named (a leak the next agent did not clean).
 */
function unmountBundles(stateDir: string, cellId: string): string[] {
  const out: string[] = [];
  const bundles = join(stateDir, 'bundles');
  for (const handle of readdirSafe(bundles)) {
    const rootfs = join(bundles, handle, 'rootfs');
    try {
      execFileSync('mountpoint', ['-q', rootfs], { stdio: 'ignore' });
    } catch {
      continue; // not mounted
    }
    out.push(`cell ${cellId}: bundle ${handle} left with its overlay mounted (no runc container)`);
    try {
      execFileSync('umount', ['-l', rootfs], { stdio: 'ignore' });
    } catch {
      // nothing more to do
    }
  }
  return out;
}

/** What a killed harness left: its app and task processes, and state dirs whose owner is gone. */
async function sweepStale(log: Logger): Promise<void> {
  const killed = killRunProcesses({ ownerDead: true });
  if (killed.length > 0) log.warn({ killed }, 'killed processes an earlier chaos run left behind');
  for (const name of readdirSafe(tmpdir())) {
    if (!name.startsWith('diego-chaos-')) continue;
    const owner = Number(/^diego-chaos-\d+-(\d+)-/.exec(name)?.[1]);
    if (!(owner > 0) || alive(owner)) continue;
    const dir = join(tmpdir(), name);
    for (const cell of readdirSafe(dir)) {
      const stateDir = join(dir, cell);
      if (!existsSync(join(stateDir, 'bundles'))) continue;
      // runc containers: destroyed by the backend (cgroups, netns, CNI from the result kept in each bundle).
      const backend = new RuncBackend({ stateDir, network: { ipamDataDir: join(stateDir, 'ipam') } });
      const handles = await backend.list().catch(() => [] as string[]);
      for (const h of handles) await backend.destroy(h).catch(() => undefined);
      unmountBundles(stateDir, cell);
    }
    log.warn({ dir }, 'removing the state of an earlier chaos run');
    rmSync(dir, { recursive: true, force: true });
  }
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}
