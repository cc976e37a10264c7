// The scheduling brain against a real API server, with simulated cells playing the cell-agent's part:
// convergence, the auction (zones, placement errors, retry on capacity), crash restarts, lost cells.
import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { startOpsServer } from '../../src/lib/metrics.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { kubectl } from '../support/kube.ts';
import type { SimCellOptions } from '../support/sim-cell.ts';
import { presenceOf, stateOf } from '../../src/lifecycle/actual-lrp.ts';

const env = useDiego('sched', { convergeIntervalMs: 2000 });
const { client } = env;
const startCells = (n: number, opts?: (i: number) => Partial<SimCellOptions>) => env.startCells(n, opts);
const cells = env.cells;

let seq = 0;
async function desire(
  spec: Partial<IDesiredLRP['spec']> & { instances: number },
  name = `app-${++seq}`,
): Promise<IDesiredLRP> {
  return client.create('DesiredLRP', {
    metadata: { name, namespace: env.ns },
    spec: {
      processGuid: `${name}-guid`,
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      memoryMb: 64,
      diskMb: 64,
      action: { run: { path: '/bin/app', user: 'root' } },
      ...spec,
    },
  });
}

const instancesOf = async (d: IDesiredLRP): Promise<IActualLRP[]> =>
  client.list('ActualLRP', { namespace: env.ns, labelSelector: `diego.dev/desired-lrp-uid=${d.metadata.uid}` });

async function running(d: IDesiredLRP, n: number): Promise<IActualLRP[]> {
  return eventually(async () => {
    const all = await instancesOf(d);
    const ordinary = all.filter((a) => presenceOf(a) === 'ORDINARY');
    expect(ordinary.filter((a) => a.status?.state === 'RUNNING')).toHaveLength(n);
    expect(ordinary).toHaveLength(n);
    return ordinary;
  }, 30_000);
}

describe('converger', () => {
  it('keeps exactly spec.instances instances: 10 → 2 → 10, highest indices retired, status counted', async () => {
    await startCells(3);
    const d = await desire({ instances: 10 });
    const ten = await running(d, 10);
    expect(ten.map((a) => a.spec.index).sort((x, y) => x - y)).toEqual([0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    for (const a of ten) {
      expect(a.metadata.ownerReferences?.[0]).toMatchObject({
        kind: 'DesiredLRP',
        name: d.metadata.name,
        controller: true,
      });
      expect(a.metadata.annotations?.['diego.dev/placement']).toMatch(/placed on .* score/);
      expect(a.metadata.labels).toMatchObject({
        'diego.dev/process-guid': d.spec.processGuid,
        'diego.dev/index': String(a.spec.index),
        'diego.dev/cell-id': a.spec.cellId,
      });
    }
    expect((await kubectl(['scale', '-n', env.ns, `desiredlrp/${d.metadata.name}`, '--replicas=2'])).code).toBe(0);
    const two = await running(d, 2);
    expect(two.map((a) => a.spec.index).sort()).toEqual([0, 1]);
    await eventually(async () => expect(await instancesOf(d)).toHaveLength(2));
    await eventually(() => expect(cells.reduce((n, c) => n + c.containers.size, 0)).toBe(2));
    await client.patch('DesiredLRP', { namespace: env.ns, name: d.metadata.name! }, { spec: { instances: 10 } });
    await running(d, 10);
    const status = await eventually(async () => {
      const s = (await client.get('DesiredLRP', env.ns, d.metadata.name!)).status;
      expect(s?.runningInstances).toBe(10);
      return s;
    });
    expect(status?.conditions?.find((c) => c.type === 'Ready')).toMatchObject({
      status: 'True',
      reason: 'AllInstancesRunning',
    });
  });

  it('leaves nothing behind when the DesiredLRP is deleted', async () => {
    const [cell] = await startCells(1);
    const d = await desire({ instances: 3 });
    await running(d, 3);
    expect(cell!.containers.size).toBe(3);
    await client.delete('DesiredLRP', { namespace: env.ns, name: d.metadata.name! });
    await eventually(async () => expect(await instancesOf(d)).toHaveLength(0), 45_000);
    expect(cell!.containers.size).toBe(0);
  });
});

describe('metrics', () => {
  it("serves Diego's metric names on /metrics", async () => {
    await startCells(1);
    const d = await desire({ instances: 2 });
    await running(d, 2);
    const ops = await startOpsServer({ port: 0 });
    try {
      await eventually(async () => {
        const text = await (await fetch(`${ops.url}/metrics`)).text();
        for (const name of [
          'LRPsDesired',
          'LRPsRunning',
          'LRPsClaimed',
          'LRPsUnclaimed',
          'LRPsMissing',
          'LRPsExtra',
          'CrashedActualLRPs',
          'CrashingDesiredLRPs',
          'TasksPending',
          'TasksRunning',
          'TasksCompleted',
          'TasksResolving',
        ]) {
          expect(text).toMatch(new RegExp(`^${name} \\d+`, 'm'));
        }
        expect(text).toMatch(/^LRPsRunning [1-9]/m);
        expect(text).toMatch(/^AuctioneerLRPAuctionsStarted [1-9]/m);
        expect(text).toMatch(/^AuctioneerFetchStatesDuration_count [1-9]/m);
        expect(text).toMatch(/^ConvergenceLRPDuration_count [1-9]/m);
      }, 10_000);
    } finally {
      await ops.close();
    }
  });
});

describe('auctioneer', () => {
  it('balances 300 instances of mixed apps over 3 zones × 10 cells within ±1 per app', async () => {
    await startCells(30, (i) => ({ zone: `z${i % 3}`, memoryMb: 8192, containers: 200 }));
    const apps = await Promise.all(
      [40, 35, 30, 30, 25, 25, 25, 20, 20, 15, 15, 10, 10].map((n, i) =>
        desire({ instances: n, memoryMb: 32 * (1 + (i % 4)) }),
      ),
    );
    expect(apps.reduce((n, d) => n + d.spec.instances, 0)).toBe(300);
    const zoneOf = new Map(cells.map((c) => [c.o.cellId, c.o.zone]));
    for (const d of apps) {
      const instances = await running(d, d.spec.instances);
      const perZone = new Map<string, number>();
      for (const a of instances)
        perZone.set(zoneOf.get(a.spec.cellId!)!, (perZone.get(zoneOf.get(a.spec.cellId!)!) ?? 0) + 1);
      const counts = ['z0', 'z1', 'z2'].map((z) => perZone.get(z) ?? 0);
      expect(Math.max(...counts) - Math.min(...counts), `${d.metadata.name}: ${counts.join('/')}`).toBeLessThanOrEqual(
        1,
      );
    }
  }, 120_000);

  it("explains a failed placement with Diego's error, and places as soon as capacity appears", async () => {
    await startCells(1, () => ({ memoryMb: 256 }));
    const d = await desire({ instances: 1, memoryMb: 1024 });
    const [waiting] = await eventually(async () => {
      const all = await instancesOf(d);
      expect(all[0]?.status?.placementError).toBe('insufficient resources: memory');
      return all;
    });
    expect(stateOf(waiting!)).toBe('UNCLAIMED');
    // kubectl describe answers "why not placed" and, later, "why here".
    await eventually(async () => {
      // The Event is recorded after the status write.
      const describeWaiting = await kubectl(['describe', '-n', env.ns, 'actuallrp', waiting!.metadata.name!]);
      expect(describeWaiting.stdout).toMatch(
        /PlacementFailed\s+.*insufficient resources: memory: not placed; 1 cells?: 1 without room/,
      );
    });
    expect(waiting!.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({
      status: 'False',
      reason: 'PlacementFailed',
    });
    // A cell with room joins: the instance is placed (the auction runs when capacity appears; how fast is a
    // benchmark's business, not a test's).
    await startCells(1, () => ({ memoryMb: 4096 }));
    const [placed] = await running(d, 1);
    expect(placed!.status?.placementError).toBeUndefined();
    await eventually(async () => {
      const described = await kubectl(['describe', '-n', env.ns, 'actuallrp', placed!.metadata.name!]);
      // Why here: the placement annotation (no Event per placement).
      expect(described.stdout).toMatch(/diego\.dev\/placement:\s+placed on .* \(zone z1, score \d/);
      if (process.env.SHOW_DESCRIBE) console.log(described.stdout);
    });
  });

  it('honours rootfs and placement tags', async () => {
    await startCells(2, (i) =>
      i === 0 ? { stacks: ['cflinuxfs4'] } : { stacks: ['busybox'], placementTags: ['gpu'] },
    );
    const plain = await desire({ instances: 1 });
    const gpu = await desire({ instances: 1, placementTags: ['gpu'] });
    const docker = await desire({ instances: 1, rootFs: 'docker:///library/busybox#latest' });
    await eventually(async () => {
      expect((await instancesOf(plain))[0]?.status?.placementError).toBe(
        'found no compatible cell with no placement tags',
      );
    });
    expect((await running(gpu, 1))[0]!.spec.cellId).toBe(cells[1]!.o.cellId);
    expect((await running(docker, 1))[0]!.spec.cellId).toBe(cells[0]!.o.cellId);
  });
});

describe('crash restart policy', () => {
  it('restarts crashes 1 and 2 at once, holds crash 3 for the backoff, gives up at maxRestarts', async () => {
    const [cell] = await startCells(1);
    const d = await desire({ instances: 1, crashRestartPolicy: { minBackoffMs: 3000, maxRestarts: 4 } });
    const name = `${d.metadata.name}-0`;
    const crashAndWait = async (count: number) => {
      await running(d, 1);
      await cell!.crash(name, env.ns);
      return eventually(async () => {
        const a = await client.get('ActualLRP', env.ns, name);
        expect(a.status?.crashCount).toBe(count);
        return a;
      });
    };
    for (const count of [1, 2]) {
      await crashAndWait(count);
      const [back] = await running(d, 1); // immediately restarted
      expect(back!.status?.crashCount).toBe(count);
    }
    const third = await crashAndWait(3);
    expect(third.status?.crashReason).toBe('APP/PROC/WEB: Exited with status 1');
    const crashedAt = Date.parse(third.status!.since!);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await client.get('ActualLRP', env.ns, name)).status?.state).toBe('CRASHED');
    const [restarted] = await running(d, 1);
    expect(Date.now() - crashedAt).toBeGreaterThanOrEqual(3000);
    expect(restarted!.status?.crashCount).toBe(3);
    await crashAndWait(4); // maxRestarts 4: never restarted
    await new Promise((r) => setTimeout(r, 4000));
    const given = await client.get('ActualLRP', env.ns, name);
    expect(given.status?.state).toBe('CRASHED');
    const desired = await client.get('DesiredLRP', env.ns, d.metadata.name!);
    expect(desired.status?.crashedInstances).toBe(1);
  }, 60_000);
});

describe('cell presence', () => {
  it('replaces instances of a lost cell via SUSPECT, then drops the suspects once replacements run', async () => {
    const [lost] = await startCells(1, () => ({ leaseSeconds: 2 }));
    const d = await desire({ instances: 3 });
    const before = await running(d, 3);
    expect(new Set(before.map((a) => a.spec.cellId))).toEqual(new Set([lost!.o.cellId]));
    const [spare] = await startCells(1, () => ({ autoStart: false }));
    lost!.pauseHeartbeat();
    // Suspect copies keep the old placement while replacements wait on the new cell.
    const during = await eventually(async () => {
      const all = await instancesOf(d);
      expect(all.filter((a) => a.status?.presence === 'SUSPECT')).toHaveLength(3);
      expect(all.filter((a) => presenceOf(a) === 'ORDINARY' && a.spec.cellId === spare!.o.cellId)).toHaveLength(3);
      return all;
    }, 20_000);
    expect(during.filter((a) => a.status?.presence === 'SUSPECT').every((a) => a.status?.state === 'RUNNING')).toBe(
      true,
    );
    spare!.o.autoStart = true;
    await Promise.all(
      spare!
        .instances()
        .map((a) =>
          client.patch(
            'ActualLRP',
            { namespace: env.ns, name: a.metadata.name! },
            { metadata: { annotations: { poke: '1' } } },
          ),
        ),
    );
    await running(d, 3);
    await eventually(
      async () => expect((await instancesOf(d)).filter((a) => a.status?.presence === 'SUSPECT')).toHaveLength(0),
      20_000,
    );
  }, 60_000);

  it('finishes a SUSPECT copy an earlier pass left without status, and keeps it until a replacement runs', async () => {
    const [lost] = await startCells(1, () => ({ leaseSeconds: 2 }));
    const d = await desire({ instances: 1 });
    const [a] = await running(d, 1);
    // An earlier cell-lost pass created the copy, then failed to write its status (the second write).
    await client.create('ActualLRP', {
      metadata: {
        name: `${a!.metadata.name}-suspect`,
        namespace: env.ns,
        labels: a!.metadata.labels,
        ownerReferences: a!.metadata.ownerReferences,
      },
      spec: a!.spec,
    });
    lost!.pauseHeartbeat();
    await eventually(async () => {
      const all = await instancesOf(d);
      expect(stateOf(all.find((x) => presenceOf(x) === 'ORDINARY')!)).toBe('UNCLAIMED');
    }, 20_000);
    // No cell runs the replacement: the suspect keeps serving, over more than one converge pass.
    await new Promise((r) => setTimeout(r, 5000));
    const suspect = (await instancesOf(d)).find((x) => x.metadata.name === `${a!.metadata.name}-suspect`);
    expect(suspect?.status).toMatchObject({
      presence: 'SUSPECT',
      state: 'RUNNING',
      instanceGuid: a!.status?.instanceGuid,
    });
    expect(suspect?.metadata.deletionTimestamp).toBeUndefined();
  }, 60_000);

  it('promotes the suspects back when the cell returns before the replacements run', async () => {
    const [flaky] = await startCells(1, () => ({ leaseSeconds: 2 }));
    const d = await desire({ instances: 2 });
    const before = await running(d, 2);
    const guids = new Set(before.map((a) => a.status?.instanceGuid));
    flaky!.pauseHeartbeat();
    await eventually(
      async () => expect((await instancesOf(d)).filter((a) => a.status?.presence === 'SUSPECT')).toHaveLength(2),
      20_000,
    );
    flaky!.resumeHeartbeat();
    await flaky!.renew();
    const after = await running(d, 2);
    expect(new Set(after.map((a) => a.status?.instanceGuid))).toEqual(guids); // the same containers, not restarts
    await eventually(async () => expect(await instancesOf(d)).toHaveLength(2));
  }, 60_000);
});
