// The chaos scenarios of issue 10. Each one starts a fresh system (cluster.ts), injects its faults while work
// flows, measures how long the system takes to get back to all work healthy, and lets the monitor check the
// invariants (monitor.ts) throughout and once more at the end. Sizes come in two sets: `long` (make chaos) and
// `short` (the integration test in make test); `scale` multiplies the work of either.
import { randomBytes } from 'node:crypto';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import type { IActualLRP } from '../../src/crds/models.ts';
import { rssOf } from './procs.ts';
import { type CellConfig, ChaosCluster, pool, WORK_NAMESPACE } from './cluster.ts';
import { MarkerFile } from './host.ts';
import { Monitor, type MonitorOptions, type Violation } from './monitor.ts';
import { appSpec, taskSpec } from './work.ts';
import { presenceOf } from '../../src/lifecycle/actual-lrp.ts';

export interface ScenarioContext {
  /** Logs, marker files and results of each scenario go to <runDir>/<scenario>/. */
  runDir: string;
  log: Logger;
  size: 'long' | 'short';
  /** Multiplies the amount of work (tasks, instances). */
  scale: number;
  /** The soak's length (default 10 minutes long, 2 short). */
  soakMinutes?: number;
  /** Aborted to stop a scenario early (Ctrl-C, a test timeout): it cleans up and reports what it saw. */
  signal?: AbortSignal;
}

export interface ScenarioResult {
  name: string;
  runs: number;
  violations: Violation[];
  /** Per fault: ms from the fault to all work healthy; undefined: not within the bound. */
  recoveriesMs: (number | undefined)[];
  durationMs: number;
  notes: string[];
  /** Failed tasks by reason. */
  failedTasks: Record<string, number>;
  logDir: string;
  /** A scenario that could not run (setup failed): the error. */
  error?: string;
}

export interface Scenario {
  name: string;
  description: string;
  run(ctx: ScenarioContext): Promise<ScenarioResult>;
}

interface Body {
  cluster: ChaosCluster;
  monitor: Monitor;
  marker: MarkerFile;
  ctx: ScenarioContext;
  result: ScenarioResult;
  /** Records a fault's recovery time (or a miss, with why). */
  recovered(ms: number | undefined, what: string): void;
}

const n = (ctx: ScenarioContext, long: number, short: number) =>
  Math.max(1, Math.round((ctx.size === 'long' ? long : short) * ctx.scale));
const pick = <T>(xs: readonly T[]): T => xs[Math.floor(Math.random() * xs.length)]!;
const between = (lo: number, hi: number) => lo + Math.floor(Math.random() * (hi - lo + 1));
const processCells = (count: number, o: Partial<CellConfig> = {}): CellConfig[] =>
  Array.from({ length: count }, (_, i) => ({ id: `chaos-cell-${i}`, backend: 'process' as const, ...o }));

export const active = new Set<ChaosCluster>();

/** Starts a system, runs `body`, checks the invariants at the end, tears everything down, writes result.json. */
async function withCluster(
  name: string,
  ctx: ScenarioContext,
  setup: { controllers?: number; cells: CellConfig[]; monitor?: Partial<MonitorOptions> },
  body: (b: Body) => Promise<{ tasksDone: boolean }>,
): Promise<ScenarioResult> {
  const logDir = join(ctx.runDir, name);
  mkdirSync(logDir, { recursive: true });
  const started = Date.now();
  const result: ScenarioResult = {
    name,
    runs: 0,
    violations: [],
    recoveriesMs: [],
    durationMs: 0,
    notes: [],
    failedTasks: {},
    logDir,
  };
  const runId = `${Date.now()}-${process.pid}-${randomBytes(2).toString('hex')}`;
  const cluster = new ChaosCluster({
    runId,
    logDir,
    controllers: setup.controllers ?? 1,
    cells: setup.cells,
    log: ctx.log,
  });
  active.add(cluster);
  const marker = new MarkerFile(join(logDir, 'task-marker.txt'));
  writeFileSync(marker.path, '');
  let monitor: Monitor | undefined;
  try {
    ctx.log.info({ scenario: name, logDir }, 'chaos: starting the system');
    await cluster.start();
    monitor = new Monitor(cluster, { log: ctx.log, marker, ...setup.monitor });
    await monitor.start();
    const m = monitor;
    const { tasksDone } = await body({
      cluster,
      monitor: m,
      marker,
      ctx,
      result,
      recovered: (ms, what) => {
        result.recoveriesMs.push(ms);
        if (ms === undefined) {
          const h = m.unhealthy({ tasksDone: true });
          m.violate('R', what, `not healthy within the bound: ${h.why}`, h.evidence);
        } else ctx.log.info({ scenario: name, what, ms }, 'chaos: recovered');
      },
    });
    monitor.finalCheck({ tasksDone });
  } catch (err) {
    result.error = (err as Error).stack ?? String(err);
    ctx.log.error({ err, scenario: name }, 'chaos: scenario failed');
  } finally {
    await monitor?.stop().catch(() => undefined);
    const leftovers = await cluster.stop().catch((err: unknown) => [`teardown failed: ${(err as Error).message}`]);
    active.delete(cluster);
    if (monitor) {
      result.violations.push(...monitor.violations);
      result.failedTasks = Object.fromEntries(monitor.failedReasons);
    }
    for (const l of leftovers)
      result.violations.push({ invariant: 'I5', atMs: Date.now() - started, subject: 'teardown', detail: l });
    result.durationMs = Date.now() - started;
    writeFileSync(join(logDir, 'result.json'), JSON.stringify(result, null, 2));
  }
  return result;
}

/** Creates tasks `names` at about `perSecond`, a few at a time; stops early when `signal` aborts. */
async function submitTasks(
  b: Body,
  names: string[],
  perSecond: number,
  sleepS: () => number,
  o: { marker: boolean } = { marker: true },
): Promise<void> {
  const { cluster, marker } = b;
  const batch = Math.max(1, Math.round(perSecond));
  for (let i = 0; i < names.length && !b.ctx.signal?.aborted; i += batch) {
    const t0 = Date.now();
    await pool(names.slice(i, i + batch), batch, async (name) => {
      const spec = taskSpec(cluster.run, name, { sleepS: sleepS(), marker: o.marker ? marker.path : undefined });
      // A create that fails while the control plane is down is tried again.
      for (let attempt = 0; ; attempt++) {
        try {
          await cluster.client.create('Task', spec as never);
          return;
        } catch (err) {
          if (/already exists/i.test(String(err)) || attempt > 60) return;
          await sleep(1000);
        }
      }
    });
    await sleep(Math.max(0, 1000 - (Date.now() - t0)));
  }
}

async function createApp(b: Body, name: string, instances: number, setupSleepS?: number): Promise<void> {
  await b.cluster.client.create('DesiredLRP', appSpec(b.cluster.run, name, { instances, setupSleepS }) as never);
}

async function scaleApp(b: Body, name: string, instances: number): Promise<void> {
  await b.cluster.client.patch('DesiredLRP', { namespace: WORK_NAMESPACE, name }, { spec: { instances } });
}

/**
 * Deletes an app and waits until its records and containers are gone. What is still there after 2 minutes is an
 * I5 violation (a deleted app must leave nothing); its processes are then killed so the next run starts clean.
 */
async function deleteApp(b: Body, name: string): Promise<void> {
  await b.cluster.client.delete('DesiredLRP', { namespace: WORK_NAMESPACE, name });
  const left = () => ({
    records: b.monitor.lrps
      .list()
      .filter((a) => a.spec.processGuid === name)
      .map((a) => ({ name: a.metadata.name, status: a.status, finalizers: a.metadata.finalizers })),
    containers: b.monitor.lastSample?.processes.filter((p) => p.kind === 'lrp' && p.id === name) ?? [],
  });
  const gone = await b.cluster
    .waitFor(
      `the records and containers of ${name} to be gone`,
      () => {
        const l = left();
        return l.records.length === 0 && l.containers.length === 0;
      },
      120_000,
      1000,
    )
    .then(
      () => true,
      () => false,
    );
  if (gone) return;
  const l = left();
  b.monitor.violate(
    'I5',
    `deleted app ${name}`,
    `${l.records.length} records and ${l.containers.length} processes remain 2 min after its deletion`,
    {
      records: l.records,
      processes: l.containers.map((p) => ({ pid: p.pid, index: p.index, instanceGuid: p.instanceGuid })),
    },
  );
  for (const p of l.containers) {
    for (const target of [-p.sid, p.pid]) {
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
  }
}

/** Resolves as soon as the harness's watch sees an ActualLRP matching `match` (or one is in its cache already). */
function watchFor(b: Body, match: (a: IActualLRP) => boolean, timeoutMs: number, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    let done = false;
    const finish = (err?: Error) => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      if (err) reject(err);
      else resolve();
    };
    const timer = setTimeout(
      () => finish(new Error(`chaos: timed out after ${timeoutMs / 1000}s waiting for ${what}`)),
      timeoutMs,
    );
    const onEvent = (a: IActualLRP) => {
      if (match(a)) finish();
    };
    b.monitor.lrps.on('add', onEvent);
    b.monitor.lrps.on('update', onEvent);
    if (b.monitor.lrps.list().some(match)) finish();
  });
}

const records = (b: Body, pg: string): IActualLRP[] => b.monitor.lrps.list().filter((a) => a.spec.processGuid === pg);
const nonTerminalTasks = (b: Body): Set<string> =>
  new Set(
    b.monitor.tasks
      .list()
      .map((t) => t.spec.taskGuid)
      .filter((g) => !b.monitor.terminal().has(g)),
  );

/** Waits until every task of `guids` is terminal (or gone); ms since `since`, or undefined after timeoutMs. */
async function drained(b: Body, guids: Set<string>, since: number, timeoutMs: number): Promise<number | undefined> {
  const deadline = since + timeoutMs;
  for (;;) {
    const live = new Set(b.monitor.tasks.list().map((t) => t.spec.taskGuid));
    if ([...guids].every((g) => b.monitor.terminal().has(g) || !live.has(g))) return Date.now() - since;
    if (Date.now() > deadline || b.ctx.signal?.aborted) return undefined;
    await sleep(1000);
  }
}

// ---------------------------------------------------------------------------------------------------------------

/** Agents killed with -9 (and restarted 1–3 s later) every ~20 s while a stream of tasks runs. */
export const agentKillTasks: Scenario = {
  name: 'agent-kill-tasks',
  description: 'kill -9 a cell agent every ~20 s (restarted after 1-3 s) while 1,000 tasks run',
  run: (ctx) =>
    withCluster('agent-kill-tasks', ctx, { cells: processCells(3) }, async (b) => {
      const total = n(ctx, 1000, 60);
      const names = Array.from({ length: total }, (_, i) => `task-${i}`);
      const killEveryMs = ctx.size === 'long' ? 20_000 : 10_000;
      let submitting = true;
      const submitted = submitTasks(b, names, ctx.size === 'long' ? 5 : 2, () => between(1, 6)).finally(
        () => (submitting = false),
      );
      const pending: Promise<void>[] = [];
      let lastKill = Date.now();
      const cellIds = [...b.cluster.cells.keys()];
      const deadline = Date.now() + (ctx.size === 'long' ? 30 : 5) * 60_000;
      // Kill while tasks are being submitted, and until they have all ended (at least two kills).
      while (!ctx.signal?.aborted && Date.now() < deadline) {
        const open = nonTerminalTasks(b);
        if (!submitting && open.size === 0 && b.result.runs >= 2) break;
        if (Date.now() - lastKill >= killEveryMs && (submitting || open.size > 0 || b.result.runs < 2)) {
          const id = pick(cellIds);
          const faultAt = Date.now();
          lastKill = faultAt;
          b.result.runs++;
          ctx.log.info({ cell: id, open: open.size }, 'chaos: kill -9 of a cell agent');
          await b.cluster.restartAgent(id, between(1000, 3000));
          pending.push(
            drained(b, open, faultAt, 10 * 60_000).then((ms) =>
              b.recovered(
                ms,
                `tasks open when ${id}'s agent was killed at +${Math.round((faultAt - b.monitor.startedAt) / 1000)}s`,
              ),
            ),
          );
        }
        await sleep(1000);
      }
      await submitted;
      await Promise.all(pending);
      await drained(b, new Set(names), Date.now(), 5 * 60_000);
      b.result.notes.push(`${total} tasks, ${b.result.runs} agent kills`);
      return { tasksDone: true };
    }),
};

/**
 * A cell stopped (SIGSTOP) until the controller declares it lost, then resumed while the replacements of its
 * instances start: `early` resumes as soon as the SUSPECT copies appear (replacements not yet claimed), `late` once
 * a replacement is CLAIMED on another cell (its setup still sleeping, so not yet RUNNING).
 */
export const lostCellReturns: Scenario = {
  name: 'lost-cell-returns',
  description: 'a cell declared lost (SIGSTOP > 15 s) comes back while its replacements start (early and late)',
  run: (ctx) =>
    withCluster('lost-cell-returns', ctx, { cells: processCells(3) }, async (b) => {
      const perOrder = ctx.size === 'long' ? 3 : 1;
      const instances = n(ctx, 30, 9);
      const orders = Array.from({ length: perOrder }, () => ['early', 'late'] as const).flat();
      const done: string[] = [];
      for (const [i, order] of orders.entries()) {
        if (ctx.signal?.aborted) break;
        const app = `lost-${i}-${order}`;
        await createApp(b, app, instances, 4);
        const expect = { tasksDone: false, apps: { [app]: instances } };
        const up = await b.monitor.waitHealthy(Date.now(), 180_000, expect);
        if (up === undefined) {
          b.recovered(undefined, `${app}: never healthy before the fault`);
          await deleteApp(b, app).catch(() => undefined);
          continue;
        }
        const running = records(b, app).filter((a) => a.status?.state === 'RUNNING');
        const counts = new Map<string, number>();
        for (const a of running) counts.set(a.status!.cellId!, (counts.get(a.status!.cellId!) ?? 0) + 1);
        const victim = [...counts.entries()].sort((x, y) => y[1] - x[1])[0]![0];
        const faultAt = Date.now();
        b.result.runs++;
        ctx.log.info({ app, order, victim, instances: counts.get(victim) }, 'chaos: SIGSTOP of a cell agent');
        b.cluster.pauseAgent(victim);
        try {
          // Event-driven: `early` resumes within milliseconds of the first copy, before the auction places its
          // replacement.
          await watchFor(
            b,
            (a) => a.spec.processGuid === app && a.status?.presence === 'SUSPECT',
            90_000,
            `SUSPECT copies of ${victim}'s instances`,
          );
          const suspected = new Set(
            records(b, app)
              .filter((a) => a.status?.presence === 'SUSPECT')
              .map((a) => a.spec.index),
          );
          if (order === 'late') {
            await watchFor(
              b,
              (a) =>
                a.spec.processGuid === app &&
                presenceOf(a) === 'ORDINARY' &&
                suspected.has(a.spec.index) &&
                a.status?.state === 'CLAIMED' &&
                a.status.cellId !== victim,
              60_000,
              'a replacement CLAIMED on another cell',
            );
          }
          const states = records(b, app)
            .filter((a) => suspected.has(a.spec.index))
            .map((a) => `${a.metadata.name}:${a.status?.presence}/${a.status?.state}@${a.status?.cellId ?? '-'}`);
          b.result.notes.push(
            `${app}: resumed ${victim} after ${Math.round((Date.now() - faultAt) / 1000)}s (${states.join(' ')})`,
          );
        } catch (err) {
          b.result.notes.push(`${app}: ${(err as Error).message}`);
        } finally {
          b.cluster.resumeAgent(victim);
        }
        b.recovered(await b.monitor.waitHealthy(faultAt, 240_000, expect), `${app} (${order})`);
        // The app stays while the next one runs (longer than the duplicate grace period), so the host checks can
        // see a duplicate that outlives it; the last one gets that time alone. All go at the end.
        done.push(app);
      }
      await sleep(35_000);
      for (const app of done) await deleteApp(b, app);
      return { tasksDone: false };
    }),
};

/**
 * The leading controller killed with -9 during a 1,000-instance scale-up (and again at 60% when long); or, with
 * `pause`, stopped (SIGSTOP) until the standby leads, then resumed: a starved leader that wakes up believing it
 * still leads, the case leader fencing is for.
 */
function leaderFault(mode: 'kill' | 'pause'): Scenario {
  const name = mode === 'kill' ? 'leader-kill-scale-up' : 'leader-pause-scale-up';
  return {
    name,
    description:
      mode === 'kill'
        ? 'kill -9 the leading controller during a 1,000-instance scale-up'
        : 'SIGSTOP the leading controller until the standby leads, then resume it, during a 1,000-instance scale-up',
    run: (ctx) =>
      withCluster(
        name,
        ctx,
        { controllers: 2, cells: processCells(ctx.size === 'long' ? 4 : 2, { containers: 400 }) },
        async (b) => {
          const total = n(ctx, 1000, 60);
          await createApp(b, 'scale', 1);
          await b.monitor.waitHealthy(Date.now(), 120_000, { tasksDone: false, apps: { scale: 1 } });
          const start = Date.now();
          await scaleApp(b, 'scale', total);
          const marks = ctx.size === 'long' ? [0.2, 0.6] : [0.3];
          let lastFaultAt = start;
          for (const mark of marks) {
            await b.cluster.waitFor(
              `${mark * 100}% of the instances placed`,
              () => records(b, 'scale').filter((a) => a.spec.cellId).length >= total * mark,
              20 * 60_000,
            );
            const leader = await b.cluster.leader();
            if (!leader) {
              b.result.notes.push(`no leader at ${mark * 100}%`);
              continue;
            }
            const faultAt = Date.now();
            lastFaultAt = faultAt;
            b.result.runs++;
            ctx.log.info({ leader: leader.name, mark, mode }, 'chaos: fault of the leading controller');
            if (mode === 'kill') {
              await leader.kill();
              await sleep(5000);
              await b.cluster.startController(); // back as a standby
            } else {
              leader.signal('SIGSTOP');
            }
            const other = async () => {
              const now = await b.cluster.leader();
              return now !== undefined && now !== leader;
            };
            const newLeader = await b.cluster.waitFor('a new leader', other, 120_000).then(() => Date.now() - faultAt);
            if (mode === 'pause') {
              await sleep(5000); // the new leader works meanwhile
              leader.signal('SIGCONT');
            }
            b.result.notes.push(
              `leader ${leader.name} ${mode === 'kill' ? 'killed' : 'stopped'} at ${mark * 100}% placed; new leader after ${Math.round(newLeader / 1000)}s${mode === 'pause' ? '; resumed 5 s later' : ''}`,
            );
          }
          const ms = await b.monitor.waitHealthy(start, (ctx.size === 'long' ? 25 : 6) * 60_000, {
            tasksDone: false,
            apps: { scale: total },
          });
          // Recovery: from the last kill to every instance RUNNING in one container.
          b.recovered(ms === undefined ? undefined : start + ms - lastFaultAt, `scale-up to ${total}`);
          b.result.notes.push(
            `scale-up to ${total}: all RUNNING ${ms === undefined ? 'never' : `${Math.round(ms / 1000)}s after the scale`}`,
          );
          return { tasksDone: false };
        },
      ),
  };
}

export const leaderKillScaleUp = leaderFault('kill');
export const leaderPauseScaleUp = leaderFault('pause');

/** etcd or kube-apiserver killed with -9 and restarted while instances and tasks are being claimed. */
function controlPlaneRestart(component: 'kube-apiserver' | 'etcd'): Scenario {
  const name = component === 'etcd' ? 'etcd-restart' : 'apiserver-restart';
  return {
    name,
    description: `kill -9 ${component} mid-claim and start it again 3-6 s later`,
    run: (ctx) =>
      withCluster(name, ctx, { cells: processCells(3) }, async (b) => {
        const runs = ctx.size === 'long' ? 3 : 1;
        const instances = n(ctx, 60, 20);
        const taskCount = n(ctx, 200, 30);
        for (let r = 0; r < runs && !ctx.signal?.aborted; r++) {
          const app = `cp-${r}`;
          const names = Array.from({ length: taskCount }, (_, i) => `cp-${r}-task-${i}`);
          await createApp(b, app, instances);
          const submitting = submitTasks(b, names, taskCount, () => between(2, 5));
          // Mid-claim: some work claimed, much not yet.
          await b.cluster.waitFor(
            'a third of the work claimed',
            () =>
              records(b, app).filter((a) => a.status?.state === 'CLAIMED' || a.status?.state === 'RUNNING').length +
                b.monitor.tasks.list().filter((t) => t.status?.state === 'Running').length >=
              (instances + taskCount) / 3,
            5 * 60_000,
            100,
          );
          const faultAt = Date.now();
          b.result.runs++;
          ctx.log.info({ component, run: r }, `chaos: kill -9 of ${component}`);
          await b.cluster.restartControlPlane(component, between(3000, 6000));
          await submitting;
          b.recovered(
            await b.monitor.waitHealthy(faultAt, 4 * 60_000, { tasksDone: true, apps: { [app]: instances } }),
            `${component} restart ${r}`,
          );
          await sleep(10_000);
          await deleteApp(b, app);
        }
        return { tasksDone: true };
      }),
  };
}

export const apiserverRestart = controlPlaneRestart('kube-apiserver');
export const etcdRestart = controlPlaneRestart('etcd');

/** Ten minutes of churn (apps created, scaled, deleted; tasks; an agent killed now and then), memory sampled. */
export const churnSoak: Scenario = {
  name: 'churn-soak',
  description: '10 minutes of churn: apps created/scaled/deleted, tasks, an agent kill every 90 s; controller RSS',
  run: (ctx) =>
    withCluster('churn-soak', ctx, { controllers: 2, cells: processCells(3) }, async (b) => {
      const minutes = ctx.soakMinutes ?? (ctx.size === 'long' ? 10 : 2);
      const end = Date.now() + minutes * 60_000;
      const apps: string[] = [];
      const memory = new Map<number, { name: string; samples: [number, number][] }>();
      let seq = 0;
      let lastKill = Date.now();
      let lastMem = 0;
      const sampleMemory = () => {
        for (const c of b.cluster.liveControllers()) {
          const rss = rssOf(c.pid);
          if (rss === undefined) continue;
          const m = memory.get(c.pid) ?? { name: c.name, samples: [] };
          m.samples.push([Date.now(), rss]);
          memory.set(c.pid, m);
        }
      };
      while (Date.now() < end && !ctx.signal?.aborted) {
        if (Date.now() - lastMem >= 10_000) {
          lastMem = Date.now();
          sampleMemory();
        }
        const action = pick(['create', 'scale', 'scale', 'delete', 'tasks', 'tasks']);
        try {
          if (action === 'create' || apps.length === 0) {
            const app = `soak-${seq++}`;
            await createApp(b, app, between(2, Math.max(2, n(ctx, 10, 5))));
            apps.push(app);
          } else if (action === 'scale') {
            await scaleApp(b, pick(apps), between(1, Math.max(2, n(ctx, 12, 6))));
          } else if (action === 'delete' && apps.length > 3) {
            const app = apps.splice(Math.floor(Math.random() * apps.length), 1)[0]!;
            await b.cluster.client.delete('DesiredLRP', { namespace: WORK_NAMESPACE, name: app });
          } else {
            const names = Array.from({ length: n(ctx, 5, 3) }, () => `soak-task-${seq++}`);
            void submitTasks(b, names, names.length, () => between(1, 3));
          }
        } catch (err) {
          ctx.log.warn({ err, action }, 'chaos: soak action failed');
        }
        if (Date.now() - lastKill >= 90_000) {
          lastKill = Date.now();
          b.result.runs++;
          const id = pick([...b.cluster.cells.keys()]);
          ctx.log.info({ cell: id }, 'chaos: soak: kill -9 of a cell agent');
          await b.cluster.restartAgent(id, between(1000, 3000));
        }
        await sleep(between(2000, 5000));
      }
      const quietAt = Date.now();
      b.recovered(await b.monitor.waitHealthy(quietAt, 5 * 60_000, { tasksDone: true }), 'end of churn');
      sampleMemory();
      for (const [pid, m] of memory) {
        const s = m.samples;
        if (s.length < 6) continue;
        const third = Math.floor(s.length / 3);
        const median = (xs: number[]) => xs.sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
        const early = median(s.slice(third, 2 * third).map(([, v]) => v));
        const late = median(s.slice(-third).map(([, v]) => v));
        const mb = (v: number) => Math.round(v / 1048576);
        b.result.notes.push(
          `${m.name} (pid ${pid}) RSS: first ${mb(s[0]![1])} MB, middle third ${mb(early)} MB, last third ${mb(late)} MB, max ${mb(Math.max(...s.map(([, v]) => v)))} MB (${s.length} samples)`,
        );
        if (late > early * 1.5 && late - early > 64 * 1048576)
          b.monitor.violate('I6', m.name, `RSS grew from ${mb(early)} MB to ${mb(late)} MB during the soak`, {
            samples: s.map(([t, v]) => [Math.round((t - b.monitor.startedAt) / 1000), mb(v)]),
          });
      }
      b.result.notes.push(`${minutes} min of churn, ${seq} apps/tasks created, ${b.result.runs} agent kills`);
      return { tasksDone: true };
    }),
};

/** A runc cell (own CNI bridge) whose agent is killed with -9 three times while instances and tasks run. */
export const runcAgentKill: Scenario = {
  name: 'runc-agent-kill',
  description: 'runc cell: kill -9 its agent 3 times (restarted 1-3 s later) with instances and tasks running',
  run: (ctx) =>
    withCluster(
      'runc-agent-kill',
      ctx,
      { cells: [{ id: 'chaos-runc-0', backend: 'runc', containers: 100 }] },
      async (b) => {
        const instances = n(ctx, 10, 4);
        const taskCount = n(ctx, 30, 8);
        await createApp(b, 'runc-app', instances);
        const names = Array.from({ length: taskCount }, (_, i) => `runc-task-${i}`);
        // runc containers cannot write the host's marker file: their runs are seen in /proc (they last 6-10 s).
        const submitting = submitTasks(b, names, 3, () => between(6, 10), { marker: false });
        const expect = { tasksDone: false, apps: { 'runc-app': instances } };
        await b.monitor.waitHealthy(Date.now(), 180_000, expect);
        for (let k = 0; k < 3 && !ctx.signal?.aborted; k++) {
          await sleep(k === 0 ? 3000 : 20_000);
          const faultAt = Date.now();
          b.result.runs++;
          await b.cluster.restartAgent('chaos-runc-0', between(1000, 3000));
          b.recovered(await b.monitor.waitHealthy(faultAt, 180_000, expect), `runc agent kill ${k}`);
        }
        await submitting;
        await drained(b, new Set(names), Date.now(), 5 * 60_000);
        return { tasksDone: true };
      },
    ),
};

export const SCENARIOS: Scenario[] = [
  agentKillTasks,
  lostCellReturns,
  leaderKillScaleUp,
  leaderPauseScaleUp,
  apiserverRestart,
  etcdRestart,
  churnSoak,
  runcAgentKill,
];
