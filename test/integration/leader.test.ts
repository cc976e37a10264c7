// Leader election of the controllers (Diego keeps one active BBS/auctioneer with Locket locks): one active
// manager, failover when the leader dies without releasing its lease, and no double placement meanwhile.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Manager } from '../../src/controllers/manager.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { eventually } from '../support/eventually.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';
import { SimCell } from '../support/sim-cell.ts';

const kc = testKubeConfig();
const client = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const systemNamespace = `diego-sys-${randomBytes(3).toString('hex')}`;
let ns = '';
const managers: Manager[] = [];
const cells: SimCell[] = [];

beforeAll(async () => {
  ns = await createNamespace(kc, 'leader');
});
afterAll(async () => {
  await Promise.all(managers.map((m) => m.stop()));
  await Promise.all(cells.map((c) => c.stop()));
  await deleteNamespace(kc, ns);
  await deleteNamespace(kc, systemNamespace);
});

const manager = (identity: string) => {
  const m = new Manager({ kc, log, systemNamespace, leaderElection: true, identity, leaseDurationMs: 3000 });
  managers.push(m);
  return m;
};

describe('leader election', () => {
  it('fails over to the standby when the leader dies, without placing anything twice', async () => {
    const a = manager('replica-a');
    await a.start();
    await eventually(() => expect(a.isLeader).toBe(true));
    const b = manager('replica-b');
    await b.start();
    cells.push(
      ...(await Promise.all(
        [0, 1, 2].map((i) => new SimCell(kc, { namespace: systemNamespace, cellId: `lead-${i}` }).start()),
      )),
    );
    expect(b.isLeader).toBe(false);

    await client.create('DesiredLRP', {
      metadata: { name: 'busy', namespace: ns },
      spec: {
        processGuid: 'busy',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 60,
        memoryMb: 16,
        action: { run: { path: '/bin/app', user: 'root' } },
      },
    });
    // Kill the leader while work is flowing: some instances placed, others not yet.
    await eventually(async () => {
      const placed = (await client.list('ActualLRP', { namespace: ns })).filter((x) => x.spec.cellId);
      expect(placed.length).toBeGreaterThan(0);
    });
    const killedAt = Date.now();
    await a.stop({ releaseLease: false });
    await eventually(() => expect(b.isLeader).toBe(true), 20_000, 50);
    const failover = Date.now() - killedAt;
    expect(failover).toBeLessThan(15_000); // Diego's lock TTL

    await eventually(async () => {
      const all = await client.list('ActualLRP', { namespace: ns });
      expect(all.filter((x) => x.status?.state === 'RUNNING')).toHaveLength(60);
    }, 30_000);
    const claims = new Map<string, number>();
    for (const c of cells) for (const [k, n] of c.claims) claims.set(k, (claims.get(k) ?? 0) + n);
    expect(claims.size).toBe(60);
    expect([...claims.values()].every((n) => n === 1)).toBe(true);
    expect(cells.reduce((n, c) => n + c.containers.size, 0)).toBe(60);
    log.info({ failoverMs: failover }, 'failover');
  }, 60_000);
});
