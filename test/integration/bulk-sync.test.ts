// The rep's bulk sync against a real API server: simulated cells play the rep's claims, a process backend
// stands for the cell's containers, and one pass compares the two (src/cell-agent/bulk-sync.ts).
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { bulkSync, repBulkSyncDuration, TASK_CONTAINER_MISSING } from '../../src/cell-agent/bulk-sync.ts';
import { lrpProperties } from '../../src/cell-agent/container-tags.ts';
import type { IActualLRP, IDesiredLRP } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import type { SimCell } from '../support/sim-cell.ts';

const env = useDiego('bulk', { convergeIntervalMs: 1000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'bulk-sync-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const app = (instances: number): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name: 'app', namespace: env.ns },
  spec: {
    processGuid: 'app',
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 32,
    action: { run: { path: '/bin/true', user: 'root' } },
  },
});

const pass = (cell: SimCell, backend: ProcessBackend, busy: string[] = []) =>
  bulkSync({
    cellId: cell.o.cellId,
    backend,
    client,
    log: env.log,
    lrps: () => cell.instances(),
    tasks: () => [],
    busy: () => ({ handles: new Set(busy), keys: new Set() }),
  });

describe('bulk sync', () => {
  it('destroys orphans, keeps containers of assigned work, and sends instances without a container back to the auction', async () => {
    const [cell] = await env.startCells(1);
    const backend = new ProcessBackend({ baseDir: path.join(dir, 'c1') });
    await client.create('DesiredLRP', app(2));
    const running = await eventually(() => {
      const all = cell!.instances().filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(2);
      return all.sort((x, y) => x.spec.index - y.spec.index);
    }, 30_000);
    // Instance 0 has its container; instance 1 lost its own; two containers nobody accounts for.
    const [kept, lost] = running as [IActualLRP, IActualLRP];
    await backend.create({
      handle: kept.status!.instanceGuid!,
      properties: lrpProperties(kept, kept.status!.instanceGuid!),
    });
    await backend.create({ handle: 'orphan', properties: {} });
    await backend.create({ handle: 'being-created' });
    const before = (await repBulkSyncDuration.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;

    const result = await pass(cell!, backend, ['being-created']);

    expect(result).toEqual({
      orphansDestroyed: ['orphan'],
      lrpsMissing: [`${env.ns}/${lost.metadata.name}`],
      tasksMissing: [],
    });
    expect((await backend.list()).sort()).toEqual(['being-created', kept.status!.instanceGuid!].sort());
    // The lost instance is placed and started again (a new guid); the kept one is untouched.
    await eventually(async () => {
      const again = await client.get('ActualLRP', env.ns, lost.metadata.name!);
      expect(again.status?.state).toBe('RUNNING');
      expect(again.status?.instanceGuid).not.toBe(lost.status?.instanceGuid);
    }, 30_000);
    expect((await client.get('ActualLRP', env.ns, kept.metadata.name!)).status?.instanceGuid).toBe(
      kept.status?.instanceGuid,
    );
    const after = (await repBulkSyncDuration.get()).values.find((v) => v.metricName?.endsWith('_count'))?.value ?? 0;
    expect(after).toBe(before + 1);
  }, 60_000);

  it("fails a Running task whose container is gone with Diego's reason", async () => {
    const [cell] = await env.startCells(1, () => ({ autoStartTasks: true }));
    await client.create('Task', {
      metadata: { name: 'job', namespace: env.ns },
      spec: {
        taskGuid: 'job',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });
    const started = await eventually(async () => {
      const t = await client.get('Task', env.ns, 'job');
      expect(t.status?.state).toBe('Running');
      return t;
    }, 30_000);
    const result = await bulkSync({
      cellId: cell!.o.cellId,
      backend: new ProcessBackend({ baseDir: path.join(dir, 'c2') }),
      client,
      log: env.log,
      lrps: () => [],
      tasks: () => [started],
      busy: () => ({ handles: new Set(), keys: new Set() }),
    });
    expect(result.tasksMissing).toEqual([`${env.ns}/job`]);
    expect((await client.get('Task', env.ns, 'job')).status).toMatchObject({
      state: 'Completed',
      failed: true,
      failureReason: TASK_CONTAINER_MISSING,
    });
  }, 60_000);

  it('removes an evacuated instance whose container is gone, instead of sending it to the auction', async () => {
    const [cell] = await env.startCells(1, () => ({ evacuationPollIntervalMs: 500 }));
    await client.create('DesiredLRP', app(2));
    await eventually(() => expect(cell!.instances().filter((a) => a.status?.state === 'RUNNING')).toHaveLength(2));
    await env.startCells(1, () => ({ autoStart: false })); // the replacements wait there
    const evacuation = cell!.evacuator.evacuate();
    const copies = await eventually(() => {
      const evacuating = cell!.instances().filter((a) => a.status?.presence === 'EVACUATING');
      expect(evacuating).toHaveLength(2);
      return evacuating.sort((x, y) => x.spec.index - y.spec.index);
    });
    const [kept, lost] = copies as [IActualLRP, IActualLRP];
    const backend = new ProcessBackend({ baseDir: path.join(dir, 'c3') });
    await backend.create({ handle: kept.status!.instanceGuid!, properties: {} });

    const result = await pass(cell!, backend);

    expect(result.lrpsMissing).toEqual([]);
    const left = await client.list('ActualLRP', { namespace: env.ns });
    expect(left.filter((a) => a.status?.presence === 'EVACUATING').map((a) => a.metadata.name)).toEqual([
      kept.metadata.name,
    ]);
    expect(left.find((a) => a.metadata.name === lost.metadata.name)).toBeUndefined();
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'app' });
    await evacuation;
  }, 60_000);
});
