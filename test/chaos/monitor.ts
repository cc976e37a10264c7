// The invariants of a chaos run, checked while it runs and once it has converged, from two views that must
// agree: the host (/proc and the tasks' marker file: what really runs) and the API (the harness's own watches).
//
//   I1 one container per index   no app index runs in two containers (two instance guids alive on the host) for
//                                longer than dupGraceMs while the cells involved are up
//   I2 tasks run once            no task's action starts twice (marker file; two runs seen in /proc)
//   I3 true terminal reason      a task whose action ran is not failed as if it had not ("task container does not
//                                exist", "runs no action"), one that completed is not failed at all (unless its
//                                cell really was lost), a failed "cell disappeared" had a lapsed lease, and a
//                                successful one did run
//   I4 claimed and started       work placed on a cell whose agent is up is claimed within claimBoundMs, and a
//                                claimed instance runs within startBoundMs; a task the cell claimed while up is
//                                not lost (failed "task container does not exist" without ever running)
//   I5 host and records agree    no container without a record naming it, no RUNNING record without its
//                                container, no task process for a task that is over (beyond a grace period; at
//                                the end, strictly)
//   I6 controller memory flat    (the soak scenario, from samples of the controllers' RSS)
//   R  recovered                 the system got back to all work healthy within the scenario's bound
import type { Logger } from 'pino';
import { REASON_CELL_DISAPPEARED } from '../../src/controllers/task-lifecycle.ts';
import { isUnclaimedOrdinary, presenceOf, stateOf } from '../../src/lifecycle/actual-lrp.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../../src/crds/models.ts';
import { createInformer, type Informer } from '../../src/lib/informer.ts';
import { GROUP, VERSION } from '../../src/crds/kinds.ts';
import { type ChaosCluster, SYSTEM_NAMESPACE } from './cluster.ts';
import { type HostSample, instanceKey, type MarkerFile, scanHost } from './host.ts';

export type Invariant = 'I1' | 'I2' | 'I3' | 'I4' | 'I5' | 'I6' | 'R';

export const INVARIANTS: Record<Invariant, string> = {
  I1: 'one container per index',
  I2: 'tasks run once',
  I3: 'true terminal reason',
  I4: 'claimed and started',
  I5: 'host and records agree',
  I6: 'controller memory flat',
  R: 'recovered',
};

export interface Violation {
  invariant: Invariant;
  /** ms since the scenario started. */
  atMs: number;
  subject: string;
  detail: string;
  evidence?: unknown;
}

export interface MonitorOptions {
  sampleMs?: number;
  claimBoundMs?: number;
  startBoundMs?: number;
  dupGraceMs?: number;
  orphanGraceMs?: number;
  missingGraceMs?: number;
  /** Tasks that append to a marker file (process backend). */
  marker?: MarkerFile;
  log: Logger;
}

export interface HealthOptions {
  /** Every task terminal too. */
  tasksDone: boolean;
  /** Apps that must be desired with these instance counts (a view that has not seen them yet is not healthy). */
  apps?: Record<string, number>;
}

interface Terminal {
  failed: boolean;
  reason: string;
  at: number;
  lastCell?: string;
}

interface Lease {
  metadata?: { name?: string; namespace?: string; resourceVersion?: string };
  spec?: { holderIdentity?: string; renewTime?: string; leaseDurationSeconds?: number };
}

const PRESENCE_TTL_MS = 15_000;

export class Monitor {
  readonly violations: Violation[] = [];
  readonly startedAt = Date.now();
  /** Failed tasks by reason (violations or not), for the report. */
  readonly failedReasons = new Map<string, number>();
  lastSample: HostSample | undefined;
  samples = 0;
  readonly #c: ChaosCluster;
  readonly #o: Required<Omit<MonitorOptions, 'marker'>> & { marker?: MarkerFile };
  readonly lrps: Informer<IActualLRP>;
  readonly tasks: Informer<ITask>;
  readonly desired: Informer<IDesiredLRP>;
  readonly #leases: Informer<Lease>;
  readonly #dupSince = new Map<string, number>();
  readonly #orphanSince = new Map<string, number>();
  readonly #missingSince = new Map<string, number>();
  readonly #pendingSince = new Map<string, { cell: string; since: number }>();
  readonly #taskOverSince = new Map<string, number>();
  readonly #reported = new Set<string>();
  readonly #terminal = new Map<string, Terminal>();
  readonly #lastCell = new Map<string, string>();
  /** Tasks whose action appends to the marker file. */
  readonly #markerTasks = new Set<string>();
  /** task guid → when the harness saw it Running on #lastCell. */
  readonly #claimedAt = new Map<string, number>();
  readonly #procRuns = new Map<string, Set<string>>();
  /** pid → the run it belongs to (kept across samples: a process whose parent exited stays in its run). */
  readonly #runRoot = new Map<number, string>();
  readonly #evaluated = new Set<string>();
  readonly #guidCell = new Map<string, string>();
  /** cell → renewTimes (ms) seen on its presence lease. */
  readonly #renewals = new Map<string, number[]>();
  #timer: NodeJS.Timeout | undefined;
  #ticking: Promise<void> | undefined;

  constructor(cluster: ChaosCluster, o: MonitorOptions) {
    this.#c = cluster;
    this.#o = {
      sampleMs: 1000,
      claimBoundMs: 60_000,
      startBoundMs: 120_000,
      dupGraceMs: 30_000,
      orphanGraceMs: 45_000,
      missingGraceMs: 45_000,
      ...o,
    };
    const ns = cluster.run.namespace;
    const path = (plural: string) => `/apis/${GROUP}/${VERSION}/namespaces/${ns}/${plural}`;
    const quiet = o.log.child({ component: 'chaos-monitor' });
    this.lrps = createInformer(cluster.kc, { path: path('actuallrps'), logger: quiet, name: 'chaos-lrps' });
    this.tasks = createInformer(cluster.kc, { path: path('tasks'), logger: quiet, name: 'chaos-tasks' });
    this.desired = createInformer(cluster.kc, { path: path('desiredlrps'), logger: quiet, name: 'chaos-dlrps' });
    this.#leases = createInformer(cluster.kc, {
      path: `/apis/coordination.k8s.io/v1/namespaces/${SYSTEM_NAMESPACE}/leases`,
      logger: quiet,
      name: 'chaos-leases',
    });
    const onTask = (t: ITask) => this.#observeTask(t);
    this.tasks.on('add', onTask);
    this.tasks.on('update', onTask);
    const onLease = (l: Lease) => {
      const holder = l.spec?.holderIdentity;
      const renew = Date.parse(l.spec?.renewTime ?? '');
      if (!holder || !Number.isFinite(renew)) return;
      const list = this.#renewals.get(holder) ?? [];
      if (list.at(-1) !== renew) list.push(renew);
      this.#renewals.set(holder, list);
    };
    this.#leases.on('add', onLease);
    this.#leases.on('update', onLease);
  }

  async start(): Promise<void> {
    await Promise.all([this.lrps.start(), this.tasks.start(), this.desired.start(), this.#leases.start()]);
    this.#timer = setInterval(() => {
      if (this.#ticking) return;
      this.#ticking = Promise.resolve()
        .then(() => this.tick())
        .catch((err: unknown) => this.#o.log.warn({ err }, 'chaos monitor tick failed'))
        .finally(() => (this.#ticking = undefined));
    }, this.#o.sampleMs);
  }

  async stop(): Promise<void> {
    clearInterval(this.#timer);
    await this.#ticking;
    await Promise.all([this.lrps.stop(), this.tasks.stop(), this.desired.stop(), this.#leases.stop()]);
  }

  violate(invariant: Invariant, subject: string, detail: string, evidence?: unknown, dedupe?: string): void {
    const key = dedupe ?? `${invariant}:${subject}`;
    if (this.#reported.has(key)) return;
    this.#reported.add(key);
    const v = { invariant, atMs: Date.now() - this.startedAt, subject, detail, evidence };
    this.violations.push(v);
    this.#o.log.warn({ violation: v }, `chaos: ${invariant} violated: ${subject}: ${detail}`);
  }

  #observeTask(t: ITask): void {
    const guid = t.spec.taskGuid;
    const s = t.status;
    const marker = this.#o.marker?.path;
    if (marker && JSON.stringify(t.spec.action).includes(marker)) this.#markerTasks.add(guid);
    if (s?.state === 'Running' && s.cellId && this.#lastCell.get(guid) !== s.cellId) {
      this.#lastCell.set(guid, s.cellId);
      this.#claimedAt.set(guid, Date.now());
    }
    if ((s?.state === 'Completed' || s?.state === 'Resolving') && !this.#terminal.has(guid)) {
      this.#terminal.set(guid, {
        failed: s.failed === true,
        reason: s.failureReason ?? '',
        at: Date.now(),
        lastCell: this.#lastCell.get(guid),
      });
      if (s.failed)
        this.failedReasons.set(s.failureReason ?? '', (this.failedReasons.get(s.failureReason ?? '') ?? 0) + 1);
    }
  }

  /** Tasks that reached Completed (or Resolving), and how. */
  terminal(): ReadonlyMap<string, Terminal> {
    return this.#terminal;
  }

  /** The cell whose container holds `handle`, remembered (a destroyed container's directory is gone). */
  #cellOf(handle: string): string | undefined {
    let cell = this.#guidCell.get(handle);
    if (!cell) {
      cell = this.#c.cellOfHandle(handle);
      if (cell) this.#guidCell.set(handle, cell);
    }
    return cell;
  }

  /** The run a task process belongs to: its container's mount namespace, else the oldest process of its tree. */
  #runOf(p: HostSample['processes'][number], host: HostSample): string {
    const known = this.#runRoot.get(p.pid);
    if (known) return known;
    let run: string;
    if (p.mntns) run = `container ${p.mntns}`;
    else {
      const parent = host.processes.find((q) => q.pid === p.ppid && q.id === p.id);
      // A parent missing from this sample (its /proc entry unreadable for a moment) but seen before, and alive (its
      // child still names it), is still the run's process.
      run = parent ? this.#runOf(parent, host) : (this.#runRoot.get(p.ppid) ?? `process ${p.pid}`);
    }
    this.#runRoot.set(p.pid, run);
    return run;
  }

  /** Whether the cell's presence lease was renewed at or after `t` (its agent is serving). */
  agentRenewedSince(cell: string, t: number): boolean {
    return (this.#renewals.get(cell)?.at(-1) ?? 0) >= t - 1000;
  }

  /** Whether `cell`'s presence had lapsed (no renewal for the TTL) at time `t`, by the renewals seen. */
  leaseLapsedAt(cell: string | undefined, t: number): boolean {
    if (!cell) return false;
    const renewals = this.#renewals.get(cell) ?? [];
    const before = renewals.filter((r) => r <= t);
    const last = before.at(-1);
    if (last === undefined) return true;
    // Any gap longer than the TTL in the minute before t counts: the controller may have acted on it meanwhile.
    const recent = before.filter((r) => r >= t - 60_000);
    for (let i = 1; i < recent.length; i++) if (recent[i]! - recent[i - 1]! > PRESENCE_TTL_MS) return true;
    return t - last > PRESENCE_TTL_MS;
  }

  /** One look at the host and the API; records what is violated. */
  tick(): void {
    const now = Date.now();
    const host = scanHost(this.#c.run.runId);
    this.#o.marker?.refresh();
    this.lastSample = host;
    this.samples++;
    const lrps = this.lrps.list();
    const byKey = new Map<string, IActualLRP[]>();
    for (const a of lrps) {
      const k = instanceKey(a.spec.processGuid, a.spec.index);
      byKey.set(k, [...(byKey.get(k) ?? []), a]);
    }
    const settled = (cell: string | undefined) => this.#c.settledSince(cell);
    const describe = (a: IActualLRP) => ({
      name: a.metadata.name,
      presence: a.status?.presence,
      state: a.status?.state,
      placedOn: a.spec.cellId,
      cellId: a.status?.cellId,
      instanceGuid: a.status?.instanceGuid,
      deleting: a.metadata.deletionTimestamp ? true : undefined,
    });

    // I1 and I5 (containers without a record), per index seen on the host.
    const liveGuids = new Set<string>();
    for (const [key, guids] of host.instances) {
      const records = byKey.get(key) ?? [];
      const containers = [...guids].map(([guid, pids]) => ({ guid, pids, cell: this.#cellOf(guid) }));
      for (const c of containers) liveGuids.add(c.guid);
      const cellsSettled = containers.map((c) => settled(c.cell));
      const since = cellsSettled.includes(undefined) ? undefined : Math.max(...(cellsSettled as number[]));
      if (guids.size >= 2 && since !== undefined) {
        const first = this.#dupSince.get(key) ?? now;
        this.#dupSince.set(key, first);
        const duration = now - Math.max(first, since);
        if (duration > this.#o.dupGraceMs) {
          const accounted = containers.filter((c) => records.some((r) => r.status?.instanceGuid === c.guid)).length;
          this.violate(
            'I1',
            key,
            `${guids.size} containers of one index ran at once for ${Math.round((now - first) / 1000)}s with every cell up; the API names ${accounted} of them`,
            { containers, records: records.map(describe) },
            `I1:${key}:${[...guids.keys()].sort().join(',')}`,
          );
        }
      } else {
        this.#dupSince.delete(key);
      }
      for (const c of containers) {
        const named = records.some((r) => r.status?.instanceGuid === c.guid);
        const s = settled(c.cell);
        if (named || s === undefined) {
          this.#orphanSince.delete(c.guid);
          continue;
        }
        const first = this.#orphanSince.get(c.guid) ?? now;
        this.#orphanSince.set(c.guid, first);
        if (now - Math.max(first, s) > this.#o.orphanGraceMs) {
          this.violate(
            'I5',
            `${key} ${c.guid}`,
            `container runs on ${c.cell ?? '?'} for ${Math.round((now - first) / 1000)}s with no record naming its instance guid`,
            { container: c, records: records.map(describe) },
          );
        }
      }
    }
    for (const g of this.#orphanSince.keys()) if (!liveGuids.has(g)) this.#orphanSince.delete(g);

    // I5: RUNNING records without their container.
    const missingNow = new Set<string>();
    for (const a of lrps) {
      const s = a.status;
      if (s?.state !== 'RUNNING' || presenceOf(a) !== 'ORDINARY' || !s.instanceGuid || a.metadata.deletionTimestamp)
        continue;
      const key = instanceKey(a.spec.processGuid, a.spec.index);
      if (host.instances.get(key)?.has(s.instanceGuid)) continue;
      const since = settled(s.cellId);
      if (since === undefined) continue;
      const id = `${a.metadata.name}/${s.instanceGuid}`;
      missingNow.add(id);
      const first = this.#missingSince.get(id) ?? now;
      this.#missingSince.set(id, first);
      if (now - Math.max(first, since) > this.#o.missingGraceMs) {
        this.violate(
          'I5',
          id,
          `RUNNING on ${s.cellId} for ${Math.round((now - first) / 1000)}s but no process of that instance runs on the host`,
          { record: describe(a) },
        );
      }
    }
    for (const id of this.#missingSince.keys()) if (!missingNow.has(id)) this.#missingSince.delete(id);

    // I4: placed, not claimed; claimed, not started.
    const pendingNow = new Set<string>();
    const pending = (id: string, cell: string, evidence: unknown, what = 'placed on', bound = this.#o.claimBoundMs) => {
      pendingNow.add(id);
      const prev = this.#pendingSince.get(id);
      const entry = prev?.cell === cell ? prev : { cell, since: now };
      this.#pendingSince.set(id, entry);
      const since = settled(cell);
      if (since === undefined) return;
      const waited = now - Math.max(entry.since, since);
      if (waited > bound) {
        this.violate(
          'I4',
          id,
          `${what} ${cell} (agent up) and not ${what === 'placed on' ? 'claimed' : 'RUNNING'} after ${Math.round(waited / 1000)}s`,
          evidence,
          `I4:${id}:${cell}:${entry.since}`,
        );
      }
    };
    for (const a of lrps) {
      const s = a.status;
      if (s?.state === 'CLAIMED' && presenceOf(a) === 'ORDINARY' && s.cellId && !a.metadata.deletionTimestamp)
        pending(
          `ActualLRP ${a.metadata.name} ${s.instanceGuid}`,
          s.cellId,
          describe(a),
          'claimed by',
          this.#o.startBoundMs,
        );
    }
    for (const a of lrps) {
      if (a.spec.cellId && isUnclaimedOrdinary(a) && !a.metadata.deletionTimestamp)
        pending(`ActualLRP ${a.metadata.name}`, a.spec.cellId, describe(a));
    }
    const tasks = this.tasks.list();
    for (const t of tasks) {
      if (t.spec.cellId && t.status?.state === 'Pending' && !t.metadata.deletionTimestamp)
        pending(`Task ${t.metadata.name}`, t.spec.cellId, { status: t.status, placedOn: t.spec.cellId });
    }
    for (const id of this.#pendingSince.keys()) if (!pendingNow.has(id)) this.#pendingSince.delete(id);

    // I2: runs per task: a run is a container (mount namespace) or the oldest process of a process tree.
    // A pid is alive while it is sampled or a sampled process names it as its parent.
    const alivePids = new Set(host.processes.flatMap((p) => [p.pid, p.ppid]));
    for (const pid of this.#runRoot.keys()) if (!alivePids.has(pid)) this.#runRoot.delete(pid);
    for (const [guid, procs] of host.taskProcesses) {
      const all = this.#procRuns.get(guid) ?? new Set<string>();
      for (const p of procs) all.add(this.#runOf(p, host));
      this.#procRuns.set(guid, all);
      if (all.size > 1)
        this.violate('I2', guid, `${all.size} separate runs (${[...all].join(', ')}) seen in /proc`, {
          runs: [...all],
          processes: procs.map((p) => ({ pid: p.pid, ppid: p.ppid, mntns: p.mntns })),
          lastCell: this.#lastCell.get(guid),
        });
    }
    if (this.#o.marker) {
      for (const guid of this.#o.marker.guids()) {
        const runs = this.#o.marker.runs(guid);
        if (runs.length > 1)
          this.violate('I2', guid, `its action started ${runs.length} times`, {
            runs: runs.map((r) => ({ ...r, cell: this.#c.cellOfPath(r.dir) })),
            terminal: this.#terminal.get(guid),
          });
      }
    }

    // I5: task processes of tasks that are over (failed elsewhere, deleted).
    const taskByGuid = new Map(tasks.map((t) => [t.spec.taskGuid, t]));
    const overNow = new Set<string>();
    for (const [guid, procs] of host.taskProcesses) {
      const t = taskByGuid.get(guid);
      const over = !t || t.status?.state === 'Completed' || t.status?.state === 'Resolving';
      if (!over) continue;
      overNow.add(guid);
      const first = this.#taskOverSince.get(guid) ?? now;
      this.#taskOverSince.set(guid, first);
      if (now - first > this.#o.orphanGraceMs)
        this.violate(
          'I5',
          `task ${guid}`,
          `its process still runs ${Math.round((now - first) / 1000)}s after the task was ${t ? 'completed' : 'deleted'}`,
          { pids: procs.map((p) => p.pid), terminal: this.#terminal.get(guid), status: t?.status },
        );
    }
    // I5: Running tasks without their process (nothing runs, or the action ended and no result was reported).
    for (const t of tasks) {
      const guid = t.spec.taskGuid;
      const cell = t.status?.cellId;
      if (t.status?.state !== 'Running' || !cell || host.taskProcesses.has(guid)) continue;
      const since = settled(cell);
      if (since === undefined) continue;
      const id = `task-missing:${guid}`;
      overNow.add(id);
      const first = this.#taskOverSince.get(id) ?? now;
      this.#taskOverSince.set(id, first);
      if (now - Math.max(first, since) > this.#o.missingGraceMs) {
        const ended = this.#o.marker?.runs(guid).some((r) => r.endedAt !== undefined);
        this.violate(
          'I5',
          `task ${guid}`,
          ended
            ? `Running on ${cell} ${Math.round((now - first) / 1000)}s after its action ended: the result was never reported`
            : `Running on ${cell} for ${Math.round((now - first) / 1000)}s with no process on the host`,
          { status: t.status, markerRuns: this.#o.marker?.runs(guid) },
        );
      }
    }
    for (const g of this.#taskOverSince.keys()) if (!overNow.has(g)) this.#taskOverSince.delete(g);

    // I3: how each task ended, once the marker has caught up.
    for (const [guid, term] of this.#terminal) {
      if (this.#evaluated.has(guid) || now - term.at < 3000) continue;
      this.#evaluated.add(guid);
      this.#judgeTask(guid, term);
    }
  }

  #judgeTask(guid: string, term: Terminal): void {
    const runs = this.#o.marker?.runs(guid) ?? [];
    const ended = runs.find((r) => r.endedAt !== undefined);
    const evidence = () => ({
      failed: term.failed,
      failureReason: term.reason,
      lastCell: term.lastCell,
      runs: runs.map((r) => ({ pid: r.pid, cell: this.#c.cellOfPath(r.dir), ended: r.endedAt !== undefined })),
      runsInProc: [...(this.#procRuns.get(guid) ?? [])],
      leaseLapsed: this.leaseLapsedAt(term.lastCell, term.at),
    });
    if (!term.failed) {
      if (this.#markerTasks.has(guid) && runs.length === 0)
        this.violate('I3', guid, 'completed successfully but its action never ran (no marker)', evidence());
      return;
    }
    const lapsed = this.leaseLapsedAt(term.lastCell, term.at);
    if (term.reason === REASON_CELL_DISAPPEARED && !lapsed) {
      this.violate('I3', guid, `failed "${term.reason}" though ${term.lastCell}'s presence never lapsed`, evidence());
      return;
    }
    if (ended && term.reason !== REASON_CELL_DISAPPEARED) {
      this.violate('I3', guid, `its action ran to completion but the task failed: "${term.reason}"`, evidence());
      return;
    }
    const ran = runs.length > 0 || (this.#procRuns.get(guid)?.size ?? 0) > 0;
    if (ran && /does not exist|runs no action/.test(term.reason)) {
      this.violate('I3', guid, `its action ran but the task failed: "${term.reason}"`, evidence());
      return;
    }
    // Claimed by a cell whose agent stayed up, never started, then failed for want of a container: a lost claim.
    const claimedAt = this.#claimedAt.get(guid);
    const up = term.lastCell ? this.#c.cells.get(term.lastCell)?.upSince : undefined;
    if (!ran && /does not exist/.test(term.reason) && claimedAt !== undefined && up !== undefined && up <= claimedAt)
      this.violate(
        'I4',
        guid,
        `claimed by ${term.lastCell} (agent up throughout) but never started; failed "${term.reason}" ${Math.round((term.at - claimedAt) / 1000)}s later`,
        evidence(),
      );
  }

  /**
   * Strict checks once the scenario has converged: no container without a record, no RUNNING record without its
   * container, no index in two containers, every task terminal and judged.
   */
  finalCheck(opts: { tasksDone: boolean }): void {
    this.tick();
    const host = this.lastSample!;
    const byKey = new Map<string, IActualLRP[]>();
    for (const a of this.lrps.list()) {
      const k = instanceKey(a.spec.processGuid, a.spec.index);
      byKey.set(k, [...(byKey.get(k) ?? []), a]);
    }
    for (const [key, guids] of host.instances) {
      const records = byKey.get(key) ?? [];
      if (guids.size > 1)
        this.violate('I1', key, `${guids.size} containers of one index still run after convergence`, {
          containers: [...guids].map(([guid, pids]) => ({ guid, pids, cell: this.#cellOf(guid) })),
          records: records.map((r) => ({ name: r.metadata.name, status: r.status })),
        });
      for (const [guid, pids] of guids) {
        if (!records.some((r) => r.status?.instanceGuid === guid))
          this.violate('I5', `${key} ${guid}`, 'container without a record after convergence', {
            pids,
            cell: this.#cellOf(guid),
            records: records.map((r) => ({ name: r.metadata.name, status: r.status })),
          });
      }
    }
    for (const a of this.lrps.list()) {
      const s = a.status;
      if (s?.state !== 'RUNNING' || !s.instanceGuid) continue;
      if (!host.instances.get(instanceKey(a.spec.processGuid, a.spec.index))?.has(s.instanceGuid))
        this.violate(
          'I5',
          `${a.metadata.name}/${s.instanceGuid}`,
          'RUNNING record without its container after convergence',
          {
            status: s,
          },
        );
    }
    if (opts.tasksDone) {
      for (const t of this.tasks.list()) {
        if (!this.#terminal.has(t.spec.taskGuid))
          this.violate('I3', t.spec.taskGuid, `not terminal at the end (state ${t.status?.state ?? 'none'})`, {
            status: t.status,
            placedOn: t.spec.cellId,
          });
      }
    }
    for (const [guid, term] of this.#terminal) {
      if (this.#evaluated.has(guid)) continue;
      this.#evaluated.add(guid);
      this.#judgeTask(guid, term);
    }
  }

  /**
   * Whether all work is healthy now: every app has exactly its instances RUNNING (ORDINARY, no copies), each in
   * exactly one container on the host with the record's guid, nothing else of the run's apps on the host, and
   * (with tasksDone) every task terminal.
   */
  healthy(opts: HealthOptions): { ok: boolean; why: string; evidence?: unknown } {
    const host = this.lastSample;
    if (!host || this.#c.controlPlaneDown) return { ok: false, why: 'no sample yet' };
    for (const [id, cell] of this.#c.cells) {
      if (cell.upSince === undefined || !cell.agent?.alive) return { ok: false, why: `cell ${id}'s agent is down` };
      if (!this.agentRenewedSince(id, cell.upSince))
        return { ok: false, why: `cell ${id}'s agent has not renewed its presence since it (re)started` };
    }
    const desired = new Map(this.desired.list().map((d) => [d.spec.processGuid, d.spec.instances ?? 1]));
    for (const [pg, count] of Object.entries(opts.apps ?? {})) {
      if (desired.get(pg) !== count) return { ok: false, why: `${pg} not yet desired with ${count} instances` };
    }
    const seen = new Set<string>();
    for (const a of this.lrps.list()) {
      const n = desired.get(a.spec.processGuid);
      const key = instanceKey(a.spec.processGuid, a.spec.index);
      if (n === undefined || a.spec.index >= n) return { ok: false, why: `${a.metadata.name} is not desired` };
      const evidence = { record: { name: a.metadata.name, spec: a.spec, status: a.status } };
      if (presenceOf(a) !== 'ORDINARY') return { ok: false, why: `${a.metadata.name} is a copy`, evidence };
      if (a.status?.state !== 'RUNNING') return { ok: false, why: `${a.metadata.name} is ${stateOf(a)}`, evidence };
      const guids = host.instances.get(key);
      if (!guids || guids.size !== 1 || !guids.has(a.status.instanceGuid ?? ''))
        return {
          ok: false,
          why: `${key}: host runs ${guids ? [...guids.keys()].join(',') : 'nothing'}`,
          evidence: { ...evidence, host: guids ? [...guids] : [] },
        };
      seen.add(key);
    }
    for (const [pg, n] of desired) {
      for (let i = 0; i < n; i++) if (!seen.has(instanceKey(pg, i))) return { ok: false, why: `${pg}/${i} missing` };
    }
    for (const key of host.instances.keys()) if (!seen.has(key)) return { ok: false, why: `${key} runs undesired` };
    if (opts.tasksDone) {
      const open = this.tasks.list().filter((t) => !this.#terminal.has(t.spec.taskGuid));
      if (open.length > 0)
        return {
          ok: false,
          why: `${open.length} tasks not terminal`,
          evidence: open.slice(0, 5).map((t) => ({ name: t.metadata.name, placedOn: t.spec.cellId, status: t.status })),
        };
    }
    return { ok: true, why: '' };
  }

  /** Waits until healthy(); returns ms since `since`, or undefined after timeoutMs. */
  async waitHealthy(since: number, timeoutMs: number, opts: HealthOptions): Promise<number | undefined> {
    const deadline = since + timeoutMs;
    for (;;) {
      await this.#ticking;
      this.tick();
      const h = this.healthy(opts);
      if (h.ok) return Date.now() - since;
      if (Date.now() > deadline) {
        this.#o.log.warn({ why: h.why }, 'chaos: not healthy in time');
        return undefined;
      }
      await new Promise((r) => setTimeout(r, 1000));
    }
  }

  /** Why the system is not healthy now (for a report of a run that did not recover), with evidence. */
  unhealthy(opts: HealthOptions): { why: string; evidence?: unknown } {
    const h = this.healthy(opts);
    return { why: h.why, evidence: h.evidence };
  }
}
