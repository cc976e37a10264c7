// End to end with real containers: the controllers on the local control plane, and a cell agent (rep +
// executor) running runc containers from a busybox-static rootfs with CNI networking on this machine.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../../src/crds/models.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('e2e', { convergeIntervalMs: 2000 });
const { client } = env;
const dir = mkdtempSync(path.join(tmpdir(), 'diego-e2e-'));
const prefix = `e2e${process.pid}-`;
const bridge = `de2e${process.pid % 10000}`;
let rep: Rep;

const ours = () =>
  execFileSync('runc', ['--root', path.join(dir, 'state', 'runc'), 'list', '-q'], { encoding: 'utf8' })
    .split('\n')
    .filter((id) => id.startsWith(prefix));

beforeAll(async () => {
  const backend = new RuncBackend({
    stateDir: path.join(dir, 'state'),
    idPrefix: prefix,
    network: {
      networkName: `e2e-${process.pid}`,
      bridge,
      subnet: `10.233.${process.pid % 250}.0/24`,
      ipamDataDir: path.join(dir, 'ipam'),
    },
  });
  rep = new Rep({
    kc: env.kc,
    cellId: `e2e-cell-${process.pid}`,
    zone: 'z1',
    capacity: { memoryMb: 4096, diskMb: 8192, containers: 50 },
    stacks: ['busybox'],
    backend,
    log: env.log,
    systemNamespace: env.systemNamespace,
    startupIntervalMs: 200,
    gracefulShutdownMs: 2000,
  });
  await rep.start();
}, 120_000);

afterAll(async () => {
  await rep.stop();
  try {
    execFileSync('ip', ['link', 'delete', bridge], { stdio: 'ignore' });
  } catch {
    // already gone
  }
  rmSync(dir, { recursive: true, force: true });
});

const web = (instances: number): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
  metadata: { name: 'web', namespace: env.ns },
  spec: {
    processGuid: 'web',
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances,
    memoryMb: 64,
    ports: [8080],
    environmentVariables: [{ name: 'GREETING', value: 'hello from a runc container' }],
    setup: {
      run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && echo "$GREETING" > /www/index.html'], user: 'root' },
    },
    action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
    checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
  },
});

const instances = (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });

describe('runc end to end', () => {
  it('runs 3 busybox httpd instances that answer on their host ports, scales to 1, and leaves nothing when deleted', async () => {
    await client.create('DesiredLRP', web(3));
    const running = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(3);
      return all;
    }, 60_000);
    for (const a of running) {
      const hostPort = a.status?.netInfo?.ports?.find((p) => p.containerPort === 8080)?.hostPort;
      expect(hostPort).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${hostPort}/`);
      expect(await res.text()).toBe('hello from a runc container\n');
    }
    expect(ours()).toHaveLength(3);

    // Kill one instance's process inside its container: it crashes and is restarted at once (crash #1).
    const victim = running[0]!;
    execFileSync('runc', [
      '--root',
      path.join(dir, 'state', 'runc'),
      'exec',
      `${prefix}${victim.status!.instanceGuid}`,
      'killall',
      'httpd',
    ]);
    const restarted = await eventually(async () => {
      const a = await client.get('ActualLRP', env.ns, victim.metadata.name!);
      expect(a.status?.crashCount).toBe(1);
      expect(a.status?.state).toBe('RUNNING');
      return a;
    }, 60_000);
    expect(restarted.status?.crashReason).toMatch(/Exited with status|exited/);
    expect(restarted.status?.instanceGuid).not.toBe(victim.status?.instanceGuid);
    await eventually(() => expect(ours()).toHaveLength(3), 30_000);

    await client.patch('DesiredLRP', { namespace: env.ns, name: 'web' }, { spec: { instances: 1 } });
    await eventually(async () => expect(await instances()).toHaveLength(1), 30_000);
    await eventually(() => expect(ours()).toHaveLength(1), 30_000);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(() => expect(ours()).toHaveLength(0), 30_000);
  }, 120_000);

  it('splits instances between two cells in two zones', async () => {
    const backend2 = new RuncBackend({
      stateDir: path.join(dir, 'state2'),
      idPrefix: prefix,
      network: {
        networkName: `e2e2-${process.pid}`,
        bridge: `${bridge}b`,
        subnet: `10.232.${process.pid % 250}.0/24`,
        ipamDataDir: path.join(dir, 'ipam2'),
      },
    });
    const rep2 = new Rep({
      kc: env.kc,
      cellId: `e2e-cell2-${process.pid}`,
      zone: 'z2',
      capacity: { memoryMb: 4096, diskMb: 8192, containers: 50 },
      stacks: ['busybox'],
      backend: backend2,
      log: env.log,
      systemNamespace: env.systemNamespace,
      startupIntervalMs: 200,
      gracefulShutdownMs: 2000,
    });
    await rep2.start();
    try {
      await client.create('DesiredLRP', web(4));
      const all = await eventually(async () => {
        const running = (await instances()).filter((a) => a.status?.state === 'RUNNING');
        expect(running).toHaveLength(4);
        return running;
      }, 60_000);
      const perZone = (z: string) => all.filter((a) => a.status?.availabilityZone === z).length;
      expect([perZone('z1'), perZone('z2')]).toEqual([2, 2]);
      await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
      await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    } finally {
      await rep2.stop();
      try {
        execFileSync('ip', ['link', 'delete', `${bridge}b`], { stdio: 'ignore' });
      } catch {
        // already gone
      }
    }
  }, 120_000);

  it('completes a task with its result file, and reports a failing command', async () => {
    const task = (name: string, script: string, resultFile?: string): Omit<ITask, 'apiVersion' | 'kind'> => ({
      metadata: { name, namespace: env.ns },
      spec: {
        taskGuid: name,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        ...(resultFile ? { resultFile } : {}),
        action: { run: { path: '/bin/sh', args: ['-c', script], user: 'root' } },
      },
    });
    await client.create('Task', task('ok', 'echo -n "42 is the answer" > /tmp/result', '/tmp/result'));
    await client.create('Task', task('broken', 'exit 3'));
    const done = (name: string) =>
      eventually(async () => {
        const t = await client.get('Task', env.ns, name);
        expect(t.status?.state).toBe('Completed');
        return t;
      }, 60_000);
    expect((await done('ok')).status).toMatchObject({ failed: false, result: '42 is the answer' });
    const broken = await done('broken');
    expect(broken.status?.failed).toBe(true);
    expect(broken.status?.failureReason).toMatch(/Exited with status 3/);
    await eventually(() => expect(ours()).toHaveLength(0), 30_000);
  }, 120_000);
});
