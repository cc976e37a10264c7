// npm run bench:write-cost — what one write costs the API server, by kind of write: the floor under every other
// figure of bench:place and bench:converge. On a fresh local API server (no other client), it makes WRITES writes
// of each kind, 16 at a time, and reads the API server's CPU from /proc before and after each kind:
// * what kube-scheduler's path writes per pod: the pod's create, its binding, a kubelet's status patch;
// * what ours writes per instance: the ActualLRP's create (placed, as the converger makes it), the cell's claim
//   (status merge patch with a resourceVersion, as the cell agent writes it), and the same status write as a PUT.
// It then prints the floors these costs put under the goals: the API server's CPU alone for 10k instances to
// RUNNING (1 create + 2 status writes each), and the best placement ratio over kube-scheduler two API-bound
// placers can reach (pod create + binding against one create).
// A benchmark prints figures; it asserts nothing.
//   WRITES=2000 npm run bench:write-cost
import { cpus, loadavg } from 'node:os';
import { startControlPlane } from '../src/lib/controlplane/index.ts';
import { installCRDs, kubeConfigFromString, rawRequest } from '../src/lib/kube.ts';
import { createLogger } from '../src/lib/log.ts';
import { pool } from '../src/lib/pool.ts';
import { cpuSeconds } from './api-metrics.ts';

const WRITES = Number(process.env.WRITES ?? 2000);
const CONCURRENCY = 16;
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');

type Obj = { metadata: { name: string; resourceVersion: string }; status?: Record<string, unknown> };

const cp = await startControlPlane({ logger: log });
try {
  const kc = kubeConfigFromString(cp.kubeconfig);
  const apiserver = cp.processes.find((p) => p.name === 'kube-apiserver')!.pid;
  await installCRDs(kc);
  const ns = 'bench';
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: ns } } });
  await rawRequest(kc, { method: 'POST', path: '/api/v1/nodes', body: { metadata: { name: 'node-0' } } });
  const pods = `/api/v1/namespaces/${ns}/pods`;
  const actuals = `/apis/diego.dev/v1alpha1/namespaces/${ns}/actuallrps`;
  const n = Array.from({ length: WRITES }, (_, i) => i);
  const costs = new Map<string, number>();

  /** Makes one write per index, 16 at a time, and records the API server's CPU per write in ms. */
  async function cost(what: string, write: (i: number) => Promise<void>): Promise<number> {
    const c0 = cpuSeconds(apiserver);
    await pool(
      n.map((i) => () => write(i)),
      CONCURRENCY,
    );
    const ms = ((cpuSeconds(apiserver) - c0) / WRITES) * 1000;
    costs.set(what, ms);
    console.log(`${what.padEnd(44)} ${ms.toFixed(2).padStart(6)} ms API server CPU per write`);
    return ms;
  }

  console.log(
    `bench:write-cost: ${WRITES} writes of each kind, ${CONCURRENCY} at a time; ${cpus().length} CPUs, load ${loadavg()
      .map((l) => l.toFixed(2))
      .join(' ')}`,
  );
  // kube-scheduler's path.
  const podCreate = await cost('pod create', async (i) => {
    await rawRequest(kc, {
      method: 'POST',
      path: pods,
      body: {
        metadata: { name: `app-${i}`, labels: { app: 'app' } },
        spec: {
          containers: [
            { name: 'app', image: 'registry.invalid/app', resources: { requests: { cpu: '100m', memory: '64Mi' } } },
          ],
        },
      },
    });
  });
  const podBind = await cost('pod binding (kube-scheduler)', async (i) => {
    await rawRequest(kc, {
      method: 'POST',
      path: `${pods}/app-${i}/binding`,
      body: { metadata: { name: `app-${i}` }, target: { kind: 'Node', name: 'node-0' } },
    });
  });
  const podStatus = await cost('pod status patch (kubelet)', async (i) => {
    await rawRequest(kc, {
      method: 'PATCH',
      path: `${pods}/app-${i}/status`,
      contentType: 'application/merge-patch+json',
      body: { status: { phase: 'Running', podIP: '10.0.0.1', startTime: new Date().toISOString() } },
    });
  });

  // Ours.
  const objs: Obj[] = [];
  const create = await cost('ActualLRP create, placed (converger)', async (i) => {
    objs[i] = await rawRequest<Obj>(kc, {
      method: 'POST',
      path: `${actuals}?fieldManager=diego-operator`,
      body: {
        apiVersion: 'diego.dev/v1alpha1',
        kind: 'ActualLRP',
        metadata: {
          name: `app-${i}`,
          labels: {
            'diego.dev/cell-id': 'cell-0',
            'diego.dev/process-guid': 'app',
            'diego.dev/index': String(i),
          },
          annotations: { 'diego.dev/placement': 'placed on cell-0 (zone z0, score 1.047); 100 cells' },
          finalizers: ['diego.dev/container'],
        },
        spec: { processGuid: 'app', index: i, domain: 'bench', cellId: 'cell-0' },
      },
    });
  });
  const status = (state: string) => ({
    state,
    cellId: 'cell-0',
    instanceGuid: `ig-${Math.random().toString(36).slice(2)}`,
    availabilityZone: 'z0',
    since: new Date().toISOString(),
    netInfo: { address: '127.0.0.1', instanceAddress: '10.255.0.1', ports: [{ containerPort: 8080, hostPort: 61000 }] },
  });
  const claim = await cost('ActualLRP status merge patch (cell claim)', async (i) => {
    objs[i] = await rawRequest<Obj>(kc, {
      method: 'PATCH',
      path: `${actuals}/app-${i}/status?fieldManager=diego-operator`,
      contentType: 'application/merge-patch+json',
      body: { metadata: { resourceVersion: objs[i]!.metadata.resourceVersion }, status: status('CLAIMED') },
    });
  });
  await cost('ActualLRP status PUT (same write as a PUT)', async (i) => {
    const o = objs[i]!;
    objs[i] = await rawRequest<Obj>(kc, {
      method: 'PUT',
      path: `${actuals}/app-${i}/status?fieldManager=diego-operator`,
      body: { ...o, status: { ...o.status, state: 'RUNNING', routable: true } },
    });
  });

  const cores = cpus().length;
  const perInstance = create + 2 * claim;
  console.log(
    `floor, 10k instances to RUNNING: 10k × (create + 2 status writes) = ${((perInstance * 10_000) / 1000).toFixed(0)} API server CPU-s, ` +
      `${((perInstance * 10_000) / 1000 / cores).toFixed(0)} s on all ${cores} CPUs with nothing else running`,
  );
  console.log(
    `floor, placement ratio: two API-bound placers, (pod create + binding) / (placed create) = ` +
      `${((podCreate + podBind) / create).toFixed(2)}× at most`,
  );
  console.log(`(a kubelet's pod status patch, for comparison with a cell's claim: ${podStatus.toFixed(2)} ms)`);
} finally {
  await cp.stop();
}
