// Starts a real etcd + kube-apiserver + kube-controller-manager, uses it through
// @kubernetes/client-node, and checks that stop() leaves nothing behind.
import { existsSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ApiException, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { pino } from 'pino';
import { isPortOpen, startControlPlane, type ControlPlane } from './index.ts';

const TIMEOUT = 180_000;

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

async function eventually(what: string, check: () => Promise<boolean>, timeoutMs = 60_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs / 1000}s waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 200));
  }
}

// Tests the local harness itself, so it starts its own control plane even when the suites use another cluster.
describe('local control plane', { timeout: TIMEOUT }, () => {
  let cp: ControlPlane | undefined;
  let api: CoreV1Api;

  beforeAll(async () => {
    cp = await startControlPlane({ controllerManager: true, logger: pino({ level: process.env.LOG_LEVEL ?? 'warn' }) });
    const kc = new KubeConfig();
    kc.loadFromString(cp.kubeconfig);
    api = kc.makeApiClient(CoreV1Api);
  }, TIMEOUT);

  // Safety net if a test fails before the stop test runs; stop() is idempotent.
  afterAll(() => cp?.stop(), TIMEOUT);

  it('writes an admin kubeconfig and runs all three components', () => {
    expect(cp!.server).toMatch(/^https:\/\/127\.0\.0\.1:\d+$/);
    expect(existsSync(cp!.kubeconfigPath)).toBe(true);
    expect(cp!.processes.map((p) => p.name)).toEqual(['etcd', 'kube-apiserver', 'kube-controller-manager']);
  });

  it('serves namespaces and configmaps, and deletes namespaces (namespace controller)', async () => {
    const ns = 'cp-test';
    await api.createNamespace({ body: { metadata: { name: ns } } });
    const cm = await api.createNamespacedConfigMap({
      namespace: ns,
      body: { metadata: { name: 'hello' }, data: { greeting: 'hi' } },
    });
    expect(cm.metadata?.uid).toBeTruthy();
    const read = await api.readNamespacedConfigMap({ namespace: ns, name: 'hello' });
    expect(read.data).toEqual({ greeting: 'hi' });

    await api.deleteNamespace({ name: ns });
    // Without kube-controller-manager the namespace would stay Terminating forever.
    await eventually(`namespace ${ns} to be deleted`, async () => {
      try {
        await api.readNamespace({ name: ns });
        return false;
      } catch (err) {
        if (err instanceof ApiException && err.code === 404) return true;
        throw err;
      }
    });
  });

  it('stops without leaving processes, ports or files behind', async () => {
    const { processes, dir } = cp!;
    const ports = processes.flatMap((p) => p.ports);
    for (const port of ports) expect(await isPortOpen(port), `port ${port} open before stop`).toBe(true);

    await cp!.stop();
    await cp!.stop(); // idempotent

    for (const p of processes) expect(isAlive(p.pid), `${p.name} (pid ${p.pid}) still running`).toBe(false);
    for (const port of ports) expect(await isPortOpen(port), `port ${port} still open`).toBe(false);
    expect(existsSync(dir)).toBe(false);
  });
});
