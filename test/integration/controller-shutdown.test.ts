// `diego-operator controller` stopping as a rolling update or a drain stops it (SIGTERM): it gives up the leader
// Lease at once, so the standby takes over without waiting for it to expire, but keeps answering admission reviews
// for --shutdown-delay, while the API server and kube-proxy drop the pod from the webhook Service's endpoints (a
// user's `kubectl apply` meanwhile must not fail). A second signal ends the wait.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { createServer, type AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { setTimeout as sleep } from 'node:timers/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { DiegoCache } from '../../src/controllers/cache.ts';
import { LEADER_LEASE_NAME } from '../../src/controllers/manager.ts';
import { createLogger } from '../../src/lib/log.ts';
import { createCA, issueCert, writeCertFiles, type CertKeyPair } from '../../src/lib/certs.ts';
import { rawRequest } from '../../src/lib/kube.ts';
import { VALIDATE_PATH } from '../../src/webhooks/server.ts';
import { exitOf, running } from '../support/child.ts';
import { eventually } from '../support/eventually.ts';
import { deleteNamespace, testKubeConfig } from '../support/kube.ts';
import { freePort } from '../support/nats-router.ts';

const kc = testKubeConfig();
const repo = join(import.meta.dirname, '..', '..');
let ca: CertKeyPair;
let certDir: string;
const namespaces: string[] = [];
const controllers: Controller[] = [];

beforeAll(async () => {
  ca = await createCA({ commonName: 'webhook-test-ca' });
  certDir = mkdtempSync(join(tmpdir(), 'controller-shutdown-'));
  await writeCertFiles(
    certDir,
    'tls',
    await issueCert(ca, { commonName: 'webhook', ipAddresses: ['127.0.0.1'], usage: 'server' }),
  );
});

afterAll(async () => {
  // Never leave one behind (it shares this process's stderr): a stray controller waiting out an hour would keep the
  // test run from ending.
  for (const c of controllers) if (running(c.child)) c.child.kill('SIGKILL');
  rmSync(certDir, { recursive: true, force: true });
  await Promise.all(namespaces.map((ns) => deleteNamespace(kc, ns)));
});

interface Controller {
  child: ChildProcess;
  port: number;
  namespace: string;
  /** What it printed on stderr so far. */
  stderr: string;
}

async function startController(delaySeconds: number, metricsAddress = '127.0.0.1:0'): Promise<Controller> {
  const namespace = `diego-sys-shutdown-${Math.random().toString(16).slice(2, 8)}`;
  namespaces.push(namespace);
  const port = await freePort();
  const child = spawn(
    process.execPath,
    [
      'src/main.ts',
      'controller',
      `--kubeconfig=${inject('kubeconfigPath')}`,
      `--webhook-cert-dir=${certDir}`,
      `--webhook-port=${port}`,
      `--metrics-address=${metricsAddress}`,
      `--system-namespace=${namespace}`,
      '--endpoint-slices=false',
      `--shutdown-delay=${delaySeconds}`,
    ],
    { cwd: repo, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, LOG_LEVEL: 'warn' } },
  );
  const c = { child, port, namespace, stderr: '' };
  child.stderr?.on('data', (chunk: Buffer) => (c.stderr += chunk.toString()));
  controllers.push(c);
  return c;
}

const holder = async (namespace: string) =>
  (
    await rawRequest<{ spec: { holderIdentity?: string | null } }>(kc, {
      method: 'GET',
      path: `/apis/coordination.k8s.io/v1/namespaces/${namespace}/leases/${LEADER_LEASE_NAME}`,
    })
  ).spec.holderIdentity ?? '';

/** An admission review of an invalid DesiredLRP, as the API server sends it: the answer names the request's uid. */
function review(port: number, uid: string): Promise<{ uid?: string; allowed?: boolean }> {
  const body = JSON.stringify({
    apiVersion: 'admission.k8s.io/v1',
    kind: 'AdmissionReview',
    request: {
      uid,
      kind: { group: 'diego.dev', version: 'v1alpha1', kind: 'DesiredLRP' },
      resource: { group: 'diego.dev', version: 'v1alpha1', resource: 'desiredlrps' },
      operation: 'CREATE',
      object: { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', metadata: { name: 'x' }, spec: {} },
    },
  });
  return new Promise((resolve, reject) => {
    const req = request(
      {
        host: '127.0.0.1',
        port,
        path: VALIDATE_PATH,
        method: 'POST',
        ca: ca.certPem,
        headers: { 'content-type': 'application/json' },
        agent: false,
        timeout: 10_000,
      },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => {
          try {
            resolve((JSON.parse(text) as { response: { uid?: string; allowed?: boolean } }).response);
          } catch (err) {
            reject(new Error(`HTTP ${res.statusCode}: ${text}`, { cause: err }));
          }
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('admission review timed out')));
    req.on('error', reject);
    req.end(body);
  });
}

describe('controller shutdown', () => {
  it('on SIGTERM: releases the leader Lease at once, answers admission reviews for --shutdown-delay, then exits 0', async () => {
    const delay = 8;
    const c = await startController(delay);
    try {
      await eventually(async () => expect(await holder(c.namespace)).toMatch(new RegExp(`-${c.child.pid}$`)), 120_000);
      expect(await review(c.port, 'before')).toMatchObject({ uid: 'before', allowed: false });

      const stoppedAt = Date.now();
      c.child.kill('SIGTERM');
      // Leadership is given up first: the Lease names nobody, so a standby takes it on its next try.
      await eventually(async () => expect(await holder(c.namespace)).toBe(''), 30_000, 200);
      // Still answering while the delay runs (the process is alive and serving).
      const during = await review(c.port, 'during');
      expect(running(c.child)).toBe(true);
      expect(during).toMatchObject({ uid: 'during', allowed: false });

      const [code] = await exitOf(c.child, 90_000, 'controller');
      expect(code).toBe(0);
      expect(Date.now() - stoppedAt).toBeGreaterThanOrEqual(delay * 1000); // it waited the delay out
      await expect(review(c.port, 'after')).rejects.toThrow(/ECONNREFUSED/);
    } finally {
      if (running(c.child)) c.child.kill('SIGKILL');
    }
  }, 240_000);

  it('a second signal during the delay ends it at once', async () => {
    const c = await startController(3600);
    try {
      await eventually(async () => expect(await holder(c.namespace)).toMatch(new RegExp(`-${c.child.pid}$`)), 120_000);
      c.child.kill('SIGTERM');
      await eventually(async () => expect(await holder(c.namespace)).toBe(''), 30_000, 200);
      expect(await review(c.port, 'during')).toMatchObject({ uid: 'during' });
      c.child.kill('SIGINT');
      expect(await exitOf(c.child, 90_000, 'controller')).toEqual([0, null]); // long before the hour is up
    } finally {
      if (running(c.child)) c.child.kill('SIGKILL');
    }
  }, 240_000);

  it('a second signal while leadership is still being given up ends the delay too', async () => {
    // The second signal right behind the first, while leadership is being given up and the informers stopped, just
    // after start-up (what CI once hit: a stop while the cache was still starting left watches that kept the
    // process alive for good). Not at the same instant: the kernel would fold two pending SIGTERMs into one.
    const c = await startController(3600);
    try {
      await eventually(async () => expect(await holder(c.namespace)).toMatch(new RegExp(`-${c.child.pid}$`)), 120_000);
      c.child.kill('SIGTERM');
      await sleep(200);
      c.child.kill('SIGTERM');
      expect(await exitOf(c.child, 90_000, 'controller')).toEqual([0, null]);
      expect(await holder(c.namespace)).toBe('');
    } finally {
      if (running(c.child)) c.child.kill('SIGKILL');
    }
  }, 240_000);
});

describe('controller start-up that fails', () => {
  it('once leading may have begun (its metrics port is taken): stops what it started, leaves no Lease, exits 1', async () => {
    const busy = createServer();
    await new Promise<void>((resolve) => busy.listen(0, '127.0.0.1', resolve));
    const { port } = busy.address() as AddressInfo;
    try {
      const c = await startController(0, `127.0.0.1:${port}`);
      try {
        expect(await exitOf(c.child, 90_000, 'controller')).toEqual([1, null]);
        expect(c.stderr).toMatch(/EADDRINUSE|address already in use/);
        // Never taken, or given up on the way out: a standby need not wait for it to expire.
        expect(await holder(c.namespace).catch(() => '')).not.toMatch(new RegExp(`-${c.child.pid}$`));
      } finally {
        if (running(c.child)) c.child.kill('SIGKILL');
      }
    } finally {
      busy.close();
    }
  }, 240_000);
});

describe('the controllers’ cache stopped while it starts', () => {
  it('leaves no list or watch running (nothing would stop it, and the process would not end)', async () => {
    const cache = new DiegoCache(kc, { cellLeaseNamespace: 'default', logger: createLogger('silent') });
    const started = cache.start();
    await cache.stop(); // the cells and leases are still listing: the other informers have not begun
    await started;
    expect(cache.running).toBe(false);
    // And a cache that was let start stops every informer.
    await cache.start();
    expect(cache.running).toBe(true);
    await cache.stop();
    expect(cache.running).toBe(false);
  });
});
