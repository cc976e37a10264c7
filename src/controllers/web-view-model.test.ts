import { describe, expect, it } from 'vitest';
import type { IActualLRP, ICell, IDesiredLRP, ITask } from '../crds/models.ts';
import { RecentDecisions, type AuctionDecision } from './auction-decisions.ts';
import { buildWebView, standbyView, type WebViewInput } from './web-view-model.ts';

const cell = (cellId: string, zone: string, extra: Partial<ICell['status']> = {}): ICell =>
  ({
    metadata: { name: cellId },
    spec: { cellId, zone, capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 } },
    status: { available: { memoryMb: 512, diskMb: 4096, containers: 8 }, ...extra },
  }) as unknown as ICell;

const app = (name: string, uid: string, instances: number, memoryMb = 128): IDesiredLRP =>
  ({
    metadata: { name, namespace: 'ns', uid },
    spec: { processGuid: `${name}-guid`, instances, memoryMb },
  }) as unknown as IDesiredLRP;

const instance = (
  d: IDesiredLRP,
  index: number,
  cellId: string | undefined,
  status: Partial<NonNullable<IActualLRP['status']>> = {},
): IActualLRP =>
  ({
    metadata: {
      name: `${d.metadata.name}-${index}`,
      namespace: 'ns',
      labels: { 'diego.dev/desired-lrp-uid': d.metadata.uid },
    },
    spec: { processGuid: d.spec.processGuid, index, domain: 'cf-apps', ...(cellId ? { cellId } : {}) },
    status: { state: cellId ? 'RUNNING' : 'UNCLAIMED', presence: 'ORDINARY', ...status },
  }) as unknown as IActualLRP;

const task = (name: string, state: string | undefined, second: number, extra: Record<string, unknown> = {}): ITask =>
  ({
    metadata: { name, namespace: 'ns', creationTimestamp: `2026-01-01T00:00:0${second}Z` },
    spec: { taskGuid: `${name}-guid`, ...extra },
    status: state ? { state } : undefined,
  }) as unknown as ITask;

const input = (over: Partial<WebViewInput>): WebViewInput => ({
  now: Date.parse('2026-01-01T00:00:00Z'),
  leading: true,
  cells: [],
  isPresent: () => true,
  actual: [],
  desired: [],
  tasks: [],
  decisions: [],
  ...over,
});

describe('buildWebView', () => {
  const web = app('web', 'u-web', 2);
  const worker = app('worker', 'u-worker', 1, 256);

  it('groups cells by zone (sorted) and lists each instance on its cell with its app and state', () => {
    const v = buildWebView(
      input({
        cells: [cell('cell-b', 'z2'), cell('cell-a', 'z1'), cell('cell-c', 'z1')],
        desired: [web, worker],
        actual: [
          instance(web, 1, 'cell-b', { state: 'CLAIMED' }),
          instance(web, 0, 'cell-a'),
          instance(worker, 0, 'cell-a'),
        ],
      }),
    );
    expect(v.zones.map((z) => [z.zone, z.cells.map((c) => c.cellId)])).toEqual([
      ['z1', ['cell-a', 'cell-c']],
      ['z2', ['cell-b']],
    ]);
    const a = v.zones[0]!.cells[0]!;
    expect(a.instances.map((i) => [i.app, i.index, i.state])).toEqual([
      ['ns/web', 0, 'RUNNING'],
      ['ns/worker', 0, 'RUNNING'],
    ]);
    expect(a.counts).toEqual({ instances: 2, running: 2, claimed: 0, crashed: 0, tasks: 0 });
    expect(a.capacity).toEqual({ memoryMb: 1024, diskMb: 4096, containers: 10 });
    expect(a.used).toEqual({ memoryMb: 384, diskMb: 0, containers: 2 });
    expect(v.zones[1]!.cells[0]!.instances[0]).toMatchObject({ app: 'ns/web', index: 1, state: 'CLAIMED' });
    expect(v.totals).toMatchObject({ cells: 3, presentCells: 3, apps: 2, instances: 3, running: 2, claimed: 1 });
  });

  it('shows unplaced instances apart, with their placement error', () => {
    const v = buildWebView(
      input({
        cells: [cell('cell-a', 'z1')],
        desired: [web],
        actual: [instance(web, 0, undefined, { placementError: 'insufficient resources: memory' })],
      }),
    );
    expect(v.unplaced).toEqual([
      expect.objectContaining({
        app: 'ns/web',
        index: 0,
        state: 'UNCLAIMED',
        placementError: 'insufficient resources: memory',
      }),
    ]);
    expect(v.totals.unclaimed).toBe(1);
  });

  it('lists crashing apps: crashed instances first, with the highest crash count and its reason', () => {
    const v = buildWebView(
      input({
        cells: [cell('cell-a', 'z1')],
        desired: [web, worker],
        actual: [
          instance(web, 0, 'cell-a', { state: 'CRASHED', crashCount: 3, crashReason: 'Exited with status 1' }),
          instance(web, 1, 'cell-a', { crashCount: 1 }),
          instance(worker, 0, 'cell-a', { crashCount: 5, crashReason: 'OOM' }),
        ],
      }),
    );
    expect(v.crashing).toEqual([
      {
        app: 'ns/web',
        processGuid: 'web-guid',
        instances: 2,
        crashed: 1,
        crashCount: 3,
        lastCrashReason: 'Exited with status 1',
      },
      { app: 'ns/worker', processGuid: 'worker-guid', instances: 1, crashed: 0, crashCount: 5, lastCrashReason: 'OOM' },
    ]);
    expect(v.zones[0]!.cells[0]!.counts.crashed).toBe(1);
    expect(v.zones[0]!.cells[0]!.used).toEqual({ memoryMb: 384, diskMb: 0, containers: 2 }); // a crash frees its share
  });

  it('lists pending tasks (oldest first) and puts running tasks on their cell', () => {
    const v = buildWebView(
      input({
        cells: [cell('cell-a', 'z1')],
        tasks: [
          task('t-placed', 'Pending', 2, { cellId: 'cell-a' }),
          task('t1', undefined, 1),
          task('t22', 'Running', 0, { cellId: 'cell-a' }),
          task('t333', 'Completed', 0),
        ],
      }),
    );
    expect(v.pendingTasks.map((t) => [t.key, t.cellId])).toEqual([
      ['ns/t1', undefined],
      ['ns/t-placed', 'cell-a'],
    ]);
    expect(v.zones[0]!.cells[0]!.tasks.map((t) => t.key)).toEqual(['ns/t22']);
    expect(v.totals).toMatchObject({ pendingTasks: 2, runningTasks: 1 });
  });

  it('shows a cell that is gone but still named by instances, and marks absent and evacuating cells', () => {
    const v = buildWebView(
      input({
        cells: [cell('cell-a', 'z1', { evacuating: true })],
        isPresent: (id) => id !== 'cell-a',
        desired: [web],
        actual: [instance(web, 0, 'cell-lost', { presence: 'SUSPECT' })],
      }),
    );
    const all = v.zones.flatMap((z) => z.cells);
    expect(all.find((c) => c.cellId === 'cell-a')).toMatchObject({ present: false, evacuating: true, unknown: false });
    expect(all.find((c) => c.cellId === 'cell-lost')).toMatchObject({ unknown: true, zone: '' });
    expect(v.totals.presentCells).toBe(1);
  });

  it('bounds every list but keeps exact counts', () => {
    const big = app('big', 'u-big', 50);
    const v = buildWebView(
      input({
        cells: [cell('cell-a', 'z1')],
        desired: [big],
        actual: Array.from({ length: 50 }, (_, i) => instance(big, i, i < 30 ? 'cell-a' : undefined)),
      }),
      { instancesPerCell: 10, unplaced: 5, crashingApps: 1, pendingTasks: 1, decisions: 1 },
    );
    const a = v.zones[0]!.cells[0]!;
    expect(a.instances).toHaveLength(10);
    expect(a.counts.instances).toBe(30);
    expect(v.unplaced).toHaveLength(5);
    expect(v.totals.instances).toBe(50);
  });

  it('renders decisions newest first with the winner and its score, the next best cells, or the placement error', () => {
    const rec = new RecentDecisions(2);
    const explanation = {
      cellsConsidered: 3,
      filteredOut: { rootfs: 0, volumeDrivers: 0, placementTags: 1, resources: 0 },
    };
    const d = (i: number, placed: boolean): AuctionDecision => ({
      at: Date.parse('2026-01-01T00:00:00Z') + i,
      kind: 'lrp',
      key: `ns/web-${i}`,
      processGuid: 'web-guid',
      index: i,
      ...(placed ? { cellId: 'cell-a', zone: 'z1', score: 0.5 } : { placementError: 'insufficient resources' }),
      explanation,
    });
    rec.record(d(0, true));
    rec.record({
      ...d(1, true),
      explanation: { ...explanation, runnersUp: [{ cellId: 'cell-b', zone: 'z1', score: 0.75 }] },
    });
    rec.record(d(2, false));
    const v = buildWebView(input({ decisions: rec.list() }));
    expect(v.decisions).toEqual([
      expect.objectContaining({ key: 'ns/web-2', work: 'web-guid/2', placementError: 'insufficient resources' }),
      expect.objectContaining({
        key: 'ns/web-1',
        cellId: 'cell-a',
        zone: 'z1',
        score: 0.5,
        runnersUp: [{ cellId: 'cell-b', score: 0.75 }],
        cellsConsidered: 3,
      }),
    ]);
    expect(v.decisions[0]!.runnersUp).toBeUndefined();
    expect(v.decisions[0]!.cellId).toBeUndefined();
  });

  it('a standby shows no cells, says it does not lead, and keeps the decisions it made while it led', () => {
    const rec = new RecentDecisions();
    rec.record({
      at: 0,
      kind: 'task',
      key: 'ns/t',
      taskGuid: 't-guid',
      cellId: 'c',
      zone: 'z',
      score: 1,
      explanation: { cellsConsidered: 1, filteredOut: { rootfs: 0, volumeDrivers: 0, placementTags: 0, resources: 0 } },
    });
    const v = standbyView(0, rec.list());
    expect(v.leading).toBe(false);
    expect(v.zones).toEqual([]);
    expect(v.decisions.map((d) => d.work)).toEqual(['t-guid']);
  });
});

describe('RecentDecisions', () => {
  it('keeps the newest `capacity` decisions, newest first, and tells listeners', () => {
    const rec = new RecentDecisions(3);
    let told = 0;
    const off = rec.onRecord(() => told++);
    const e = { cellsConsidered: 0, filteredOut: { rootfs: 0, volumeDrivers: 0, placementTags: 0, resources: 0 } };
    for (let i = 0; i < 5; i++) rec.record({ at: i, kind: 'lrp', key: `k${i}`, explanation: e });
    expect(rec.list().map((d) => d.key)).toEqual(['k4', 'k3', 'k2']);
    expect(told).toBe(5);
    off();
    rec.record({ at: 5, kind: 'lrp', key: 'k5', explanation: e });
    expect(told).toBe(5);
    expect(new RecentDecisions(3).list()).toEqual([]);
  });
});
