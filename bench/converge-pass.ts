// npm run bench:converge-pass — the controller's own cost of a convergence pass at 20k, 50k and 100k instances,
// without an API server: objects shaped as the informers hold them (without managedFields: src/lib/informer.ts
// strips them), indexed as DiegoCache
// indexes them, then
// * cell usage built from the objects' events (src/controllers/cell-usage.ts), as at the controller's start;
// * a full pass of the converger's decisions: every DesiredLRP's decide() and tally() (src/controllers/
//   converge-decision.ts) — at steady state it decides nothing, so the pass writes nothing (converger-bounds test);
// * one auction of 64 new instances over 1000 cells from that usage, which costs the same at any size;
// * the process's RSS and heap holding it all.
// The writes themselves, and the API server, are bench:converge's and bench:place's. Prints figures; asserts nothing.
//   SIZES=20000,50000,100000 npm run bench:converge-pass
import { cpus, loadavg } from 'node:os';
import { runAuction, type CellState, type LRPAuction } from '../src/auction/index.ts';
import { CellUsage, type UsageSource } from '../src/controllers/cell-usage.ts';
import { decide } from '../src/controllers/converge-decision.ts';
import { tally } from '../src/controllers/converger.ts';
import type { IActualLRP, IDesiredLRP } from '../src/crds/models.ts';

const SIZES = (process.env.SIZES ?? '20000,50000,100000').split(',').map(Number);
const PER_APP = 100;
const CELLS = 1000;

function world(n: number) {
  const t = new Date().toISOString();
  const desired: IDesiredLRP[] = [];
  const actual: IActualLRP[] = [];
  for (let app = 0; app * PER_APP < n; app++) {
    const name = `app-${app}`;
    const uid = `00000000-0000-4000-8000-${String(app).padStart(12, '0')}`;
    desired.push(
      JSON.parse(
        JSON.stringify({
          apiVersion: 'diego.dev/v1alpha1',
          kind: 'DesiredLRP',
          metadata: { name, namespace: 'apps', uid, resourceVersion: '1', generation: 1, creationTimestamp: t },
          spec: {
            processGuid: `${name}-f3a1c6f0-9d2e-4b8a-a1d7-5e0c2b4f6a8d`,
            domain: 'cf-apps',
            rootFs: 'preloaded:cflinuxfs4',
            instances: PER_APP,
            memoryMb: 256,
            diskMb: 1024,
            ports: [8080],
            logGuid: name,
            action: { run: { path: '/tmp/lifecycle/launcher', args: ['app', 'bundle exec rackup'], user: 'vcap' } },
            routes: { 'cf-router': [{ hostnames: [`${name}.example.com`], port: 8080 }] },
          },
        }),
      ) as IDesiredLRP,
    );
    for (let i = 0; i < PER_APP && app * PER_APP + i < n; i++) {
      const cellId = `cell-${(app * PER_APP + i) % CELLS}`;
      actual.push(
        JSON.parse(
          JSON.stringify({
            apiVersion: 'diego.dev/v1alpha1',
            kind: 'ActualLRP',
            metadata: {
              name: `${name}-${i}`,
              namespace: 'apps',
              uid: `${uid.slice(0, 24)}${String(i).padStart(12, '0')}`,
              resourceVersion: String(1000 + app * PER_APP + i),
              generation: 1,
              creationTimestamp: t,
              annotations: { 'diego.dev/placement': `placed on ${cellId} (zone z1, score 1.679); 1000 cells` },
              labels: { 'diego.dev/cell-id': cellId, 'diego.dev/desired-lrp-uid': uid, 'diego.dev/index': String(i) },
              finalizers: ['diego.dev/container'],
              ownerReferences: [
                {
                  apiVersion: 'diego.dev/v1alpha1',
                  kind: 'DesiredLRP',
                  name,
                  uid,
                  controller: true,
                  blockOwnerDeletion: true,
                },
              ],
            },
            spec: { processGuid: `${name}-f3a1c6f0-9d2e-4b8a-a1d7-5e0c2b4f6a8d`, index: i, domain: 'cf-apps', cellId },
            status: {
              state: 'RUNNING',
              cellId,
              instanceGuid: `9b2f${String(app * PER_APP + i).padStart(8, '0')}-1c2d-4e5f-8a9b-0c1d2e3f4a5b`,
              availabilityZone: 'z1',
              routable: true,
              since: t,
              netInfo: {
                address: '10.0.16.4',
                instanceAddress: '10.255.1.2',
                ports: [{ containerPort: 8080, hostPort: 61001 }],
              },
            },
          }),
        ) as IActualLRP,
      );
    }
  }
  return { desired, actual };
}

const mib = (b: number) => `${(b / 2 ** 20).toFixed(0)} MiB`;
console.log(
  `bench:converge-pass: ${PER_APP} instances per DesiredLRP, ${CELLS} cells; ${cpus().length} CPUs, load ${loadavg()
    .map((l) => l.toFixed(2))
    .join(' ')}`,
);
console.log('instances | usage built ms | full pass ms | auction of 64 ms | rss | heap used');
console.log('--------: | -------------: | -----------: | ---------------: | --: | --------:');
for (const n of SIZES) {
  globalThis.gc?.();
  const { desired, actual } = world(n);
  // As DiegoCache indexes them.
  const byUid = new Map<string, IActualLRP[]>();
  for (const a of actual) {
    const uid = a.metadata.labels?.['diego.dev/desired-lrp-uid'] ?? '';
    const list = byUid.get(uid);
    if (list) list.push(a);
    else byUid.set(uid, [a]);
  }
  const desiredByUid = new Map(desired.map((d) => [d.metadata.uid ?? '', d]));
  type Fn<T> = (o: T, old?: T) => void;
  const handlers: { actual: Fn<IActualLRP>[]; desired: Fn<IDesiredLRP>[] } = { actual: [], desired: [] };
  const source: UsageSource = {
    actual: { on: (e, fn) => e === 'add' && handlers.actual.push(fn) },
    tasks: { on: () => undefined },
    desired: { on: (e, fn) => e === 'add' && handlers.desired.push(fn) },
    actualByDesiredUid: { get: (uid) => byUid.get(uid) ?? [] },
    desiredFor: (a) => desiredByUid.get(a.metadata.labels?.['diego.dev/desired-lrp-uid'] ?? ''),
  };
  const t0 = performance.now();
  const usage = new CellUsage(source);
  for (const a of actual) for (const fn of handlers.actual) fn(a);
  const built = performance.now() - t0;

  const t1 = performance.now();
  let acted = 0;
  for (const d of desired) {
    const instances = byUid.get(d.metadata.uid ?? '') ?? [];
    const ordinary = new Map(instances.map((a) => [a.spec.index, a] as const));
    const decision = decide({ desired: d, ordinary, waiting: new Set(), isPresent: () => true, now: Date.now() });
    acted += decision.create.length + decision.retire.length + decision.act.length;
    tally(d.spec.instances ?? 1, instances);
  }
  const pass = performance.now() - t1;
  if (acted !== 0) throw new Error(`a steady state decided ${acted} actions`);

  const t2 = performance.now();
  const cells: CellState[] = Array.from({ length: CELLS }, (_, i) => {
    const used = usage.of(`cell-${i}`);
    const total = { memoryMb: 256 * 1024, diskMb: 1024 * 1024, containers: 250 };
    return {
      cellId: `cell-${i}`,
      zone: `z${i % 3}`,
      rootfsProviders: [{ name: 'preloaded', properties: ['cflinuxfs4'] }],
      volumeDrivers: [],
      placementTags: [],
      optionalPlacementTags: [],
      total,
      available: {
        memoryMb: total.memoryMb - (used?.memoryMb ?? 0),
        diskMb: total.diskMb - (used?.diskMb ?? 0),
        containers: total.containers - (used?.containers ?? 0),
      },
      startingContainers: used?.starting ?? 0,
      lrps: [],
      ...(used ? { lrpCounts: used.lrps } : {}),
      tasks: used?.tasks ?? 0,
      evacuating: false,
    };
  });
  const batch: LRPAuction[] = Array.from({ length: 64 }, (_, i) => ({
    key: `apps/new-${i}`,
    processGuid: 'new-app',
    index: i,
    rootFs: 'preloaded:cflinuxfs4',
    memoryMb: 256,
    diskMb: 1024,
    placementTags: [],
    volumeDrivers: [],
  }));
  const placed = runAuction(cells, batch, []).lrps.placed.length;
  const auction = performance.now() - t2;
  if (placed !== 64) throw new Error(`placed ${placed} of 64`);
  const mem = process.memoryUsage();
  console.log(
    `${String(n).padStart(9)} | ${built.toFixed(0).padStart(14)} | ${pass.toFixed(0).padStart(12)} | ${auction.toFixed(1).padStart(16)} | ${mib(mem.rss)} | ${mib(mem.heapUsed)}`,
  );
}
