// npm run bench:place — placement through the API server, side by side: kube-scheduler (built from the same pinned
// k8s.io/kubernetes module as the API server) binding N pods to 100 fake nodes, against our controller placing N
// instances on 100 simulated cells. Each run gets a fresh local API server; the two alternate, for each N.
// A benchmark prints figures; it asserts nothing.
//
// What each side does, and what is counted (from the first request of the run to the last unit placed):
// * kube-scheduler: the bench creates N pods (64 at a time, as a ReplicaSet controller would) and kube-scheduler
//   binds them. Both sides have 100 per-node watches (kubelets watch their node's pods; cells their cell's work).
// * ours: the bench creates N/100 DesiredLRPs of 100 instances, the controller (a separate process, default flags)
//   creates each instance already placed; 100 simulated cells hold presence Leases and watch their work (they do
//   not claim it: placement only).
// Both clients get the same client-side limit (qps 1000, burst 2000). CPU is read from /proc for the API server
// and for the placer (kube-scheduler, or our controller process).
//   PLACE_SIZES=2000,10000 PLACE_ROUNDS=1 npm run bench:place
import { type ChildProcess, execFileSync, spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, openSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { pool } from '../src/lib/pool.ts';
import { type ControlPlane, startControlPlane } from '../src/lib/controlplane/index.ts';
import { createInformer } from '../src/lib/informer.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { DiegoClient } from '../src/lib/resources.ts';
import { SimCell } from '../test/support/sim-cell.ts';
import { apiWrites, cpuSeconds, sumWrites } from './api-metrics.ts';

const SIZES = (process.env.PLACE_SIZES ?? '2000,10000').split(',').map(Number);
const ROUNDS = Number(process.env.PLACE_ROUNDS ?? 1);
const NODES = 100;
const PER_APP = 100;
const QPS = 1000;
const BURST = 2000;
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const repo = join(import.meta.dirname, '..');

interface Result {
  who: 'kube-scheduler' | 'diego-operator';
  n: number;
  seconds: number;
  apiserverCpu: number;
  placerCpu: number;
  writes: Map<string, number>;
  load: number;
}

const diff = (a: Map<string, number>, b: Map<string, number>) =>
  new Map([...b].map(([k, v]) => [k, v - (a.get(k) ?? 0)] as const).filter(([, v]) => v > 0));

async function until(what: string, ok: () => boolean, timeoutMs = 900_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!ok()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

function startProcess(bin: string, args: string[], logPath: string): ChildProcess {
  const out = openSync(logPath, 'a');
  const child = spawn(bin, args, { stdio: ['ignore', out, out] });
  child.on('exit', (code, signal) => {
    // kube-scheduler without leader election exits 1 on SIGTERM ("finished without leader elect"): only an exit
    // before the bench stopped it is news.
    if (!stopping.has(child) && code !== 0) console.error(`${bin} exited with ${code ?? signal}; see ${logPath}`);
  });
  return child;
}

const stopping = new WeakSet<ChildProcess>();

async function stopProcess(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null) return;
  stopping.add(child);
  const exited = new Promise((r) => child.once('exit', r));
  child.kill('SIGTERM');
  const timer = setTimeout(() => child.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

/** Runs `work` (the units' creation up to the last one placed) and measures it: time, CPU of both processes, writes. */
async function measure(
  who: Result['who'],
  n: number,
  cp: ControlPlane,
  placer: number,
  work: () => Promise<void>,
): Promise<Result> {
  const apiserver = cp.processes.find((p) => p.name === 'kube-apiserver')!.pid;
  const w0 = await apiWrites(kubeConfigFromString(cp.kubeconfig));
  const cpu0 = [cpuSeconds(apiserver), cpuSeconds(placer)];
  const t0 = performance.now();
  await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu1 = [cpuSeconds(apiserver), cpuSeconds(placer)];
  const w1 = await apiWrites(kubeConfigFromString(cp.kubeconfig));
  return {
    who,
    n,
    seconds,
    apiserverCpu: cpu1[0]! - cpu0[0]!,
    placerCpu: cpu1[1]! - cpu0[1]!,
    writes: diff(w0, w1),
    load: loadavg()[0]!,
  };
}

async function schedulerRun(n: number, schedulerBin: string): Promise<Result> {
  const cp = await startControlPlane({ logger: log });
  const kc = kubeConfigFromString(cp.kubeconfig);
  const ns = 'bench';
  const watches: { stop(): Promise<void> }[] = [];
  let scheduler: ChildProcess | undefined;
  try {
    await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
    const now = new Date().toISOString();
    await pool(
      Array.from({ length: NODES }, (_, i) => async () => {
        const name = `node-${i}`;
        await rawRequest(kc, {
          method: 'POST',
          path: '/api/v1/nodes',
          body: {
            metadata: { name, labels: { 'topology.kubernetes.io/zone': `z${i % 3}`, 'kubernetes.io/hostname': name } },
          },
        });
        const capacity = { cpu: '64', memory: '256Gi', pods: '250' };
        await rawRequest(kc, {
          method: 'PATCH',
          path: `/api/v1/nodes/${name}/status`,
          contentType: 'application/merge-patch+json',
          body: {
            status: {
              capacity,
              allocatable: capacity,
              conditions: [
                {
                  type: 'Ready',
                  status: 'True',
                  reason: 'KubeletReady',
                  lastHeartbeatTime: now,
                  lastTransitionTime: now,
                },
              ],
            },
          },
        });
        // The API server's TaintNodesByCondition admission adds node.kubernetes.io/not-ready at creation; the node
        // lifecycle controller (not running here) would lift it once the node is Ready.
        await rawRequest(kc, {
          method: 'PATCH',
          path: `/api/v1/nodes/${name}`,
          contentType: 'application/merge-patch+json',
          body: { spec: { taints: null } },
        });
        // What a kubelet watches: the pods bound to its node.
        const w = createInformer(kc, { path: `/api/v1/pods`, fieldSelector: `spec.nodeName=${name}`, logger: log });
        watches.push(w);
        await w.start();
      }),
      16,
    );
    const config = join(cp.dir, 'scheduler.yaml');
    writeFileSync(
      config,
      [
        'apiVersion: kubescheduler.config.k8s.io/v1',
        'kind: KubeSchedulerConfiguration',
        'clientConnection:',
        `  kubeconfig: ${cp.kubeconfigPath}`,
        `  qps: ${QPS}`,
        `  burst: ${BURST}`,
        'leaderElection:',
        '  leaderElect: false',
        '',
      ].join('\n'),
    );
    scheduler = startProcess(
      schedulerBin,
      [`--config=${config}`, '--secure-port=0'],
      join(logs, `kube-scheduler-${n}.log`),
    );
    const bound = new Set<string>();
    const pods = createInformer<{ metadata: { name?: string }; spec?: { nodeName?: string } }>(kc, {
      path: `/api/v1/namespaces/${ns}/pods`,
      logger: log,
    });
    const seen = (p: { metadata: { name?: string }; spec?: { nodeName?: string } }) => {
      if (p.spec?.nodeName) bound.add(p.metadata.name ?? '');
    };
    pods.on('add', seen);
    pods.on('update', seen);
    watches.push(pods);
    await pods.start();
    const pod = (name: string, app: string) => ({
      metadata: { name, labels: { app } },
      spec: {
        containers: [
          { name: 'app', image: 'registry.invalid/app', resources: { requests: { cpu: '100m', memory: '64Mi' } } },
        ],
      },
    });
    // Warm up: the scheduler is up and binding.
    await rawRequest(kc, { method: 'POST', path: `/api/v1/namespaces/${ns}/pods`, body: pod('warmup', 'warmup') });
    await until('the warm-up pod to be bound', () => bound.has('warmup'), 120_000);
    bound.clear();
    return await measure('kube-scheduler', n, cp, scheduler.pid!, async () => {
      await pool(
        Array.from(
          { length: n },
          (_, i) => () =>
            rawRequest(kc, {
              method: 'POST',
              path: `/api/v1/namespaces/${ns}/pods`,
              body: pod(`app-${Math.floor(i / PER_APP)}-${i % PER_APP}`, `app-${Math.floor(i / PER_APP)}`),
            }).then(() => undefined),
        ),
        64,
      );
      await until(`${n} pods bound`, () => bound.size >= n);
    });
  } finally {
    if (scheduler) await stopProcess(scheduler);
    await Promise.all(watches.map((w) => w.stop()));
    await cp.stop();
  }
}

async function diegoRun(n: number): Promise<Result> {
  const cp = await startControlPlane({ logger: log });
  const kc = kubeConfigFromString(cp.kubeconfig);
  const client = new DiegoClient(kc);
  const system = 'diego-system';
  const ns = 'bench';
  const cells: SimCell[] = [];
  let controller: ChildProcess | undefined;
  const placed = new Set<string>();
  const actuals = createInformer<{ metadata: { name?: string }; spec: { cellId?: string } }>(kc, {
    path: `/apis/diego.dev/v1alpha1/namespaces/${ns}/actuallrps`,
    logger: log,
  });
  try {
    await installCRDs(kc);
    for (const name of [system, ns])
      await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name } } });
    await pool(
      Array.from({ length: NODES }, (_, i) => async () => {
        const cell = new SimCell(kc, {
          namespace: system,
          cellId: `cell-${i}`,
          zone: `z${i % 3}`,
          memoryMb: 262144,
          diskMb: 1048576,
          containers: 250,
          autoStart: false, // placement only
        });
        cells.push(await cell.start());
      }),
      16,
    );
    controller = startProcess(
      process.execPath,
      [
        join(repo, 'src/main.ts'),
        'controller',
        `--kubeconfig=${cp.kubeconfigPath}`,
        '--webhook-cert-dir=',
        '--metrics-address=127.0.0.1:0',
        `--system-namespace=${system}`,
        `--kube-api-qps=${QPS}`,
        `--kube-api-burst=${BURST}`,
      ],
      join(logs, `controller-${n}.log`),
    );
    const seen = (a: { metadata: { name?: string }; spec: { cellId?: string } }) => {
      if (a.spec.cellId) placed.add(a.metadata.name ?? '');
    };
    actuals.on('add', seen);
    actuals.on('update', seen);
    await actuals.start();
    const desired = (name: string, instances: number) =>
      client.create('DesiredLRP', {
        metadata: { name, namespace: ns },
        spec: {
          processGuid: name,
          domain: 'bench',
          rootFs: 'preloaded:busybox',
          instances,
          memoryMb: 64,
          diskMb: 64,
          action: { run: { path: '/bin/app', user: 'root' } },
        },
      });
    // Warm up: the controller leads and places.
    await desired('warmup', 1);
    await until('the warm-up instance to be placed', () => placed.has('warmup-0'), 120_000);
    placed.clear();
    return await measure('diego-operator', n, cp, controller.pid!, async () => {
      const apps = Math.ceil(n / PER_APP);
      await pool(
        Array.from(
          { length: apps },
          (_, i) => () => desired(`app-${i}`, Math.min(PER_APP, n - i * PER_APP)).then(() => undefined),
        ),
        64,
      );
      await until(`${n} instances placed`, () => placed.size >= n);
    });
  } finally {
    if (controller) await stopProcess(controller);
    await actuals.stop();
    await Promise.all(cells.map((c) => c.kill()));
    await cp.stop();
  }
}

function report(r: Result): void {
  const perUnit = (x: number) => ((x / r.n) * 1000).toFixed(2);
  console.log(
    `${r.who.padEnd(15)} N=${String(r.n).padEnd(6)} ${(r.n / r.seconds).toFixed(0).padStart(5)} units/s  ` +
      `${r.seconds.toFixed(1).padStart(6)} s  apiserver ${perUnit(r.apiserverCpu)} ms CPU/unit  ` +
      `placer ${perUnit(r.placerCpu)} ms CPU/unit  writes ${(sumWrites(r.writes) / r.n).toFixed(2)}/unit  load ${r.load.toFixed(2)}`,
  );
  const parts = [...r.writes]
    .sort(([a], [b]) => a.localeCompare(b))
    .map(([k, v]) => `${k} ${(v / r.n).toFixed(3)}`)
    .join(', ');
  console.log(`${''.padEnd(15)} writes per unit: ${parts}`);
}

const schedulerBin = execFileSync('bash', [join(repo, 'hack/build-kube-scheduler.sh')], {
  encoding: 'utf8',
  stdio: ['ignore', 'pipe', 'inherit'],
})
  .trim()
  .split('\n')
  .at(-1)!;
const run = randomBytes(3).toString('hex');
/** The placers' logs, kept after the run (the control plane's directory goes with it). */
const logs = mkdtempSync(join(tmpdir(), `bench-place-${run}-`));
console.log(`placers' logs in ${logs}`);
console.log(
  `bench:place ${run}: ${NODES} nodes/cells, sizes ${SIZES.join(', ')}, ${ROUNDS} round(s); ${cpus().length} CPUs, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
const results: Result[] = [];
for (let round = 0; round < ROUNDS; round++) {
  for (const n of SIZES) {
    for (const who of ['kube-scheduler', 'diego-operator'] as const) {
      const r = who === 'kube-scheduler' ? await schedulerRun(n, schedulerBin) : await diegoRun(n);
      report(r);
      results.push(r);
    }
  }
}
console.log('\nratio (ours / kube-scheduler), per size, best of the rounds:');
for (const n of SIZES) {
  const best = (who: Result['who']) =>
    results.filter((r) => r.n === n && r.who === who).sort((a, b) => a.seconds - b.seconds)[0]!;
  const k = best('kube-scheduler');
  const d = best('diego-operator');
  console.log(
    `N=${n}: units/s ${(n / d.seconds / (n / k.seconds)).toFixed(2)}×, apiserver CPU per unit ${(d.apiserverCpu / k.apiserverCpu).toFixed(2)}×, ` +
      `placer CPU per unit ${(d.placerCpu / k.placerCpu).toFixed(2)}×, writes per unit ${(sumWrites(d.writes) / sumWrites(k.writes)).toFixed(2)}×`,
  );
}
