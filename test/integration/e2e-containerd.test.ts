// End to end with containerd: the controllers on the local control plane, a private containerd
// (test/support/containerd.ts), a loopback OCI registry serving a busybox image, and a cell agent whose backend
// is containerd with CNI networking. A DesiredLRP whose rootFs is docker://127.0.0.1:<port>/busybox:latest is
// placed on that cell (the only one advertising the docker provider), pulled, run and health-checked.
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { ContainerdBackend } from '../../src/cell-agent/backends/containerd.ts';
import { buildOciImage } from '../../src/cell-agent/backends/oci-image.ts';
import { ensureBusyboxRootfs } from '../../src/cell-agent/backends/rootfs.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { Rep } from '../../src/cell-agent/rep.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../../src/crds/models.ts';
import { containerdUnavailable, startContainerd, type TestContainerd } from '../support/containerd.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { startRegistry, type TestRegistry } from '../support/oci-registry.ts';
import { deleteLink, hostPortOf, testRep } from '../support/runc-cell.ts';

const unavailable = containerdUnavailable();
// Like the runc tests, these need root and the Debian packages `make test` installs: fail loudly, never skip.
if (unavailable)
  throw new Error(
    `the containerd end-to-end test cannot run here: ${unavailable} (run it as root after hack/install-deps.sh)`,
  );

describe('containerd end to end', () => {
  const env = useDiego('e2e-ctrd', { convergeIntervalMs: 2000 });
  const { client } = env;
  const dir = mkdtempSync(path.join(tmpdir(), 'diego-e2e-containerd-'));
  const prefix = `e2ec${process.pid}-`;
  const bridge = `dctr${process.pid % 10000}`;
  let containerd: TestContainerd;
  let registry: TestRegistry;
  let rep: Rep;
  let backend: ContainerdBackend;

  /** The backend this cell's agent builds (a restarted agent builds the same one again). */
  const newBackend = () =>
    new ContainerdBackend({
      address: containerd.address,
      snapshotter: containerd.snapshotter,
      stateDir: path.join(dir, 'state'),
      idPrefix: prefix,
      network: {
        networkName: `e2ec-${process.pid}`,
        bridge,
        subnet: `10.229.${process.pid % 250}.0/24`,
        ipamDataDir: path.join(dir, 'ipam'),
      },
    });
  const newRep = (b: ContainerdBackend) =>
    testRep(env, b, { cellId: `e2e-containerd-${process.pid}`, rootfsProviders: ['docker'], livenessIntervalMs: 500 });

  /** Our containers, as containerd lists them. */
  const ours = () =>
    containerd
      .ctr('diego', 'containers', 'ls', '-q')
      .split('\n')
      .filter((id) => id.startsWith(prefix));

  beforeAll(async () => {
    containerd = await startContainerd();
    registry = await startRegistry();
    registry.add('busybox', 'latest', await buildOciImage(await ensureBusyboxRootfs()));
    backend = newBackend();
    rep = newRep(backend);
    await rep.start();
  }, 120_000);

  afterAll(async () => {
    await rep?.stop();
    await registry?.close();
    await containerd?.stop();
    deleteLink(bridge);
    rmSync(dir, { recursive: true, force: true });
  }, 60_000);

  const web = (instances: number): Omit<IDesiredLRP, 'apiVersion' | 'kind'> => ({
    metadata: { name: 'web', namespace: env.ns },
    spec: {
      processGuid: 'web',
      domain: 'cf-apps',
      rootFs: `docker://${registry.host}/busybox:latest`,
      instances,
      memoryMb: 64,
      ports: [8080],
      environmentVariables: [{ name: 'GREETING', value: 'hello from a containerd container' }],
      setup: {
        run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && echo "$GREETING" > /www/index.html'], user: 'root' },
      },
      action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
      checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
    },
  });

  const instances = (): Promise<IActualLRP[]> => client.list('ActualLRP', { namespace: env.ns });

  it('runs busybox httpd from a docker:// image pulled from a registry, and leaves nothing when deleted', async () => {
    await client.create('DesiredLRP', web(2));
    const running = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(2);
      return all;
    }, 90_000);
    expect(registry.requests).toContain('HEAD /v2/busybox/manifests/latest');
    for (const a of running) {
      expect(a.status?.cellId ?? a.spec.cellId).toBe(`e2e-containerd-${process.pid}`);
      const hostPort = hostPortOf(a);
      expect(hostPort).toBeGreaterThan(0);
      const res = await fetch(`http://127.0.0.1:${hostPort}/`);
      expect(await res.text()).toBe('hello from a containerd container\n');
    }
    const ids = ours();
    expect(ids).toHaveLength(2);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(() => expect(ours()).toHaveLength(0), 30_000);
    expect(containerd.ctr('diego', 'tasks', 'ls')).not.toContain(prefix);
    // Only the image's committed layer snapshot remains: no container's writable snapshot.
    expect(containerd.ctr('diego', 'snapshots', 'ls')).not.toMatch(/Active/);
    const mountinfo = readFileSync('/proc/self/mountinfo', 'utf8');
    for (const id of ids) {
      expect(mountinfo).not.toContain(id);
      expect(existsSync(`/var/run/netns/${id}`)).toBe(false);
      expect(existsSync(`/sys/fs/cgroup/memory/${id}`)).toBe(false);
    }
    expect(execFileSync('ip', ['-o', 'link', 'show', 'master', bridge]).toString()).toBe('');
  }, 150_000);

  it('an agent restarted mid-run re-adopts its containers without restarting them', async () => {
    await client.create('DesiredLRP', web(1));
    const [before] = await eventually(async () => {
      const all = (await instances()).filter((a) => a.status?.state === 'RUNNING');
      expect(all).toHaveLength(1);
      return all;
    }, 90_000);
    const guid = before!.status!.instanceGuid!;
    const httpdPid = async (b: ContainerdBackend) => {
      const c = await b.lookup(guid);
      const live = (await c!.processes!()).filter((r) => r.tag === 'action' && r.exitStatus === undefined);
      expect(live).toHaveLength(1);
      return live[0]!.pid;
    };
    const pid = await httpdPid(backend);
    const hostPort = hostPortOf(before!);
    const answer = async () =>
      (await fetch(`http://127.0.0.1:${hostPort}/`, { signal: AbortSignal.timeout(2000) })).text();

    // The agent goes away (an upgrade, a crash): its container keeps serving.
    await rep.stop({ leaveContainers: true });
    expect(await answer()).toBe('hello from a containerd container\n');

    backend = newBackend();
    rep = newRep(backend);
    await rep.start();
    const after = await client.get('ActualLRP', env.ns, before!.metadata.name!);
    expect([after.status?.state, after.status?.instanceGuid]).toEqual(['RUNNING', guid]);
    expect(await httpdPid(backend)).toBe(pid);
    expect(await answer()).toBe('hello from a containerd container\n');

    // Its health checks run again: when its httpd dies, the adopted instance crashes and is restarted.
    process.kill(pid, 'SIGKILL');
    const restarted = await eventually(async () => {
      const a = await client.get('ActualLRP', env.ns, before!.metadata.name!);
      expect(a.status).toMatchObject({ state: 'RUNNING', crashCount: 1 });
      return a;
    }, 60_000);
    expect(restarted.status?.instanceGuid).not.toBe(guid);

    await client.delete('DesiredLRP', { namespace: env.ns, name: 'web' });
    await eventually(async () => expect(await instances()).toHaveLength(0), 30_000);
    await eventually(() => expect(ours()).toHaveLength(0), 30_000);
  }, 180_000);

  it('completes a task run in a docker:// image with its result file', async () => {
    const task: Omit<ITask, 'apiVersion' | 'kind'> = {
      metadata: { name: 'answer', namespace: env.ns },
      spec: {
        taskGuid: 'answer',
        domain: 'cf-tasks',
        rootFs: `docker://${registry.host}/busybox#latest`, // Diego's form: the fragment is the tag
        memoryMb: 32,
        resultFile: '/tmp/result',
        action: { run: { path: '/bin/sh', args: ['-c', 'echo -n "42 from containerd" > /tmp/result'], user: 'root' } },
      },
    };
    await client.create('Task', task);
    const done = await eventually(async () => {
      const t = await client.get('Task', env.ns, 'answer');
      expect(t.status?.state).toBe('Completed');
      return t;
    }, 60_000);
    expect(done.status).toMatchObject({ failed: false, result: '42 from containerd' });
    await eventually(() => expect(ours()).toHaveLength(0), 30_000);
  }, 120_000);

  it('`diego-operator cell-agent --backend containerd --containerd-address <sock>` registers a docker cell with its tags, volume drivers and the node capacity', async () => {
    const cellId = `cli-containerd-${process.pid}`;
    const repo = fileURLToPath(new URL('../..', import.meta.url));
    const output: string[] = [];
    const agent = spawn(
      process.execPath,
      [
        'src/main.ts',
        'cell-agent',
        '--kubeconfig',
        inject('kubeconfigPath'),
        '--backend',
        'containerd',
        '--containerd-address',
        containerd.address,
        '--cell-id',
        cellId,
        '--state-dir',
        path.join(dir, 'cli'),
        '--system-namespace',
        env.systemNamespace,
        '--ops-address',
        '127.0.0.1:0',
        '--placement-tags',
        'gpu,ssd',
        '--optional-placement-tags',
        'fast',
        '--volume-drivers',
        'nfsv3driver',
      ],
      { cwd: repo, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    agent.stdout.on('data', (c: Buffer) => output.push(c.toString()));
    agent.stderr.on('data', (c: Buffer) => output.push(c.toString()));
    const exited = new Promise<number | null>((resolve) => agent.once('exit', (code) => resolve(code)));
    try {
      const cell = await eventually(async () => {
        expect(agent.exitCode, output.join('')).toBeNull();
        const found = (await client.list('Cell')).find((c) => c.spec.cellId === cellId);
        expect(found).toBeDefined();
        return found!;
      }, 60_000);
      expect(cell.spec.rootfsProviders).toEqual([
        { name: 'preloaded', properties: ['busybox'] },
        { name: 'preloaded+layer', properties: ['busybox'] },
        { name: 'docker' },
      ]);
      expect(cell.spec).toMatchObject({
        placementTags: ['gpu', 'ssd'],
        optionalPlacementTags: ['fast'],
        volumeDrivers: ['nfsv3driver'],
        // --memory-mb/--disk-mb default to auto: the node's memory and the state dir's filesystem
        capacity: { memoryMb: Math.floor(totalmem() / 2 ** 20), containers: 250 },
      });
      expect(cell.spec.capacity.diskMb).toBeGreaterThan(0);
    } finally {
      agent.kill('SIGTERM');
      if ((await Promise.race([exited, sleep(30_000).then(() => 'timeout' as const)])) === 'timeout') {
        agent.kill('SIGKILL');
      }
      await client.delete('Cell', { name: cellObjectName(cellId) }).catch(() => {});
    }
  }, 120_000);
});
