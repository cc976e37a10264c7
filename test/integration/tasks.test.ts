// The task lifecycle against a real API server: at most once under racing claimers, results and callbacks,
// cancellation, expiry of unresolved and unstarted tasks, and lost cells.
import { createServer, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { describe, expect, it } from 'vitest';
import { startTask } from '../../src/lifecycle/ops.ts';
import type { ITask } from '../../src/crds/models.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { SimCell, type SimCellOptions } from '../support/sim-cell.ts';

const env = useDiego('tasks', {
  convergeIntervalMs: 1000,
  task: { expireCompletedMs: 3000, expirePendingMs: 6000, kickMs: 1000 },
});
const { client, kc } = env;
const cells = env.cells;
const cell = async (opts: Partial<SimCellOptions> = {}): Promise<SimCell> => (await env.startCells(1, () => opts))[0]!;

let seq = 0;
function desireTask(spec: Partial<ITask['spec']> = {}, name = `task-${++seq}`): Promise<ITask> {
  return client.create('Task', {
    metadata: { name, namespace: env.ns },
    spec: {
      taskGuid: `${name}-guid`,
      domain: 'cf-tasks',
      rootFs: 'preloaded:busybox',
      memoryMb: 32,
      action: { run: { path: '/bin/true', user: 'root' } },
      ...spec,
    },
  });
}

const getTask = (t: ITask) => client.get('Task', env.ns, t.metadata.name!);
const state = async (t: ITask, expected: string) =>
  eventually(async () => {
    const cur = await getTask(t);
    expect(cur.status?.state).toBe(expected);
    return cur;
  });
const gone = (t: ITask, timeoutMs = 20_000) =>
  eventually(
    async () =>
      expect(
        await client.list('Task', { namespace: env.ns, fieldSelector: `metadata.name=${t.metadata.name}` }),
      ).toHaveLength(0),
    timeoutMs,
  );

describe('at most once', () => {
  it('lets exactly one of two racing claimers start a task, 40 times over', async () => {
    const rival = new DiegoClient(kc);
    // A live cell that never starts tasks itself; tasks are placed on it by hand so only our two claimers compete.
    const race = (await cell({ autoStartTasks: false })).o.cellId;
    for (let i = 0; i < 40; i++) {
      const t = await desireTask({ cellId: race });
      const pending = await state(t, 'Pending');
      const outcomes = await Promise.all([
        startTask(client, pending, race, new Date()),
        startTask(rival, pending, race, new Date()),
      ]);
      const won = (o: (typeof outcomes)[number]) => o.outcome === 'done' && o.value.shouldStart;
      expect(outcomes.filter(won), `round ${i}`).toHaveLength(1);
      // The loser lost the compare-and-swap: told so, never started, never thrown at.
      expect(outcomes.find((o) => !won(o))).toMatchObject({ outcome: 'moved-on', why: 'changed' });
      // The same cell asking again is told not to start it a second time (Diego's should_start=false).
      expect(await startTask(client, await getTask(t), race, new Date())).toMatchObject({
        outcome: 'done',
        value: { shouldStart: false },
      });
      await client.delete('Task', { namespace: env.ns, name: t.metadata.name! });
    }
  }, 120_000);
});

describe('lifecycle', () => {
  it('runs a task on a cell and keeps its result until resolved (deleted after expiry if nobody resolves it)', async () => {
    await cell({ autoComplete: { failed: false, result: 'hello from the task' } });
    const t = await desireTask();
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({ failed: false, result: 'hello from the task' });
    expect(done.status?.cellId).toBeUndefined();
    expect(done.spec.cellId).toBe(cells[0]!.o.cellId);
    expect(cells[0]!.startedTasks).toEqual([t.spec.taskGuid]);
    await gone(t); // expireCompletedMs 3 s in this suite (Diego: 120 s)
  });

  it('reports a failure reason', async () => {
    await cell({ autoComplete: { failed: true, failureReason: 'Exited with status 3' } });
    const t = await desireTask();
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({ failed: true, failureReason: 'Exited with status 3' });
  });

  it('POSTs the completion callback as BBS does, retrying 503, then deletes the task', async () => {
    const posts: { body: Record<string, unknown>; raw: string; type?: string }[] = [];
    let fail = 2;
    const server = createServer((req: IncomingMessage, res) => {
      let raw = '';
      req.on('data', (c: Buffer) => (raw += c.toString()));
      req.on('end', () => {
        posts.push({ body: JSON.parse(raw) as Record<string, unknown>, raw, type: req.headers['content-type'] });
        res.statusCode = fail-- > 0 ? 503 : 200;
        res.end();
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}/internal/v3/tasks/done`;
    try {
      await cell({ autoComplete: { failed: false, result: '42' } });
      const t = await desireTask({ completionCallbackUrl: url, annotation: 'cc-annotation' });
      await gone(t);
      expect(posts).toHaveLength(3);
      expect(posts[2]!.type).toBe('application/json');
      expect(posts[2]!.body).toMatchObject({
        task_guid: t.spec.taskGuid,
        failed: false,
        failure_reason: '',
        result: '42',
        annotation: 'cc-annotation',
      });
      const createdNs = /"created_at":(\d+)/.exec(posts[2]!.raw)![1]!;
      expect(BigInt(createdNs)).toBe(BigInt(Date.parse(String(t.metadata.creationTimestamp))) * 1_000_000n);
    } finally {
      server.close();
    }
  });

  it('cancels a running task', async () => {
    await cell(); // starts tasks, never completes them
    const t = await desireTask();
    await state(t, 'Running');
    await client.patch('Task', { namespace: env.ns, name: t.metadata.name! }, { spec: { cancelled: true } });
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({ failed: true, failureReason: 'task was cancelled' });
  });

  it('fails a running task whose cell disappears, and never runs it again', async () => {
    const c = await cell({ leaseSeconds: 2 });
    const t = await desireTask();
    await state(t, 'Running');
    c.pauseHeartbeat();
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({ failed: true, failureReason: 'cell disappeared before completion' });
    const other = await cell();
    await new Promise((r) => setTimeout(r, 1500));
    expect(other.startedTasks).toEqual([]);
  }, 40_000);

  it('fails a task that cannot be placed after 3 retries, with the auction error', async () => {
    await cell({ memoryMb: 64 });
    const t = await desireTask({ memoryMb: 4096 });
    // Capacity changes trigger retries; add and remove cells that are also too small.
    for (let i = 0; i < 4; i++) {
      const extra = await cell({ memoryMb: 64 });
      await new Promise((r) => setTimeout(r, 300));
      await extra.stop();
      cells.splice(cells.indexOf(extra), 1);
    }
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({
      failed: true,
      failureReason: 'insufficient resources: memory',
      rejectionCount: 4,
    });
  }, 40_000);

  it('fails a task not started within the time limit', async () => {
    await cell({ autoStartTasks: false }); // places it, never starts it
    const t = await desireTask();
    const done = await state(t, 'Completed');
    expect(done.status).toMatchObject({ failed: true, failureReason: 'not started within time limit' });
  }, 30_000);
});
