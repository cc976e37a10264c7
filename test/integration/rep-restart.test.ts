// A cell agent restart with the process backend (persistent): the new rep re-adopts the running instance
// without restarting it, notices its later crash, and leaves nothing once the app is deleted.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { ResultStore } from '../../src/cell-agent/results.ts';
import type { IActualLRP } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('restart', { convergeIntervalMs: 1000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'rep-restart-'));
const cellId = `restart-cell-${process.pid}`;
const backend = () => new ProcessBackend({ baseDir: path.join(dir, 'containers'), persistent: true });
const rep = (b: ProcessBackend) =>
  new Rep({
    kc: env.kc,
    cellId,
    capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
    stacks: ['busybox'],
    backend: b,
    log: env.log,
    systemNamespace: env.systemNamespace,
    startupIntervalMs: 100,
    gracefulShutdownMs: 1000,
    executor: { stateDir: path.join(dir, 'executor') },
  });
let current: Rep | undefined;
afterAll(async () => {
  await current?.stop();
  rmSync(dir, { recursive: true, force: true });
});

const instance = async (): Promise<IActualLRP | undefined> =>
  (await client.list('ActualLRP', { namespace: env.ns }))[0];

describe('rep restart (process backend)', () => {
  it('re-adopts a running instance: same guid, same process, and a later crash is handled', async () => {
    const first = backend();
    current = rep(first);
    await current.start();
    await client.create('DesiredLRP', {
      metadata: { name: 'loop', namespace: env.ns },
      spec: {
        processGuid: 'loop',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 64,
        action: { run: { path: '/bin/sh', args: ['-c', 'while true; do sleep 0.2; done'], user: 'root' } },
      },
    });
    const running = await eventually(async () => {
      const a = await instance();
      expect(a?.status?.state).toBe('RUNNING');
      return a!;
    }, 30_000);
    const guid = running.status!.instanceGuid!;
    const [proc] = await (await first.lookup(guid))!.processes!();

    await current.stop({ leaveContainers: true });
    const second = backend();
    current = rep(second);
    await current.start();
    const after = await instance();
    expect(after?.status).toMatchObject({ state: 'RUNNING', instanceGuid: guid });
    expect(after?.status?.crashCount ?? 0).toBe(running.status?.crashCount ?? 0);
    expect(await (await second.lookup(guid))!.processes!()).toEqual([proc]);

    process.kill(-proc!.pid, 'SIGKILL'); // the app dies while the new agent watches
    const crashed = await eventually(async () => {
      const a = await instance();
      expect(a?.status?.crashCount).toBe(1);
      return a!;
    }, 30_000);
    expect(crashed.status?.crashReason).toMatch(/Exited with status 137/);
    await eventually(async () => expect((await instance())?.status?.state).toBe('RUNNING'), 30_000);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'loop' });
    await eventually(async () => expect(await instance()).toBeUndefined(), 30_000);
    await eventually(async () => expect(await second.list()).toEqual([]), 30_000);
  }, 120_000);

  it("reports a task's outcome kept on disk by an agent killed after the task ended, instead of failing it", async () => {
    const first = backend();
    current = rep(first);
    await current.start();
    await client.create('Task', {
      metadata: { name: 'job', namespace: env.ns },
      spec: {
        taskGuid: `job-${process.pid}`,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 64,
        action: { run: { path: '/bin/sh', args: ['-c', 'while true; do sleep 0.2; done'], user: 'root' } },
      },
    });
    const running = await eventually(async () => {
      const [t] = await client.list('Task', { namespace: env.ns });
      expect(t?.status?.state).toBe('Running');
      return t!;
    }, 30_000);
    // The agent dies after the task's container finished and its outcome was kept, before reporting it.
    await current.stop({ leaveContainers: true });
    const handle = `task-${running.metadata.uid}`;
    await first.destroy(handle);
    await new ResultStore(path.join(dir, 'executor', 'task-outcomes')).save(handle, {
      namespace: env.ns,
      name: 'job',
      uid: running.metadata.uid ?? '',
      taskGuid: running.spec.taskGuid,
      failed: false,
      result: 'kept result',
    });
    current = rep(backend());
    await current.start();
    const done = await eventually(async () => {
      const [t] = await client.list('Task', { namespace: env.ns });
      expect(t?.status?.state).toBe('Completed');
      return t!;
    }, 30_000);
    expect(done.status).toMatchObject({ failed: false, result: 'kept result' });
    await client.delete('Task', { namespace: env.ns, name: 'job' });
  }, 120_000);
});
