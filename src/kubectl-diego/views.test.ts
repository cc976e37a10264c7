import { describe, expect, it } from 'vitest';
import type { Lease } from '../lib/lease.ts';
import { renderTable } from './output.ts';
import { actual, ago, cell, desired, NOW, presence, task } from './testing.ts';
import {
  ACTUAL_LRPS,
  actualLRPRecords,
  CELL_STATES,
  cellRecords,
  CELLS,
  desiredLRPRecords,
  DESIRED_LRPS,
  domainRecords,
  lockRecords,
  LOCKS,
  parseTaskState,
  tableRows,
  taskRecords,
} from './views.ts';

const table = <R extends object>(view: Parameters<typeof tableRows<R>>[0], records: R[], all = false) => {
  const { header, rows } = tableRows(view, records, NOW, all);
  return renderTable(header, rows);
};

describe('cells and cell states', () => {
  const cells = [
    cell(
      'cell-b',
      { zone: 'z2' },
      {
        available: { memoryMb: 0, diskMb: 1024, containers: 8 },
        lrpInstances: 2,
        tasks: 1,
        startingContainers: 1,
        evacuating: true,
      },
    ),
    cell('cell-a', { opsUrl: 'http://127.0.0.1:17008' }),
    cell('cell-c'),
  ];
  const leases = [presence('cell-a', 3), presence('cell-b', 40)];
  const records = cellRecords(cells, leases, NOW);

  it('joins each Cell to its presence Lease, by holder', () => {
    expect(records.map((r) => [r.cellId, r.presence.present])).toEqual([
      ['cell-a', true],
      ['cell-b', false],
      ['cell-c', false],
    ]);
    expect(records[0]).toMatchObject({
      zone: 'z1',
      capacity: { memoryMb: 1024, diskMb: 2048, containers: 10 },
      rootfsProviders: ['preloaded:cflinuxfs4'],
      opsUrl: 'http://127.0.0.1:17008',
      presence: { ttlSeconds: 15, renewed: ago(3) },
    });
    expect(records[2]!.presence).toEqual({ present: false });
  });

  it('prints capacity and presence (cells)', () => {
    expect(table(CELLS, records)).toBe(
      [
        'CELL     ZONE   MEMORY   DISK   CONTAINERS   ROOTFS                 PRESENCE          AGE',
        'cell-a   z1     1024     2048   10           preloaded:cflinuxfs4   renewed 3s ago    60m',
        'cell-b   z2     1024     2048   10           preloaded:cflinuxfs4   expired 40s ago   60m',
        'cell-c   z1     1024     2048   10           preloaded:cflinuxfs4   none              60m',
      ].join('\n') + '\n',
    );
  });

  it('prints free/total, instances, tasks and evacuation (cell-states)', () => {
    const out = table(CELL_STATES, records);
    const b = out.split('\n').find((l) => l.startsWith('cell-b'))!;
    expect(b.split(/\s{2,}/)).toEqual([
      'cell-b',
      'z2',
      '0/1024',
      '1024/2048',
      '8/10',
      '2',
      '1',
      '1',
      'true',
      'expired 40s ago',
    ]);
    const a = out.split('\n').find((l) => l.startsWith('cell-a'))!;
    expect(a.split(/\s{2,}/).slice(2, 5)).toEqual(['?/1024', '?/2048', '?/10']);
  });
});

describe('desired and actual LRPs', () => {
  const web = desired('web');
  const worker = desired('worker', {}, 'other');
  it('lists DesiredLRPs with their instance counts, sorted by namespace and name', () => {
    web.status = { runningInstances: 1, crashedInstances: 1 };
    const records = desiredLRPRecords([web, worker]);
    expect(records.map((r) => `${r.namespace}/${r.name}`)).toEqual(['apps/web', 'other/worker']);
    expect(records[0]).toMatchObject({
      processGuid: 'web-guid',
      instances: 2,
      running: 1,
      crashed: 1,
      logGuid: 'web-guid',
    });
    const out = table(DESIRED_LRPS, records, true);
    expect(out.split('\n')[0]).toMatch(/^NAMESPACE\s+NAME\s+PROCESS GUID\s+DOMAIN\s+INSTANCES\s+RUNNING\s+CRASHED/);
    expect(
      out
        .split('\n')[1]!
        .split(/\s{2,}/)
        .slice(0, 7),
    ).toEqual(['apps', 'web', 'web-guid', 'cf-apps', '2', '1', '1']);
  });

  const items = [
    actual(web, 1, 'cell-b', {
      state: 'CRASHED',
      crashCount: 3,
      crashReason: 'exited with status 1',
      cellId: 'cell-b',
    }),
    actual(web, 0, 'cell-a', {
      state: 'RUNNING',
      cellId: 'cell-a',
      instanceGuid: 'ig-0',
      netInfo: { address: '10.0.0.1', ports: [{ containerPort: 8080, hostPort: 61000 }] },
      since: ago(90),
    }),
    actual(web, 0, 'cell-c', { state: 'RUNNING', presence: 'EVACUATING', cellId: 'cell-c' }, 'web-0-evacuating'),
    actual(worker, 0, undefined, { placementError: 'insufficient resources: memory' }),
  ];

  it('filters by process guid and by cell, and sorts by index', () => {
    expect(actualLRPRecords(items, { processGuid: 'web-guid' }).map((r) => r.name)).toEqual([
      'web-0',
      'web-0-evacuating',
      'web-1',
    ]);
    expect(actualLRPRecords(items, { cellId: 'cell-c' }).map((r) => r.name)).toEqual(['web-0-evacuating']);
    const unplaced = actualLRPRecords(items, { processGuid: 'worker-guid' });
    expect(unplaced[0]).toMatchObject({
      state: 'UNCLAIMED',
      presence: 'ORDINARY',
      placementError: 'insufficient resources: memory',
    });
    expect(unplaced[0]!.cellId).toBeUndefined();
  });

  it('prints state, presence, cell, address and why it is not running', () => {
    const lines = table(ACTUAL_LRPS, actualLRPRecords(items)).split('\n');
    expect(lines[0]).toMatch(
      /^NAME\s+PROCESS GUID\s+INDEX\s+STATE\s+PRESENCE\s+CELL\s+ADDRESS\s+CRASHES\s+SINCE\s+DETAILS$/,
    );
    const row = (name: string) => lines.find((l) => l.startsWith(`${name} `))!.split(/\s{2,}/);
    expect(row('web-0')).toEqual([
      'web-0',
      'web-guid',
      '0',
      'RUNNING',
      'ORDINARY',
      'cell-a',
      '10.0.0.1[61000:8080]',
      '0',
      '90s',
    ]);
    expect(row('web-0-evacuating').slice(3, 6)).toEqual(['RUNNING', 'EVACUATING', 'cell-c']);
    expect(row('web-1').slice(3, 10)).toEqual([
      'CRASHED',
      'ORDINARY',
      'cell-b',
      '<none>',
      '3',
      '<none>',
      'exited with status 1',
    ]);
    expect(row('worker-0').slice(5)).toEqual(['<none>', '<none>', '0', '<none>', 'insufficient resources: memory']);
  });
});

describe('tasks', () => {
  const tasks = [
    task('b', { domain: 'other' }, { state: 'Running', cellId: 'cell-a' }),
    task('a', {}, { state: 'Completed', failed: true, failureReason: 'exit status 2' }),
    task('c'),
  ];
  it('filters by domain and by state', () => {
    expect(taskRecords(tasks, { domain: 'cf-tasks' }).map((t) => t.name)).toEqual(['a', 'c']);
    expect(taskRecords(tasks, { state: 'Pending' }).map((t) => t.name)).toEqual(['c']);
    expect(taskRecords(tasks, { state: 'Running' })[0]).toMatchObject({ name: 'b', cellId: 'cell-a', failed: false });
  });
  it('reads a state in any case, and nothing else', () => {
    expect(parseTaskState('running')).toBe('Running');
    expect(parseTaskState('RESOLVING')).toBe('Resolving');
    expect(parseTaskState('done')).toBeUndefined();
  });
});

describe('domains and locks', () => {
  const leases: Lease[] = [
    presence('cell-a', 1),
    {
      metadata: {
        name: 'bbs-domain-1',
        labels: { 'diego.dev/bbs-domain': 'true' },
        annotations: { 'diego.dev/bbs-domain': 'cf-apps' },
      },
      spec: { holderIdentity: 'bbs', leaseDurationSeconds: 120, renewTime: ago(10) },
    },
    {
      metadata: {
        name: 'bbs-domain-2',
        labels: { 'diego.dev/bbs-domain': 'true' },
        annotations: { 'diego.dev/bbs-domain': 'cf-tasks' },
      },
      spec: { holderIdentity: 'bbs', leaseDurationSeconds: 60, renewTime: ago(300) },
    },
    {
      metadata: {
        name: 'bbs-domain-3',
        labels: { 'diego.dev/bbs-domain': 'true' },
        annotations: { 'diego.dev/bbs-domain': 'forever' },
      },
      spec: { holderIdentity: 'bbs', renewTime: ago(9999) },
    },
    {
      metadata: { name: 'diego-operator-controller' },
      spec: { holderIdentity: 'host-1', leaseDurationSeconds: 15, renewTime: ago(2), acquireTime: ago(600) },
    },
    {
      metadata: { name: 'diego-operator-route-emitter' },
      spec: { holderIdentity: 'host-2', leaseDurationSeconds: 15, renewTime: ago(60) },
    },
    {
      // A lock taken through Locket (cfdot claim-lock): named by its key, not its Lease's hash name.
      metadata: {
        name: 'locket-0123456789abcdef0123',
        labels: { 'diego.dev/locket': 'true' },
        annotations: { 'diego.dev/locket-key': 'tps_watcher', 'diego.dev/locket-value': '' },
      },
      spec: { holderIdentity: 'tps-1', leaseDurationSeconds: 15, renewTime: ago(1) },
    },
  ];
  it('knows a fresh domain from a stale one (a domain without TTL never goes stale)', () => {
    expect(domainRecords(leases, NOW).map((d) => [d.domain, d.fresh, d.ttlSeconds])).toEqual([
      ['cf-apps', true, 120],
      ['cf-tasks', false, 60],
      ['forever', true, undefined],
    ]);
  });
  it('lists the other Leases as locks, held while renewed in time', () => {
    const locks = lockRecords(leases, NOW);
    expect(locks.map((l) => [l.name, l.holder, l.held])).toEqual([
      ['diego-operator-controller', 'host-1', true],
      ['diego-operator-route-emitter', 'host-2', false],
      ['tps_watcher', 'tps-1', true],
    ]);
    expect(
      table(LOCKS, locks)
        .split('\n')[1]!
        .split(/\s{2,}/),
    ).toEqual(['diego-operator-controller', 'host-1', 'true', '15s', '2s ago', '10m ago']);
  });
});
