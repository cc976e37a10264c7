// diego-operator installed with `helm install` into a real cluster (test/cluster/global-setup.ts): the image built by
// hack/build-image.sh, the chart's defaults (2 controller replicas with leader election, the webhook behind its
// Service with the chart's certificate, the cell agent as a privileged DaemonSet). Then what users and faults do:
// an app runs in runc containers made by the DaemonSet's pod and answers on the node's host ports; an invalid
// manifest is refused through the webhook Service; the leader's pod is killed and work goes on; the cell agent's
// pod is deleted and its successor adopts the running containers; `helm uninstall` leaves no container behind.
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import type { IActualLRP } from '../../src/crds/models.ts';
import { kubeConfigFromString, rawRequest } from '../../src/lib/kube.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import { eventually } from '../support/eventually.ts';

const run = promisify(execFile);
const repo = join(import.meta.dirname, '..', '..');
const kubeconfig = inject('clusterKubeconfigPath');
const kc = kubeConfigFromString(inject('clusterKubeconfig'));
const client = new DiegoClient(kc);
const node = inject('clusterNode');
const [repository, tag] = inject('clusterImages')
  .operator.replace(/^docker\.io\/library\//, '')
  .split(':') as [string, string];
const system = 'diego-system';
const stateDir = join(node.dir, 'cell');
const apps = 'apps';
const release = 'diego';

const helm = (...args: string[]) =>
  run(inject('clusterHelm'), [...args, `--kubeconfig=${kubeconfig}`], { cwd: repo, timeout: 600_000 });
const kubectl = (...args: string[]) =>
  run(inject('clusterKubectl'), [`--kubeconfig=${kubeconfig}`, ...args], { timeout: 120_000 });

interface Pod {
  metadata: { name: string; labels?: Record<string, string> };
  status?: { phase?: string; conditions?: { type: string; status: string }[] };
}
const pods = async (selector: string) =>
  (
    await rawRequest<{ items: Pod[] }>(kc, {
      method: 'GET',
      path: `/api/v1/namespaces/${system}/pods?labelSelector=${encodeURIComponent(selector)}`,
    })
  ).items;
const ready = (p: Pod) => p.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') ?? false;
const instances = async (guid: string) =>
  (await client.list('ActualLRP', { namespace: apps })).filter((a) => a.spec.processGuid === guid);
const running = (as: IActualLRP[]) => as.filter((a) => a.status?.state === 'RUNNING');
const hostPort = (a: IActualLRP) => a.status?.netInfo?.ports?.find((p) => p.containerPort === 8080)?.hostPort;
const leader = async () =>
  (
    await rawRequest<{ spec: { holderIdentity?: string } }>(kc, {
      method: 'GET',
      path: `/apis/coordination.k8s.io/v1/namespaces/${system}/leases/diego-operator-controller`,
    })
  ).spec.holderIdentity ?? '';

const web = (name: string, count: number) => ({
  metadata: { name, namespace: apps },
  spec: {
    processGuid: name,
    domain: 'cf-apps',
    rootFs: 'preloaded:busybox',
    instances: count,
    memoryMb: 32,
    diskMb: 64,
    ports: [8080],
    setup: { run: { path: '/bin/sh', args: ['-c', 'mkdir -p /www && hostname > /www/index.html'], user: 'root' } },
    action: { run: { path: '/bin/httpd', args: ['-f', '-p', '8080', '-h', '/www'], user: 'root' } },
    checkDefinition: { checks: [{ httpCheck: { port: 8080, path: '/' } }] },
  },
});

/** Every instance of `guid` RUNNING and answering on the node's host port, as a router would reach it. */
async function answering(guid: string, count: number, timeoutMs = 180_000): Promise<IActualLRP[]> {
  return eventually(async () => {
    const up = running(await instances(guid));
    expect(up).toHaveLength(count);
    for (const a of up) {
      expect(a.status?.netInfo?.address).toBe(node.ip);
      const res = await fetch(`http://${node.ip}:${hostPort(a)}/`, { signal: AbortSignal.timeout(5_000) });
      expect(res.status).toBe(200);
    }
    return up;
  }, timeoutMs);
}

let installSeconds = 0;
beforeAll(async () => {
  await rawRequest(kc, { method: 'POST', path: '/api/v1/namespaces', body: { metadata: { name: apps } } });
  const t0 = Date.now();
  await helm(
    'install',
    release,
    'charts/diego-operator',
    '--namespace',
    system,
    '--create-namespace',
    '--set',
    `image.repository=${repository}`,
    '--set',
    `image.tag=${tag}`,
    '--set',
    'image.pullPolicy=Never',
    // Under the node's directory, a shared mount (the state is mounted Bidirectional), as /var/lib is on systemd hosts.
    '--set',
    `cellAgent.stateDir=${stateDir}`,
    '--wait',
    '--timeout',
    '8m',
  );
  installSeconds = (Date.now() - t0) / 1000;
  console.log(`helm install → every pod Ready: ${installSeconds.toFixed(1)} s`);
}, 600_000);

let uninstalled = false;
afterAll(async () => {
  if (!uninstalled) await helm('uninstall', release, '--namespace', system, '--wait').catch(() => undefined);
});

describe('diego-operator installed with helm on a real node', () => {
  it('every pod is Ready under a real kubelet (probes, requests, securityContexts) and the node is a present Cell', async () => {
    const all = await pods(`app.kubernetes.io/instance=${release}`);
    expect(all.length).toBeGreaterThanOrEqual(3); // 2 controllers + the cell agent
    for (const p of all) expect(ready(p), p.metadata.name).toBe(true);
    await eventually(async () => {
      const cells = await client.list('Cell', { namespace: system });
      expect(cells.map((c) => c.metadata.name)).toContain(node.name);
    }, 60_000);
  });

  it("runs an app in containers made by the DaemonSet pod, answering on the node's host ports", async () => {
    const t0 = Date.now();
    await client.create('DesiredLRP', web('web', 2));
    await answering('web', 2);
    console.log(
      `apply → 2 instances RUNNING and answering through the DaemonSet: ${((Date.now() - t0) / 1000).toFixed(1)} s`,
    );
  });

  it('refuses an invalid manifest through the webhook Service', async () => {
    const bad = web('bad', 1);
    (bad.spec as Record<string, unknown>).action = { serial: { actions: [{ try: { action: { bogus: {} } } }] } };
    const err = await client.create('DesiredLRP', bad).catch((e: unknown) => e);
    const text = `${String(err)} ${JSON.stringify((err as { body?: unknown }).body ?? '')}`;
    expect(text).toContain('validate.diego.dev');
    await expect(client.get('DesiredLRP', apps, 'bad')).rejects.toThrow();
  });

  it('keeps placing after the leader controller pod is killed: the other replica takes the Lease', async () => {
    const before = await leader();
    expect(before).not.toBe('');
    const t0 = Date.now();
    await kubectl(
      '-n',
      system,
      'delete',
      'pod',
      before.replace(/-\d+$/, ''),
      '--grace-period=0',
      '--force',
      '--wait=false',
    );
    const after = await eventually(async () => {
      const now = await leader();
      expect(now).not.toBe('');
      expect(now).not.toBe(before);
      return now;
    }, 120_000);
    console.log(`leader failover between pods: ${((Date.now() - t0) / 1000).toFixed(1)} s (${before} → ${after})`);
    await client.create('DesiredLRP', web('after-failover', 1));
    await answering('after-failover', 1);
  });

  it('adopts the running containers when the cell agent is killed (-9) and the kubelet restarts it', async () => {
    const before = running(await instances('web'));
    expect(before).toHaveLength(2);
    const [agent] = await pods('app.kubernetes.io/component=cell-agent');
    const status = (p: Pod) =>
      (p.status as { containerStatuses?: { containerID?: string; restartCount: number }[] } | undefined)
        ?.containerStatuses?.[0];
    const id = status(agent!)!.containerID!.replace(/^containerd:\/\//, '');
    const { bin, socket } = inject('clusterCtr');
    await run(bin, ['--address', socket, '-n', 'k8s.io', 'tasks', 'kill', '--signal', 'SIGKILL', id]);
    await eventually(async () => {
      const [now] = await pods('app.kubernetes.io/component=cell-agent');
      expect(now!.metadata.name).toBe(agent!.metadata.name);
      expect(status(now!)!.restartCount).toBeGreaterThan(status(agent!)!.restartCount);
      expect(ready(now!)).toBe(true);
    }, 180_000);
    // The same instances (instance guids, host ports) still run and answer: adopted, not restarted.
    const after = await answering('web', 2);
    expect(after.map((a) => a.status?.instanceGuid).sort()).toEqual(before.map((a) => a.status?.instanceGuid).sort());
    expect(after.map(hostPort).sort()).toEqual(before.map(hostPort).sort());
  });

  it('uninstalls: apps deleted first leave no container, network namespace, cgroup or finalizer; the CRDs stay', async () => {
    const guids = running(await instances('web')).map((a) => a.status!.instanceGuid!);
    expect(guids.length).toBeGreaterThan(0);
    await kubectl('-n', apps, 'delete', 'desiredlrps', '--all', '--wait=true');
    await eventually(async () => expect(await client.list('ActualLRP', { namespace: apps })).toEqual([]), 120_000);
    // On the host, once the cell agent has destroyed them: nothing of the instances.
    const { readdirSync, readFileSync } = await import('node:fs');
    const runcRoot = join(stateDir, 'runc');
    const containers = () => {
      try {
        return readdirSync(runcRoot);
      } catch {
        return [];
      }
    };
    await eventually(() => {
      expect(containers()).toEqual([]);
      for (const g of guids) {
        expect(readdirSync('/run/netns').filter((n) => n.includes(g))).toEqual([]);
        expect(readdirSync('/sys/fs/cgroup/memory').filter((n) => n.includes(g))).toEqual([]);
        expect(readFileSync('/proc/self/mountinfo', 'utf8')).not.toContain(g);
      }
    }, 60_000);
    await helm('uninstall', release, '--namespace', system, '--wait');
    uninstalled = true;
    await eventually(async () => expect(await pods(`app.kubernetes.io/instance=${release}`)).toEqual([]), 120_000);
    // Helm keeps CRDs (crds/ is installed once and never deleted).
    const crds = await rawRequest<{ items: { metadata: { name: string } }[] }>(kc, {
      method: 'GET',
      path: '/apis/apiextensions.k8s.io/v1/customresourcedefinitions',
    });
    expect(crds.items.map((c) => c.metadata.name)).toEqual(
      expect.arrayContaining(['desiredlrps.diego.dev', 'actuallrps.diego.dev']),
    );
  });
});
