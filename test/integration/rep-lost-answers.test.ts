// A rep whose writes land but whose answers are lost (the API server restarting mid-call, a connection reset): the
// claim of an instance, the RUNNING report and the start of a task are carried out by the API server and the rep
// hears ECONNRESET, and its first read-back fails too (the API server still down). Diego's answer: read back before
// calling it lost, and act on what is found later. Checked on the host too: the task ran exactly once, the instance
// runs in exactly one container.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ProcessBackend } from '../../src/cell-agent/backends/process.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import { eventually } from '../support/eventually.ts';
import { startFaultProxy, type FaultProxy, type ProxiedRequest } from '../support/fault-proxy.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('lostanswers', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'rep-lost-answers-'));
const backend = new ProcessBackend({ baseDir: path.join(dir, 'containers') });
const cellId = `lost-answers-${process.pid}`;
let proxy: FaultProxy;
let rep: Rep;

/** Each kind of write loses its first answer once; the GET that reads the record back right after is cut too. */
const losing = new Set(['task-start', 'lrp-claim', 'lrp-running']);
const readBacks = new Set<string>();
function fault(r: ProxiedRequest): 'lose-answer' | 'refuse' | undefined {
  const object = /\/(tasks|actuallrps)\/([^/?]+)/.exec(r.path)?.[0];
  if (r.method === 'GET' && object && !r.path.includes('watch') && readBacks.delete(object)) return 'refuse';
  if (r.method !== 'PATCH' || !r.path.includes('/status') || !object) return undefined;
  const kind = object.startsWith('/tasks/lost-start')
    ? r.body.includes('"Running"')
      ? 'task-start'
      : undefined
    : object.startsWith('/actuallrps/')
      ? r.body.includes('"CLAIMED"')
        ? 'lrp-claim'
        : r.body.includes('"RUNNING"')
          ? 'lrp-running'
          : undefined
      : undefined;
  if (!kind || !losing.has(kind)) return undefined;
  losing.delete(kind);
  readBacks.add(object);
  return 'lose-answer';
}

beforeAll(async () => {
  proxy = await startFaultProxy(env.kc, fault);
  rep = new Rep({
    kc: proxy.kc,
    cellId,
    capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
    stacks: ['busybox'],
    backend,
    log: env.log,
    systemNamespace: env.systemNamespace,
    executor: { stateDir: path.join(dir, 'executor') },
    gracefulShutdownMs: 1000,
  });
  await rep.start();
  await eventually(() => expect(env.manager.presentCells()).toContain(cellId), 30_000);
}, 60_000);

afterAll(async () => {
  await rep?.stop();
  await proxy?.close();
  rmSync(dir, { recursive: true, force: true });
});

describe('a rep whose writes land but whose answers are lost', () => {
  it('runs a task whose start it never heard back about, exactly once', async () => {
    const marker = path.join(dir, 'task-runs');
    await client.create('Task', {
      metadata: { name: 'lost-start', namespace: env.ns },
      spec: {
        taskGuid: 'lost-start',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        action: { run: { path: '/bin/sh', args: ['-c', `echo ran >> ${marker}`], user: 'root' } },
      },
    });
    const done = await eventually(async () => {
      const t = await client.get('Task', env.ns, 'lost-start');
      expect(t.status?.state).toBe('Completed');
      return t;
    }, 90_000);
    expect(proxy.lost.some((r) => r.path.includes('/tasks/lost-start/'))).toBe(true);
    expect(proxy.refused.some((r) => r.path.includes('/tasks/lost-start'))).toBe(true);
    expect(done.status).toMatchObject({ failed: false });
    expect(readFileSync(marker, 'utf8')).toBe('ran\n');
  }, 120_000);

  it('runs an instance whose claim and RUNNING report lost their answers, in one container', async () => {
    await client.create('DesiredLRP', {
      metadata: { name: 'lost-lrp', namespace: env.ns },
      spec: {
        processGuid: 'lost-lrp',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 1,
        memoryMb: 32,
        action: { run: { path: '/bin/sh', args: ['-c', 'sleep 600'], user: 'root' } },
      },
    });
    const running = await eventually(async () => {
      const [a, ...more] = await client.list('ActualLRP', { namespace: env.ns });
      expect(more).toHaveLength(0);
      expect(a?.status).toMatchObject({ state: 'RUNNING', cellId });
      return a!;
    }, 90_000);
    expect(proxy.lost.filter((r) => r.path.includes('/actuallrps/')).length).toBeGreaterThanOrEqual(2);
    // One container, the one the record names, however often the claim was made again.
    await eventually(async () => expect(await backend.list()).toEqual([running.status!.instanceGuid]), 30_000);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'lost-lrp' });
    await eventually(async () => expect(await client.list('ActualLRP', { namespace: env.ns })).toHaveLength(0), 60_000);
    await eventually(async () => expect(await backend.list()).toEqual([]), 30_000);
  }, 150_000);
});
