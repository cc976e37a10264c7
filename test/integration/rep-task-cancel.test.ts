// A task cancelled (or deleted) while it runs on a real rep: the rep stops its process and destroys its
// container, as Diego's CancelTask does, and leaves the task's status to the task controller.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { ITask } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('taskcancel', { convergeIntervalMs: 1000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'rep-task-cancel-'));
const backend = new ProcessBackend({ baseDir: path.join(dir, 'containers') });
const rep = new Rep({
  kc: env.kc,
  cellId: `task-cancel-cell-${process.pid}`,
  capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
  stacks: ['busybox'],
  backend,
  log: env.log,
  systemNamespace: env.systemNamespace,
  gracefulShutdownMs: 1000,
});
beforeAll(() => rep.start());
afterAll(async () => {
  await rep.stop();
  rmSync(dir, { recursive: true, force: true });
});

const sleeper = (name: string): Promise<ITask> =>
  client.create('Task', {
    metadata: { name, namespace: env.ns },
    spec: {
      taskGuid: `${name}-guid`,
      domain: 'cf-tasks',
      rootFs: 'preloaded:busybox',
      memoryMb: 32,
      action: { run: { path: '/bin/sh', args: ['-c', 'sleep 300'], user: 'root' } },
    },
  });

const runningContainer = (t: ITask) =>
  eventually(async () => {
    const cur = await client.get('Task', env.ns, t.metadata.name!);
    expect(cur.status?.state).toBe('Running');
    expect(await backend.list()).toHaveLength(1);
  }, 30_000);

describe('rep: a running task that is cancelled or deleted', () => {
  it('stops and destroys the container of a cancelled task; the task fails as cancelled', async () => {
    const t = await sleeper('cancelled');
    await runningContainer(t);
    await client.patch('Task', { namespace: env.ns, name: t.metadata.name! }, { spec: { cancelled: true } });
    await eventually(async () => expect(await backend.list()).toEqual([]), 30_000);
    const done = await client.get('Task', env.ns, t.metadata.name!);
    expect(done.status).toMatchObject({ state: 'Completed', failed: true, failureReason: 'task was cancelled' });
  });

  it('stops and destroys the container of a task deleted while running', async () => {
    const t = await sleeper('deleted');
    await runningContainer(t);
    await client.delete('Task', { namespace: env.ns, name: t.metadata.name! });
    await eventually(async () => expect(await backend.list()).toEqual([]), 30_000);
  });
});

describe('rep: work of both kinds', () => {
  it('runs a task and an instance that share a name side by side', async () => {
    // The DesiredLRP "twin" has the instance "twin-0"; a task may be called "twin-0" too.
    const task = await sleeper('twin-0');
    await client.create('DesiredLRP', {
      metadata: { name: 'twin', namespace: env.ns },
      spec: {
        processGuid: 'twin-guid',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        instances: 1,
        action: { run: { path: '/bin/sh', args: ['-c', 'sleep 300'], user: 'root' } },
      },
    });
    await eventually(async () => {
      expect((await client.get('Task', env.ns, task.metadata.name!)).status?.state).toBe('Running');
      expect((await client.get('ActualLRP', env.ns, 'twin-0')).status?.state).toBe('RUNNING');
      expect(await backend.list()).toHaveLength(2);
    }, 30_000);
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'twin' });
    await client.delete('Task', { namespace: env.ns, name: task.metadata.name! });
    await eventually(async () => expect(await backend.list()).toEqual([]), 30_000);
  });
});
