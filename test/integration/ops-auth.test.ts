// The ops endpoints with Kubernetes authentication, against the real API server: a ServiceAccount token allowed
// to `get desiredlrps/log` in namespace A reads A's log stream and nothing of B's (even under the same log guid),
// /metrics needs `get /metrics`, and no token or a bad one gets nothing.
import { RbacAuthorizationV1Api, CoreV1Api } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { LogHub } from '../../src/cell-agent/logs/hub.ts';
import { registerLogRoutes, streamKey } from '../../src/cell-agent/logs/stream-server.ts';
import { logEnvelope } from '../../src/cell-agent/logs/envelope.ts';
import { startOpsServer, type OpsServer } from '../../src/lib/metrics.ts';
import { kubernetesAuth, opsSecurity } from '../../src/lib/ops-auth.ts';
import { request as httpsRequest } from 'node:https';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const core = kc.makeApiClient(CoreV1Api);
const rbac = kc.makeApiClient(RbacAuthorizationV1Api);
let a = '';
let b = '';
let server: OpsServer;
const hub = new LogHub();
const role = `diego-ops-test-${process.pid}`;

async function tokenFor(namespace: string, name: string): Promise<string> {
  await core.createNamespacedServiceAccount({ namespace, body: { metadata: { name } } });
  const req = await core.createNamespacedServiceAccountToken({
    namespace,
    name,
    body: { spec: { audiences: [], expirationSeconds: 600 } },
  });
  return req.status?.token ?? '';
}

beforeAll(async () => {
  a = await createNamespace(kc, 'ops-a');
  b = await createNamespace(kc, 'ops-b');
  await rbac.createClusterRole({
    body: {
      metadata: { name: role },
      rules: [{ apiGroups: ['diego.dev'], resources: ['desiredlrps/log'], verbs: ['get'] }],
    },
  });
  await rbac.createClusterRole({
    body: { metadata: { name: `${role}-metrics` }, rules: [{ nonResourceURLs: ['/metrics'], verbs: ['get'] }] },
  });
  hub.publish(streamKey(a, 'shared'), logEnvelope({ source_id: 'shared' }, 'APP', 'OUT', 'from A'));
  hub.publish(streamKey(b, 'shared'), logEnvelope({ source_id: 'shared' }, 'APP', 'OUT', 'secret of B'));
  server = await startOpsServer({
    port: 0,
    auth: kubernetesAuth(kc),
    routes: (app, auth) => registerLogRoutes(app, hub, {}, auth),
  });
});

afterAll(async () => {
  await server?.close();
  await rbac.deleteClusterRole({ name: role }).catch(() => undefined);
  await rbac.deleteClusterRole({ name: `${role}-metrics` }).catch(() => undefined);
  await rbac.deleteClusterRoleBinding({ name: `${role}-metrics` }).catch(() => undefined);
  await deleteNamespace(kc, a);
  await deleteNamespace(kc, b);
});

const get = (path: string, token?: string) =>
  fetch(`${server.url}${path}`, token ? { headers: { authorization: `Bearer ${token}` } } : {});

describe('ops endpoints with Kubernetes authentication', () => {
  it("lets a tenant read its own namespace's log stream, and nothing else", async () => {
    const token = await tokenFor(a, 'viewer');
    await rbac.createNamespacedRoleBinding({
      namespace: a,
      body: {
        metadata: { name: 'viewer-logs' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
        subjects: [{ kind: 'ServiceAccount', name: 'viewer', namespace: a }],
      },
    });
    const own = await get(`/v1/namespaces/${a}/logs/shared`, token);
    expect(own.status).toBe(200);
    expect(await own.text()).toContain('from A');
    const other = await get(`/v1/namespaces/${b}/logs/shared`, token);
    expect(other.status).toBe(403);
    expect(await other.text()).toContain(`may not get desiredlrps/log.diego.dev in namespace ${b}`);
    // Every namespace at once needs the permission cluster-wide.
    expect((await get('/v1/logs/shared', token)).status).toBe(403);
    expect((await get('/metrics', token)).status).toBe(403);
  });

  it('asks for a token, refuses a bad one, and lets a scraper with get /metrics scrape', async () => {
    expect((await get(`/v1/namespaces/${a}/logs/shared`)).status).toBe(401);
    expect((await get('/metrics', 'not-a-token')).status).toBe(401);
    const scraper = await tokenFor(b, 'prometheus');
    await rbac.createClusterRoleBinding({
      body: {
        metadata: { name: `${role}-metrics` },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: `${role}-metrics` },
        subjects: [{ kind: 'ServiceAccount', name: 'prometheus', namespace: b }],
      },
    });
    const res = await get('/metrics', scraper);
    expect(res.status).toBe(200);
    expect(await res.text()).toContain('process_cpu_seconds_total');
    expect((await get('/healthz')).status).toBe(200); // probes stay open
  });

  it('serves HTTPS with a self-signed certificate when it listens off loopback, and nothing unchecked', async () => {
    expect(await opsSecurity(kc, '127.0.0.1', 'auto', {})).toEqual({}); // loopback: open, plain HTTP
    const security = await opsSecurity(kc, '0.0.0.0', 'auto', {});
    expect(security.auth).toBeDefined();
    const tlsServer = await startOpsServer({ host: '127.0.0.1', port: 0, ...security });
    try {
      const status = await new Promise<number>((resolve, reject) => {
        const req = httpsRequest(`${tlsServer.url}/metrics`, { rejectUnauthorized: false }, (res) => {
          res.resume();
          resolve(res.statusCode ?? 0);
        });
        req.on('error', reject);
        req.end();
      });
      expect(tlsServer.url).toMatch(/^https:/);
      expect(status).toBe(401);
    } finally {
      await tlsServer.close();
    }
  });
});
