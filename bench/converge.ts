// npm run bench:converge — desires 10k instances (100 DesiredLRPs × 100) against a real API server with 100
// simulated cells, and prints how long until every instance is placed and running, and the API write rate.
// A benchmark prints figures; it asserts nothing.
import { randomBytes } from 'node:crypto';
import { cpus, loadavg } from 'node:os';
import { Manager } from '../src/controllers/manager.ts';
import { connectOrStart } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { DiegoClient } from '../src/lib/resources.ts';
import { registry } from '../src/lib/metrics.ts';
import { SimCell } from '../test/support/sim-cell.ts';
import { apiWrites, cpuSeconds, sumWrites } from './api-metrics.ts';

const APPS = Number(process.env.APPS ?? 100);
const INSTANCES = Number(process.env.INSTANCES ?? 100);
const CELLS = Number(process.env.CELLS ?? 100);

const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const cp = await connectOrStart({ logger: log });
const kc = kubeConfigFromString(cp.kubeconfig);
const client = new DiegoClient(kc);
const systemNamespace = `bench-sys-${randomBytes(3).toString('hex')}`;
const ns = `bench-${randomBytes(3).toString('hex')}`;

try {
  await installCRDs(kc);
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
  const manager = new Manager({ kc, log, systemNamespace });
  await manager.start();
  const cells = await Promise.all(
    Array.from({ length: CELLS }, (_, i) =>
      new SimCell(kc, {
        namespace: systemNamespace,
        cellId: `bench-cell-${i}`,
        zone: `z${i % 3}`,
        memoryMb: 65536,
        diskMb: 262144,
        containers: 250,
      }).start(),
    ),
  );
  const total = APPS * INSTANCES;
  console.log(`desiring ${total} instances (${APPS} DesiredLRPs × ${INSTANCES}) on ${CELLS} cells ...`);
  const w0 = await apiWrites(kc);
  // CPU of the parts: where the seconds to RUNNING go (an external cluster has no local processes to read).
  const pids = cp.processes.filter((p) => p.name === 'kube-apiserver' || p.name === 'etcd');
  const cpuOf = () => [...pids.map((p) => cpuSeconds(p.pid)), cpuSeconds(process.pid)];
  const c0 = cpuOf();
  const t0 = performance.now();
  await Promise.all(
    Array.from({ length: APPS }, (_, i) =>
      client.create('DesiredLRP', {
        metadata: { name: `app-${i}`, namespace: ns },
        spec: {
          processGuid: `app-${i}`,
          domain: 'bench',
          rootFs: 'preloaded:busybox',
          instances: INSTANCES,
          memoryMb: 64 + (i % 4) * 64,
          diskMb: 128,
          action: { run: { path: '/bin/app', user: 'root' } },
        },
      }),
    ),
  );
  const c = manager.controllers!.cache;
  let placedAt = 0;
  for (;;) {
    const all = c.actual.list().filter((a) => a.metadata.namespace === ns);
    const placed = all.filter((a) => a.spec.cellId).length;
    const running = all.filter((a) => a.status?.state === 'RUNNING').length;
    if (!placedAt && placed >= total) placedAt = performance.now();
    if (running >= total) break;
    await new Promise((r) => setTimeout(r, 250));
  }
  const doneAt = performance.now();
  const c1 = cpuOf();
  const w1 = await apiWrites(kc);
  const perCell = cells.map((cell) => c.actualByCell.get(cell.o.cellId).length);
  const mean = perCell.reduce((a, b) => a + b, 0) / perCell.length;
  const sd = Math.sqrt(perCell.reduce((a, b) => a + (b - mean) ** 2, 0) / perCell.length);
  console.log(`all ${total} placed after   ${((placedAt - t0) / 1000).toFixed(1)} s`);
  console.log(`all ${total} RUNNING after  ${((doneAt - t0) / 1000).toFixed(1)} s`);
  const written = sumWrites(w1) - sumWrites(w0);
  console.log(
    `API writes               ${written} (${(written / ((doneAt - t0) / 1000)).toFixed(0)} per second, ${(written / total).toFixed(2)} per instance)`,
  );
  for (const [key, n] of [...w1].sort(([a], [b]) => a.localeCompare(b))) {
    const d = n - (w0.get(key) ?? 0);
    if (d > 0) console.log(`  ${key.padEnd(32)} ${String(d).padStart(7)}  ${(d / total).toFixed(3)} per instance`);
  }
  const cpuLine = [...pids.map((p) => p.name), 'this process (controller, 100 sim cells, bench)']
    .map(
      (name, i) =>
        `${name} ${(c1[i]! - c0[i]!).toFixed(1)} s (${(((c1[i]! - c0[i]!) / total) * 1000).toFixed(2)} ms/instance)`,
    )
    .join(', ');
  console.log(`CPU until RUNNING        ${cpuLine}`);
  // Why watches were opened again (all informers of this process: the controller's and the 100 cells').
  const watchEnds = new Map<string, number>();
  for (const v of (await registry.getSingleMetric('informer_watches_total')?.get())?.values ?? []) {
    const key = `${String(v.labels.end)}`;
    watchEnds.set(key, (watchEnds.get(key) ?? 0) + v.value);
  }
  const lists = (await registry.getSingleMetric('informer_lists_total')?.get())?.values ?? [];
  console.log(
    `watches re-opened         ${[...watchEnds].map(([k, v]) => `${v} ${k}`).join(', ') || 'none'}; full lists ${lists.reduce((a, v) => a + v.value, 0)} (${cells.length * 2 + 5} informers)`,
  );
  // Watchers the API server closed because they did not read fast enough (its watch cache's dispatch budget).
  const apiMetrics = String(await rawRequest<string>(kc, { method: 'GET', path: '/metrics' }));
  const terminated = apiMetrics
    .split('\n')
    .filter((l) => l.startsWith('apiserver_terminated_watchers_total{'))
    .reduce((n, l) => n + Number(l.slice(l.lastIndexOf(' ') + 1)), 0);
  console.log(`watchers the API server closed as unresponsive: ${terminated}`);
  const load = loadavg().map((l) => l.toFixed(2));
  console.log(`machine                  ${cpus().length} CPUs, load average ${load.join(' ')} at the end`);
  console.log(
    `instances per cell       mean ${mean.toFixed(1)}, stddev ${sd.toFixed(2)}, min ${Math.min(...perCell)}, max ${Math.max(...perCell)}`,
  );
  console.log(
    `controller rss           ${(process.memoryUsage().rss / 2 ** 20).toFixed(0)} MiB (manager, 100 sim cells and the bench in one process)`,
  );
  await Promise.all(cells.map((cell) => cell.kill()));
  await manager.stop();
} finally {
  await cp.stop();
}
