// Image credentials out of the custom resources (docs/security.md, "Node vs cluster"): on a real API server, with the
// chart's ServiceAccounts and RBAC and real tokens the TokenRequest API bound to Pods on nodes, the controller's
// endpoint gives the cell agent of node A the credentials of work placed on A — and refuses, naming why, the work of
// node B, work placed nowhere, a Secret the work does not name, a Secret that is no basic-auth Secret, and tokens that
// name no node or are not a cell agent's. A cell agent itself reads no Secret and cannot put credentials in work.
import { randomBytes } from 'node:crypto';
import { request as httpsRequest } from 'node:https';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { endpointSource } from '../../src/cell-agent/image-credentials.ts';
import { registerCredentialsRoutes } from '../../src/controllers/image-credentials-endpoint.ts';
import type { ITask } from '../../src/crds/models.ts';
import { createCA, issueCert } from '../../src/lib/certs.ts';
import {
  basicAuthSecret,
  credentialsPath,
  secretPath,
  type WorkKind,
  type WorkRef,
} from '../../src/lib/image-credentials.ts';
import { KubeError, rawRequest } from '../../src/lib/kube.ts';
import { createLogger } from '../../src/lib/log.ts';
import { registry } from '../../src/lib/metrics.ts';
import { kubernetesAuth } from '../../src/lib/ops-auth.ts';
import { DiegoClient, refOf } from '../../src/lib/resources.ts';
import { buildWebhookServer } from '../../src/webhooks/server.ts';
import { ACCESS_KINDS, applyObjects, deleteObjects, helmBinary, renderChart } from '../support/chart.ts';
import { impersonating, nodeBoundToken, type NodeBoundToken } from '../support/identities.ts';
import { createNamespace, deleteNamespace, kubectl, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const admin = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const hex = () => randomBytes(3).toString('hex');
const release = `creds-${hex()}`;
/** The audience the chart's cell agents' projected tokens are issued for (values.yaml imageCredentials.audience). */
const AUDIENCE = 'diego-operator-image-credentials';

let ns = ''; // the release namespace: ServiceAccounts
let apps = ''; // the work and its Secrets
let accessYaml = '';
let server: ReturnType<typeof buildWebhookServer> | undefined;
let url = '';
let caPem = '';
const tokens: NodeBoundToken[] = [];
const A = `node-a-${hex()}`;
const B = `node-b-${hex()}`;
const sa = (component: string) => `${release}-diego-operator-${component}`;
const user = (component: string) => `system:serviceaccount:${ns}:${sa(component)}`;

/** A token of `component`'s ServiceAccount bound to a Pod on `node`, for the endpoint (or for the API server). */
async function tokenOn(node: string, component = 'cell-agent', audience: 'endpoint' | 'api' = 'endpoint') {
  const t = await nodeBoundToken(kc, {
    namespace: ns,
    serviceAccount: sa(component),
    nodeName: node,
    ...(audience === 'endpoint' ? { audiences: [AUDIENCE] } : {}),
  });
  tokens.push(t);
  return t.token;
}

/** One request to the endpoint as a cell agent makes it: status and JSON answer. */
function ask(
  token: string | undefined,
  work: WorkRef,
  secret: string,
): Promise<{ status: number; body: { username?: string; password?: string; error?: string; rule?: string } }> {
  return new Promise((resolve, reject) => {
    const req = httpsRequest(
      new URL(credentialsPath(work, secret), url),
      { ca: caPem, headers: token ? { authorization: `Bearer ${token}` } : {} },
      (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: JSON.parse(text) as never }));
      },
    );
    req.on('error', reject);
    req.end();
  });
}
const work = (kind: WorkKind, name: string): WorkRef => ({ namespace: apps, kind, name });

async function placedTask(name: string, cellId: string | undefined, secret: string): Promise<ITask> {
  await admin.create('Task', {
    metadata: { name, namespace: apps },
    spec: {
      taskGuid: name,
      domain: 'cf-tasks',
      rootFs: 'docker://registry.example.com/job',
      imageCredentialsSecret: secret,
      action: { run: { path: '/bin/true', user: 'root' } },
      ...(cellId ? { cellId } : {}),
    },
  });
  return admin.patchStatus('Task', { namespace: apps, name }, { state: 'Pending' });
}

beforeAll(async () => {
  const helm = await helmBinary();
  ns = await createNamespace(kc, 'creds');
  apps = await createNamespace(kc, 'creds-apps');
  // The chart's ServiceAccounts, RBAC (the controller may get Secrets, a cell agent none) and admission policies.
  const objects = await renderChart(helm, release, ns, ['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls']);
  accessYaml = await applyObjects(objects.filter((o) => ACCESS_KINDS.includes(o.kind)));

  // The endpoint as the controller serves it: its webhook TLS server, acting as the controller's ServiceAccount.
  const ca = await createCA({ commonName: 'creds-test-ca' });
  const leaf = await issueCert(ca, { commonName: 'controller', ipAddresses: ['127.0.0.1'], usage: 'server' });
  caPem = ca.certPem;
  const controller = impersonating(kc, { user: user('controller') });
  server = buildWebhookServer({ tls: { cert: leaf.certPem, key: leaf.keyPem }, logger: log });
  registerCredentialsRoutes(server, {
    kc: controller,
    auth: kubernetesAuth(controller, { audiences: [AUDIENCE] }),
    cellAgentUsers: [user('cell-agent')],
    logger: log,
  });
  await server.listen({ host: '127.0.0.1', port: 0 });
  url = `https://127.0.0.1:${(server.server.address() as AddressInfo).port}`;

  // An app with three instances (on A, on B, on no cell), tasks on A and B, and the Secrets they name.
  const secret = (name: string, type?: string) => {
    const body = basicAuthSecret(apps, name, { username: `user-of-${name}`, password: `password-of-${name}` });
    return rawRequest(kc, { method: 'POST', path: secretPath(apps), body: type ? { ...body, type } : body });
  };
  await secret('app-creds');
  await secret('other-creds');
  await secret('opaque-creds', 'Opaque');
  for (const [name, secretName] of [
    ['app', 'app-creds'],
    ['opaque-app', 'opaque-creds'],
  ] as const) {
    const d = await admin.create('DesiredLRP', {
      metadata: { name, namespace: apps },
      spec: {
        processGuid: name,
        domain: 'cf-apps',
        rootFs: 'docker://registry.example.com/app',
        imageCredentialsSecret: secretName,
        instances: 3,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    const owner = { apiVersion: 'diego.dev/v1alpha1', kind: 'DesiredLRP', name, uid: d.metadata.uid! };
    for (const [index, cellId] of [A, B, undefined].entries()) {
      await admin.create('ActualLRP', {
        metadata: { name: `${name}-${index}`, namespace: apps, ownerReferences: [owner] },
        spec: { processGuid: name, index, domain: 'cf-apps', ...(cellId ? { cellId } : {}) },
      });
    }
  }
  await placedTask('job-a', A, 'app-creds');
  await placedTask('job-b', B, 'app-creds');
}, 600_000);

afterAll(async () => {
  await server?.close();
  for (const t of tokens) await t.revoke();
  await deleteObjects(accessYaml);
  if (apps) await deleteNamespace(kc, apps);
  if (ns) await deleteNamespace(kc, ns);
});

describe('the image credentials endpoint', () => {
  it('gives the cell agent of node A the credentials of the work placed on A', async () => {
    const a = await tokenOn(A);
    // The agent's own client (what the rep asks through just before a docker:// pull).
    const agent = endpointSource({ url, ca: () => Promise.resolve(caPem), token: () => Promise.resolve(a) });
    expect(await agent.fetch(work('actuallrps', 'app-0'), 'app-creds')).toEqual({
      username: 'user-of-app-creds',
      password: 'password-of-app-creds',
    });
    expect(await agent.fetch(work('tasks', 'job-a'), 'app-creds')).toEqual({
      username: 'user-of-app-creds',
      password: 'password-of-app-creds',
    });
    // B's agent gets B's work, not A's.
    const b = await tokenOn(B);
    expect((await ask(b, work('actuallrps', 'app-1'), 'app-creds')).status).toBe(200);
    expect((await ask(b, work('actuallrps', 'app-0'), 'app-creds')).status).toBe(403);
  });

  it("refuses, naming why, node B's work, work placed nowhere, a Secret the work does not name, a Secret of another type", async () => {
    const a = await tokenOn(A);
    const cases: [WorkRef, string, number, string][] = [
      [
        work('actuallrps', 'app-1'),
        'app-creds',
        403,
        `[credentials.placed] actuallrps ${apps}/app-1 is placed on cell ${B}, not ${A}`,
      ],
      [
        work('tasks', 'job-b'),
        'app-creds',
        403,
        `[credentials.placed] tasks ${apps}/job-b is placed on cell ${B}, not ${A}`,
      ],
      [
        work('actuallrps', 'app-2'),
        'app-creds',
        403,
        `[credentials.placed] actuallrps ${apps}/app-2 is not placed on any cell`,
      ],
      [
        work('actuallrps', 'app-0'),
        'other-creds',
        403,
        `[credentials.named] the DesiredLRP ${apps}/app names the Secret app-creds in spec.imageCredentialsSecret, not other-creds`,
      ],
      [work('tasks', 'job-a'), 'other-creds', 403, '[credentials.named] the Task'],
      [
        work('actuallrps', 'opaque-app-0'),
        'opaque-creds',
        403,
        `[credentials.secret-type] Secret opaque-creds in namespace ${apps} is of type Opaque; image credentials must be a kubernetes.io/basic-auth Secret`,
      ],
      [work('actuallrps', 'app-9'), 'app-creds', 404, `[credentials.placed] actuallrps ${apps}/app-9 does not exist`],
    ];
    for (const [w, secret, status, message] of cases) {
      const res = await ask(a, w, secret);
      expect({ status: res.status, error: res.body.error?.slice(0, message.length) }, `${w.name} ${secret}`).toEqual({
        status,
        error: message,
      });
      expect(res.body.password).toBeUndefined();
    }
    // The agent's client turns a refusal into the reason its container fails with.
    const agent = endpointSource({ url, ca: () => Promise.resolve(caPem), token: () => Promise.resolve(a) });
    await expect(agent.fetch(work('actuallrps', 'app-1'), 'app-creds')).rejects.toThrow(
      `the controller refused the image credentials of actuallrps ${apps}/app-1 (Secret app-creds): [credentials.placed]`,
    );
  });

  it('refuses a token that names no node, one for the API server, another ServiceAccount, and no token', async () => {
    // Unbound: a TokenRequest with the endpoint's audience but no Pod (a legacy Secret token names no node either).
    const unbound = await rawRequest<{ status: { token: string } }>(kc, {
      method: 'POST',
      path: `/api/v1/namespaces/${ns}/serviceaccounts/${sa('cell-agent')}/token`,
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: { audiences: [AUDIENCE] } },
    });
    const res = await ask(unbound.status.token, work('actuallrps', 'app-0'), 'app-creds');
    expect(res.status).toBe(403);
    expect(res.body.error).toMatch(
      /^\[credentials\.bound-token\] the token of .* names no node \(a legacy Secret token/,
    );
    // The agent's token for the API server is not for this endpoint (its audience): not accepted at all.
    const apiToken = await tokenOn(A, 'cell-agent', 'api');
    expect((await ask(apiToken, work('actuallrps', 'app-0'), 'app-creds')).status).toBe(401);
    // Another ServiceAccount bound to a Pod on A (here the BBS's) is no cell agent.
    const other = await ask(await tokenOn(A, 'bbs'), work('actuallrps', 'app-0'), 'app-creds');
    expect(other.status).toBe(403);
    expect(other.body.error).toContain(
      `[credentials.cell-agent] ${user('bbs')} is not the cell agents' ServiceAccount`,
    );
    const none = await ask(undefined, work('actuallrps', 'app-0'), 'app-creds');
    expect(none.status).toBe(401);
    // Counted by outcome (the controller's /metrics).
    const counts = Object.fromEntries(
      (await registry.getSingleMetric('ImageCredentialsRequests')!.get()).values.map((v) => [
        v.labels.outcome,
        v.value,
      ]),
    );
    expect(counts).toMatchObject({
      granted: expect.any(Number) as number,
      refused: expect.any(Number) as number,
      unauthenticated: expect.any(Number) as number,
      not_found: expect.any(Number) as number,
    });
  });
});

describe('a cell agent', () => {
  let asA: DiegoClient; // with the token the API server bound to a Pod of the cell agent on node A

  beforeAll(async () => {
    const own = await nodeBoundToken(kc, { namespace: ns, serviceAccount: sa('cell-agent'), nodeName: A });
    tokens.push(own);
    asA = new DiegoClient(own.kc);
  });

  it('reads no Secret, in any namespace', async () => {
    const paths = [
      secretPath(apps, 'app-creds'),
      secretPath(apps),
      `${secretPath(apps)}?watch=true`,
      '/api/v1/secrets',
    ];
    for (const path of paths) {
      const err = await rawRequest(asA.kc, { method: 'GET', path }).catch((e: unknown) => e);
      expect(err, path).toBeInstanceOf(KubeError);
      expect((err as KubeError).code, path).toBe(403);
    }
    for (const verb of ['get', 'list', 'watch']) {
      const res = await kubectl(['auth', 'can-i', verb, 'secrets', '-A', `--as=${user('cell-agent')}`]);
      expect(res.stdout.trim(), verb).toBe('no');
    }
  });

  it('cannot put credentials in work: inline imagePassword is refused, naming the field', async () => {
    // Its own task's spec (it may patch Tasks): the CRD refuses the field whoever writes it.
    const task = await admin.get('Task', apps, 'job-a');
    const patched = await asA
      .patch('Task', refOf(task), { spec: { imageUsername: 'x', imagePassword: 'stolen' } })
      .catch((e: unknown) => e);
    expect(patched).toBeInstanceOf(KubeError);
    expect((patched as KubeError).code).toBe(422);
    expect((patched as KubeError).message).toContain(
      'spec.imagePassword: Forbidden: imagePassword is refused: every cell agent can read every DesiredLRP and Task',
    );
    expect((patched as KubeError).message).toContain('name it in spec.imageCredentialsSecret');
    // Creating work at all is not a cell agent's (RBAC) ...
    const created = await asA
      .create('DesiredLRP', {
        metadata: { name: 'x', namespace: apps },
        spec: {
          processGuid: 'x',
          domain: 'd',
          rootFs: 'docker:///x',
          instances: 1,
          action: { run: { path: '/x', user: 'root' } },
        },
      })
      .catch((e: unknown) => e);
    expect((created as KubeError).code).toBe(403);
    // ... and whoever may (the BBS's ServiceAccount in its namespace) cannot put the password inline either.
    const bbs = new DiegoClient(impersonating(kc, { user: user('bbs') }));
    for (const kind of ['DesiredLRP', 'Task'] as const) {
      const spec = {
        ...(kind === 'Task' ? { taskGuid: 'inline' } : { processGuid: 'inline' }),
        domain: 'd',
        rootFs: 'docker:///private/app',
        imageUsername: 'deploy',
        imagePassword: 'hunter2',
        action: { run: { path: '/x', user: 'root' } },
      };
      const err = await bbs
        .create(kind, { metadata: { name: 'inline', namespace: ns }, spec } as never)
        .catch((e: unknown) => e);
      expect((err as KubeError).code, kind).toBe(422);
      expect((err as KubeError).message, kind).toContain('spec.imagePassword: Forbidden');
      expect((err as KubeError).message, kind).toContain('spec.imageUsername: Forbidden');
    }
  });
});
