// End to end with real containers: the controllers on the local control plane, and a cell agent (rep +
// executor) running runc containers from a busybox-static rootfs with CNI networking on this machine.
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RuncBackend } from '../../src/cell-agent/backends/runc.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../../src/crds/models.ts';
import { placementPatch } from '../../src/lifecycle/names.ts';
import { refOf } from '../../src/lib/resources.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { kubectl } from '../support/kube.ts';
import { deleteLink, hostPortOf, runcBackend, testRep } from '../support/runc-cell.ts';
import { stateOf } from '../../src/lifecycle/actual-lrp.ts';

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

/** The backend of this file's cell (a restarted agent on this host builds the same: new object, same state). */
const cellBackend = () =>
  runcBackend({
    stateDir: path.join(dir, 'state'),
    idPrefix: prefix,
    diskCheckIntervalMs: 500,
    networkName: `e2e-${process.pid}`,
    bridge,
    subnet: 233,
    ipamDataDir: path.join(dir, 'ipam'),
  });
const cellRep = (backend: RuncBackend) =>
  testRep(env, backend, { cellId: `e2e-cell-${process.pid}`, livenessIntervalMs: 500 });

beforeAll(async () => {
  rep = cellRep(cellBackend());
  await rep.start();
}, 120_000);

afterAll(async () => {
  await rep.stop();
  deleteLink(bridge);
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
      const hostPort = hostPortOf(a);
      expect(hostPort).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${hostPort}/`);
      expect(await res.text()).toBe('hello from a runc container\n');
    }
    // A container of an instance that reported RUNNING exists; one it replaced may still be on its way out.
    await eventually(() => expect(ours()).toHaveLength(3), 30_000);

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
    // Whichever notices first: the process's exit, or the liveness check that no longer gets an answer.
    expect(restarted.status?.crashReason).toMatch(/Exited with status|exited|Instance became unhealthy/);
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
    const backend2 = runcBackend({
      stateDir: path.join(dir, 'state2'),
      idPrefix: prefix,
      networkName: `e2e2-${process.pid}`,
      bridge: `${bridge}b`,
      subnet: 232,
      ipamDataDir: path.join(dir, 'ipam2'),
    });
    const rep2 = testRep(env, backend2, { cellId: `e2e-cell2-${process.pid}`, zone: 'z2' });
    await rep2.start();
    try {
      // Both cells in the auction's view before the work arrives (their presence reaches the leader by a watch).
      await eventually(
        () =>
          expect(env.manager.presentCells()).toEqual(
            expect.arrayContaining([`e2e-cell-${process.pid}`, `e2e-cell2-${process.pid}`]),
          ),
        30_000,
      );
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
      deleteLink(`${bridge}b`);
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

  it('downloads a tarball served on loopback into the container, and fails a timeout action on time', async () => {
    // The app's "droplet": a gzipped tar with one file, served by the test on 127.0.0.1.
    const src = path.join(dir, 'droplet');
    mkdirSync(src, { recursive: true });
    writeFileSync(path.join(src, 'hello.txt'), 'hello from a download');
    const tgz = execFileSync('tar', ['-czf', '-', '-C', src, '.']);
    const server = createServer((_req, res) => res.end(tgz));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const { port } = server.address() as AddressInfo;
    const task = (name: string, action: ITask['spec']['action']): Omit<ITask, 'apiVersion' | 'kind'> => ({
      metadata: { name, namespace: env.ns },
      spec: {
        taskGuid: name,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        resultFile: '/tmp/result',
        action,
      },
    });
    const done = (name: string) =>
      eventually(async () => {
        const t = await client.get('Task', env.ns, name);
        expect(t.status?.state).toBe('Completed');
        return t;
      }, 60_000);
    try {
      await client.create(
        'Task',
        task('fetch', {
          serial: {
            actions: [
              { download: { from: `http://127.0.0.1:${port}/droplet.tgz`, to: '/home/vcap/app', user: 'root' } },
              { run: { path: '/bin/sh', args: ['-c', 'cat /home/vcap/app/hello.txt > /tmp/result'], user: 'root' } },
            ],
          },
        }),
      );
      expect((await done('fetch')).status).toMatchObject({ failed: false, result: 'hello from a download' });

      const started = Date.now();
      await client.create(
        'Task',
        task('slow', {
          timeout: { timeoutMs: 1000, action: { run: { path: '/bin/sleep', args: ['60'], user: 'root' } } },
        }),
      );
      const slow = await done('slow');
      expect(slow.status?.failed).toBe(true);
      expect(slow.status?.failureReason).toMatch(/exceeded 1s timeout/);
      // On time: well before the 60 s sleep would have ended (the rest is placement and container start-up).
      expect(Date.now() - started).toBeLessThan(30_000);
      await eventually(() => expect(ours()).toHaveLength(0), 30_000);
    } finally {
      server.close();
    }
  }, 120_000);
});

describe('runc end to end: restarts, leftovers, capacity, bulk sync', () => {
  const runcRoot = path.join(dir, 'state', 'runc');
  /** Host pid and start time (clock ticks since boot) of the httpd in an instance's container. */
  const httpdOf = async (backend: RuncBackend, guid: string) => {
    const c = await backend.lookup(guid);
    const [p] = (await c!.processes!()).filter((r) => r.tag === 'action' && r.exitStatus === undefined);
    const stat = readFileSync(`/proc/${p!.pid}/stat`, 'utf8');
    return { pid: p!.pid, started: stat.slice(stat.lastIndexOf(')') + 2).split(' ')[19] };
  };
  const answer = async (a: IActualLRP) => {
    return (await fetch(`http://127.0.0.1:${hostPortOf(a)}/`, { signal: AbortSignal.timeout(2000) })).text();
  };
  /** What a deleted container could leave behind on this host. */
  const leftovers = () => ({
    runc: ours(),
    mounts: readFileSync('/proc/mounts', 'utf8')
      .split('\n')
      .filter((l) => l.includes(path.join(dir, 'state', 'bundles'))),
    netns: execFileSync('ip', ['netns', 'list'], { encoding: 'utf8' })
      .split('\n')
      .filter((l) => l.startsWith(prefix)),
    veths: execFileSync('ip', ['-o', 'link', 'show', 'master', bridge], { encoding: 'utf8' }).trim(),
    cgroups: ['memory', 'pids', 'cpu', 'cpuacct', ''].flatMap((c) => {
      try {
        return readdirSync(path.join('/sys/fs/cgroup', c)).filter((e) => e.startsWith(prefix));
      } catch {
        return [];
      }
    }),
  });

  it('an agent restarted mid-run re-adopts its containers without restarting them, and leaves nothing after delete', async () => {
    await client.create('DesiredLRP', web(2));
    const before = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(2);
      return all.sort((x, y) => x.spec.index - y.spec.index);
    }, 60_000);
    let backend = rep.backend as RuncBackend;
    const httpd = await Promise.all(before.map((a) => httpdOf(backend, a.status!.instanceGuid!)));
    // A task that waits for a go signal, running when the agent goes away.
    await client.create('Task', {
      metadata: { name: 'slow', namespace: env.ns },
      spec: {
        taskGuid: 'slow',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        resultFile: '/tmp/result',
        action: {
          run: {
            path: '/bin/sh',
            args: [
              '-c',
              'while [ ! -e /tmp/go ]; do sleep 0.1; done; echo -n finished after the restart > /tmp/result',
            ],
            user: 'root',
          },
        },
      },
    });
    const slow = await eventually(async () => {
      const t = await client.get('Task', env.ns, 'slow');
      expect(t.status?.state).toBe('Running');
      const c = await backend.lookup(`task-${t.metadata.uid}`);
      expect((await c?.processes?.())?.filter((p) => p.tag === 'action')).toHaveLength(1);
      return t;
    }, 60_000);

    // The agent goes away (an upgrade, a crash): its containers keep serving.
    await rep.stop({ leaveContainers: true });
    for (const a of before) expect(await answer(a)).toBe('hello from a runc container\n');

    backend = cellBackend();
    rep = cellRep(backend);
    await rep.start();
    const after = (await instances()).sort((x, y) => x.spec.index - y.spec.index);
    expect(after.map((a) => [a.status?.state, a.status?.instanceGuid])).toEqual(
      before.map((a) => ['RUNNING', a.status?.instanceGuid]),
    );
    expect(await Promise.all(after.map((a) => httpdOf(backend, a.status!.instanceGuid!)))).toEqual(httpd);
    for (const a of after) expect(await answer(a)).toBe('hello from a runc container\n');
    expect(ours()).toHaveLength(3);
    // The re-adopted task finishes and reports its result.
    execFileSync('runc', ['--root', runcRoot, 'exec', `${prefix}task-${slow.metadata.uid}`, 'touch', '/tmp/go']);
    const done = await eventually(async () => {
      const t = await client.get('Task', env.ns, 'slow');
      expect(t.status?.state).toBe('Completed');
      return t;
    }, 30_000);
    expect(done.status).toMatchObject({ failed: false, result: 'finished after the restart' });
    await eventually(() => expect(ours()).toHaveLength(2), 30_000);

    // Its health checks run again: an adopted instance whose app stops answering is crashed and restarted.
    execFileSync('runc', [
      '--root',
      runcRoot,
      'exec',
      `${prefix}${after[0]!.status!.instanceGuid}`,
      'killall',
      'httpd',
    ]);
    const restarted = await eventually(async () => {
      const a = await client.get('ActualLRP', env.ns, after[0]!.metadata.name!);
      expect(a.status).toMatchObject({ state: 'RUNNING', crashCount: 1 });
      return a;
    }, 60_000);
    expect(restarted.status?.instanceGuid).not.toBe(after[0]!.status?.instanceGuid);
    const second = await client.get('ActualLRP', env.ns, after[1]!.metadata.name!);
    expect(second.status?.instanceGuid).toBe(after[1]!.status?.instanceGuid); // untouched

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(
      () => expect(leftovers()).toEqual({ runc: [], mounts: [], netns: [], veths: '', cgroups: [] }),
      30_000,
    );
  }, 180_000);

  it('destroys an orphaned container on bulk sync', async () => {
    const backend = rep.backend as RuncBackend;
    await backend.create({ handle: 'nobody-asked-for-this', properties: { 'diego.kind': 'lrp' } });
    expect(ours()).toContain(`${prefix}nobody-asked-for-this`);
    await rep.syncNow();
    expect(ours()).not.toContain(`${prefix}nobody-asked-for-this`);
  }, 60_000);

  it('hands work that does not fit back to the auction, which places it on another cell', async () => {
    const tinyBackend = new RuncBackend({ stateDir: path.join(dir, 'tiny'), idPrefix: prefix });
    const tinyId = `e2e-tiny-${process.pid}`;
    const bigCell = cellObjectName(`e2e-cell-${process.pid}`);
    const tiny = new Rep({
      kc: env.kc,
      cellId: tinyId,
      zone: 'z1',
      capacity: { memoryMb: 128, diskMb: 1024, containers: 4 },
      stacks: ['busybox'],
      backend: tinyBackend,
      log: env.log,
      systemNamespace: env.systemNamespace,
      startupIntervalMs: 200,
    });
    await tiny.start();
    // The controllers must know the tiny cell is present, or they re-auction work placed on it as on a lost cell.
    await eventually(() => expect(env.manager.presentCells()).toContain(tinyId), 30_000);
    let stopped = false;
    const stopTiny = async () => {
      if (!stopped) await tiny.stop();
      stopped = true;
    };
    try {
      // A task placed on the tiny cell by a stale view (as a previous auctioneer might): rejected, then run elsewhere.
      await client.create('Task', {
        metadata: { name: 'big-task', namespace: env.ns },
        spec: {
          taskGuid: 'big-task',
          domain: 'cf-tasks',
          rootFs: 'preloaded:busybox',
          memoryMb: 256,
          cellId: tinyId,
          action: { run: { path: '/bin/sh', args: ['-c', 'echo done'], user: 'root' } },
        },
      });
      const task = await eventually(async () => {
        const t = await client.get('Task', env.ns, 'big-task');
        expect(t.status?.state).toBe('Completed');
        return t;
      }, 60_000);
      expect(task.status).toMatchObject({
        failed: false,
        rejectionCount: 1,
        rejectionReason: 'insufficient resources: memory',
      });

      // An instance the auction could not place, written onto the tiny cell: handed back with the reason.
      await client.create('DesiredLRP', { ...web(1), spec: { ...web(1).spec, memoryMb: 256, placementTags: ['big'] } });
      const unplaced = await eventually(async () => {
        const [a] = await instances();
        expect(a?.status?.placementError).toMatch(/placement tag/);
        return a!;
      }, 30_000);
      await eventually(async () => {
        const a = await client.get('ActualLRP', env.ns, unplaced.metadata.name!);
        await client.patch('ActualLRP', refOf(a), placementPatch(tinyId));
      }, 10_000);
      await eventually(async () => {
        const a = await client.get('ActualLRP', env.ns, unplaced.metadata.name!);
        expect(a.spec.cellId ?? '').toBe('');
        expect(stateOf(a)).toBe('UNCLAIMED');
      }, 30_000);
      // Why, as kubectl describe shows it (the placement error itself is soon the auction's again: no cell has the tag).
      await eventually(async () => {
        const described = await kubectl(['describe', '-n', env.ns, 'actuallrp', unplaced.metadata.name!]);
        expect(described.stdout).toMatch(
          new RegExp(
            `Rejected\\s+.*cell ${tinyId} cannot run it: insufficient resources: memory; placing it elsewhere`,
          ),
        );
      }, 30_000);
      expect(await tinyBackend.list()).toEqual([]);
      // Once the big cell offers the tag, the auction places the instance there and it runs.
      await client.patch('Cell', { name: bigCell }, { spec: { placementTags: ['big'] } });
      await eventually(async () => {
        const [a] = await instances();
        expect(a?.status?.state).toBe('RUNNING');
        expect(a?.status?.cellId).toBe(`e2e-cell-${process.pid}`);
      }, 60_000);
    } finally {
      await stopTiny();
      await client.patch('Cell', { name: bigCell }, { spec: { placementTags: null } });
    }
  }, 180_000);
  it('runs the legacy monitor action, toggles routable with readiness checks, and crashes over the disk limit', async () => {
    const exec = (guid: string, script: string) =>
      execFileSync('runc', ['--root', runcRoot, 'exec', `${prefix}${guid}`, '/bin/sh', '-c', script]);
    const monitored = web(1);
    monitored.spec.action = {
      run: { path: '/bin/sh', args: ['-c', 'touch /tmp/healthy; exec httpd -f -p 8080 -h /www'], user: 'root' },
    };
    monitored.spec.monitor = { run: { path: '/bin/sh', args: ['-c', 'test -e /tmp/healthy'], user: 'root' } };
    monitored.spec.checkDefinition = {
      readinessChecks: [{ httpCheck: { port: 8080, path: '/ready', intervalMs: 300 } }],
    };
    await client.create('DesiredLRP', monitored);
    const running = await eventually(async () => {
      const [a] = await instances();
      expect(a?.status).toMatchObject({ state: 'RUNNING', routable: false });
      return a!;
    }, 60_000);
    const guid = running.status!.instanceGuid!;
    exec(guid, 'echo ok > /www/ready');
    await eventually(async () => expect((await instances())[0]?.status?.routable).toBe(true), 30_000);
    exec(guid, 'rm /www/ready');
    await eventually(async () => expect((await instances())[0]?.status?.routable).toBe(false), 30_000);
    expect((await instances())[0]?.status).toMatchObject({ state: 'RUNNING', instanceGuid: guid });
    exec(guid, 'rm /tmp/healthy'); // the monitor action fails from now on
    const crashed = await eventually(async () => {
      const [a] = await instances();
      expect(a?.status?.crashCount).toBe(1);
      return a!;
    }, 60_000);
    expect(crashed.status?.crashReason).toMatch(/^Instance became unhealthy/);
    // kubectl describe says so: the cell's HealthCheckFailed, and the converger's Crashed with the restart.
    await eventually(async () => {
      const described = (await kubectl(['describe', '-n', env.ns, 'desiredlrp', 'web'])).stdout.replace(/\s+/g, ' ');
      expect(described).toMatch(/Warning HealthCheckFailed .*instance 0 on cell \S+: Instance became unhealthy/);
      expect(described).toMatch(
        /Warning Crashed .*instance 0 on cell \S+ crashed: Instance became unhealthy.*crash count 1; restarting now/,
      );
    }, 30_000);
    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);

    const writer = web(1);
    writer.spec.diskMb = 2;
    writer.spec.action = {
      run: { path: '/bin/sh', args: ['-c', 'dd if=/dev/zero of=/big bs=1M count=4; exec sleep 600'], user: 'root' },
    };
    writer.spec.checkDefinition = undefined;
    await client.create('DesiredLRP', writer);
    const full = await eventually(async () => {
      const [a] = await instances();
      expect(a?.status?.crashCount).toBe(1);
      return a!;
    }, 60_000);
    expect(full.status?.crashReason).toMatch(/disk quota exceeded: \d+ MB written, the limit is 2 MB/);
  }, 180_000);
});
