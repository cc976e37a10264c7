// npm run bench:converge-scale — the controller at 20k, 50k and 100k instances through a real API server: the
// controller runs as its own process (default flags), 100 simulated cells in this one claim and start what is placed
// on them. For each size the bench desires more DesiredLRPs of 100 instances until that many are desired, waits until
// the controller counts them all RUNNING, then watches two full convergence passes with nothing changing and prints
// * the controller's RSS (from /proc) and heap;
// * ConvergenceLRPDuration over those passes (a pass lasts until every DesiredLRP it queued was reconciled);
// * the API writes in that idle window by resource: the cells' lease renewals, and everything else (goal ≈ 0);
// * the time the size took to reach RUNNING (creates and cells' claims; the API server's CPU bounds it: see
//   bench:write-cost).
// A benchmark prints figures; it asserts nothing. Takes ~20 minutes at 100k on 2 CPUs.
//   SIZES=20000,50000,100000 npm run bench:converge-scale
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, openSync, readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { cpus, loadavg, tmpdir } from 'node:os';
import { join } from 'node:path';
import { startControlPlane } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { pool } from '../src/lib/pool.ts';
import { DiegoClient } from '../src/lib/resources.ts';
import { SimCell } from '../test/support/sim-cell.ts';
import { apiWrites, cpuSeconds } from './api-metrics.ts';

const SIZES = (process.env.SIZES ?? '20000,50000,100000').split(',').map(Number);
const CELLS = 100;
const PER_APP = 100;
const PASS_INTERVAL_S = 30; // the converger's default
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const repo = join(import.meta.dirname, '..');
const logs = mkdtempSync(join(tmpdir(), 'bench-converge-scale-'));

const freePort = () =>
  new Promise<number>((resolve, reject) => {
    const s = createServer().listen(0, '127.0.0.1', () => {
      const { port } = s.address() as { port: number };
      s.close(() => resolve(port));
    });
    s.on('error', reject);
  });

/** The controller's /metrics as name{labels} → value. */
async function scrape(port: number): Promise<Map<string, number>> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const out = new Map<string, number>();
  for (const line of text.split('\n')) {
    if (!line || line.startsWith('#')) continue;
    const i = line.lastIndexOf(' ');
    out.set(line.slice(0, i), Number(line.slice(i + 1)));
  }
  return out;
}

const rssMiB = (pid: number) => Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'))?.[1]) / 1024;

const cp = await startControlPlane({ logger: log });
let controller: ChildProcess | undefined;
const cells: SimCell[] = [];
try {
  const kc = kubeConfigFromString(cp.kubeconfig);
  const client = new DiegoClient(kc);
  const system = 'diego-system';
  const ns = 'bench';
  const apiserver = cp.processes.find((p) => p.name === 'kube-apiserver')!.pid;
  await installCRDs(kc);
  for (const name of [system, ns])
    await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name } } });
  const max = Math.max(...SIZES);
  const perCell = Math.ceil((max / CELLS) * 1.1);
  await pool(
    Array.from({ length: CELLS }, (_, i) => async () => {
      const cell = new SimCell(kc, {
        namespace: system,
        cellId: `cell-${i}`,
        zone: `z${i % 3}`,
        memoryMb: perCell * 64,
        diskMb: perCell * 64,
        containers: perCell,
      });
      cells.push(await cell.start());
    }),
    16,
  );
  const port = await freePort();
  const out = openSync(join(logs, 'controller.log'), 'a');
  controller = spawn(
    process.execPath,
    [
      join(repo, 'src/main.ts'),
      'controller',
      `--kubeconfig=${cp.kubeconfigPath}`,
      '--webhook-cert-dir=',
      `--metrics-address=127.0.0.1:${port}`,
      `--system-namespace=${system}`,
    ],
    { stdio: ['ignore', out, out] },
  );
  const pid = controller.pid!;
  console.log(
    `bench:converge-scale: sizes ${SIZES.join(', ')} on ${CELLS} simulated cells; ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}; controller log ${join(logs, 'controller.log')}`,
  );
  const metric = async (name: string) => (await scrape(port).catch(() => new Map<string, number>())).get(name) ?? 0;
  let apps = 0;
  for (const size of SIZES) {
    const t0 = performance.now();
    const cpu0 = [cpuSeconds(apiserver), cpuSeconds(pid)];
    const target = Math.ceil(size / PER_APP);
    await pool(
      Array.from({ length: target - apps }, (_, k) => async () => {
        const i = apps + k;
        await client.create('DesiredLRP', {
          metadata: { name: `app-${i}`, namespace: ns },
          spec: {
            processGuid: `app-${i}`,
            domain: 'bench',
            rootFs: 'preloaded:busybox',
            instances: PER_APP,
            memoryMb: 64,
            diskMb: 64,
            action: { run: { path: '/bin/app', user: 'root' } },
          },
        });
      }),
      16,
    );
    apps = target;
    while ((await metric('LRPsRunning')) < size) await new Promise((r) => setTimeout(r, 2000));
    const running = (performance.now() - t0) / 1000;
    const cpu1 = [cpuSeconds(apiserver), cpuSeconds(pid)];
    // Idle: two full passes with nothing changing (the first may still carry the last changes' reconciles).
    await new Promise((r) => setTimeout(r, PASS_INTERVAL_S * 1000 + 2000));
    const m0 = await scrape(port);
    const w0 = await apiWrites(kc);
    const i0 = performance.now();
    await new Promise((r) => setTimeout(r, 2 * PASS_INTERVAL_S * 1000 + 2000));
    const m1 = await scrape(port);
    const w1 = await apiWrites(kc);
    const idleS = (performance.now() - i0) / 1000;
    const d = (k: string) => (m1.get(k) ?? 0) - (m0.get(k) ?? 0);
    const passes = d('ConvergenceLRPDuration_count');
    const leases = [...w1].filter(([k]) => k.includes('leases')).reduce((a, [k, v]) => a + v - (w0.get(k) ?? 0), 0);
    // The API server's own writes (its `kubernetes` Service endpoints, every 10 s) are not the operator's.
    const others = [...w1]
      .filter(([k]) => !k.includes('leases') && !k.includes('endpoints'))
      .map(([k, v]) => [k, v - (w0.get(k) ?? 0)] as const)
      .filter(([, v]) => v > 0);
    const otherTotal = others.reduce((a, [, v]) => a + v, 0);
    console.log(
      `${String(size).padStart(6)} instances: RUNNING after ${running.toFixed(0)} s ` +
        `(API server ${(((cpu1[0]! - cpu0[0]!) / (size - (SIZES[SIZES.indexOf(size) - 1] ?? 0))) * 1000).toFixed(1)} ms CPU, ` +
        `controller ${(((cpu1[1]! - cpu0[1]!) / (size - (SIZES[SIZES.indexOf(size) - 1] ?? 0))) * 1000).toFixed(2)} ms CPU per new instance)`,
    );
    console.log(
      `${''.padStart(6)}            controller RSS ${rssMiB(pid).toFixed(0)} MiB, heap ${((m1.get('nodejs_heap_size_used_bytes') ?? 0) / 2 ** 20).toFixed(0)} MiB; ` +
        `full pass ${passes > 0 ? ((d('ConvergenceLRPDuration_sum') / passes) * 1000).toFixed(0) : '?'} ms (mean of ${passes}); ` +
        `idle ${idleS.toFixed(0)} s: ${leases} lease writes (${(leases / idleS).toFixed(1)}/s, ${CELLS} cells + the controller), ` +
        `${otherTotal} other writes${others.length ? ` (${others.map(([k, v]) => `${k} ${v}`).join(', ')})` : ''}`,
    );
  }
  console.log(
    `machine: ${cpus().length} CPUs, load average ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')} at the end`,
  );
} finally {
  if (controller && controller.exitCode === null) {
    const exited = new Promise((r) => controller!.once('exit', r));
    controller.kill('SIGTERM');
    await exited;
  }
  await Promise.all(cells.map((c) => c.kill()));
  await cp.stop();
}
