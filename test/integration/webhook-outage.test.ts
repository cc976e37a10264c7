// Controller writes survive a webhook outage: the validating webhook (failurePolicy Fail) judges users' DesiredLRP and
// Task writes only. Here a second registration from src/webhooks/configuration.ts (the one startLocalWebhook and so
// `make run` use), scoped to this file's namespace, points at a port nothing listens on: the controllers still place
// and the cell agent still claims, runs and reports — all acting as the cluster admin, as in `make run` — while a
// user's create or spec change is refused with the outage error. Writes of the operator's own identities are not
// sent to the webhook at all.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Rep } from '../../src/cell-agent/rep.ts';
import { startCellAgent } from '../../src/cmd/cell-agent.ts';
import { Manager } from '../../src/controllers/manager.ts';
import { REASON_CANCELLED } from '../../src/controllers/task-lifecycle.ts';
import { createCA } from '../../src/lib/certs.ts';
import { freePort } from '../../src/lib/controlplane/ports.ts';
import { apply, rawRequest } from '../../src/lib/kube.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient } from '../../src/lib/resources.ts';
import {
  CHART_DEFAULT_OPERATOR_USERS,
  SPEC_CHANGED_CONDITION,
  validatingWebhookConfiguration,
} from '../../src/webhooks/configuration.ts';
import { eventually } from '../support/eventually.ts';
import { impersonating } from '../support/identities.ts';
import { createNamespace, deleteNamespace, kubectl, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const client = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const hook = `diego-operator-outage-${randomBytes(3).toString('hex')}`;
const OUTAGE = /failed calling webhook "validate\.diego\.dev".*(connection refused|connect: )/s;

let ns = '';
let manager: Manager | undefined;
let rep: Rep | undefined;
const stateDir = mkdtempSync(path.join(tmpdir(), 'outage-cell-'));
const cellId = `outage-cell-${randomBytes(3).toString('hex')}`;

const task = (name: string, action: Record<string, unknown>) => ({
  metadata: { name, namespace: ns },
  spec: { taskGuid: name, domain: 'cf-tasks', rootFs: 'preloaded:busybox', memoryMb: 16, action },
});
const errorOf = (p: Promise<unknown>) =>
  p.then(
    () => 'accepted',
    (e: unknown) => String((e as Error).message),
  );

beforeAll(async () => {
  ns = await createNamespace(kc, 'outage');
  // Desired while the webhook still answers.
  await client.create('DesiredLRP', {
    metadata: { name: 'web', namespace: ns },
    spec: {
      processGuid: 'web',
      domain: 'cf-apps',
      rootFs: 'preloaded:busybox',
      instances: 1,
      memoryMb: 16,
      diskMb: 16,
      action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
    },
  });
  await client.create('Task', task('quick', { run: { path: '/bin/true', user: 'root' } }));
  await client.create('Task', task('long', { run: { path: '/bin/sleep', args: ['600'], user: 'root' } }));

  // The outage: the same configuration, registered for this namespace only, calling a port nobody listens on.
  const dead = validatingWebhookConfiguration(
    { url: `https://127.0.0.1:${await freePort()}` },
    (await createCA({ commonName: 'nobody' })).certPem,
    { exemptUsers: CHART_DEFAULT_OPERATOR_USERS },
  );
  const config = {
    ...dead,
    metadata: { ...dead.metadata, name: hook },
    webhooks: dead.webhooks.map((w) => ({
      ...w,
      timeoutSeconds: 3,
      namespaceSelector: { matchLabels: { 'kubernetes.io/metadata.name': ns } },
    })),
  };
  await apply(kc, config as never);
  await eventually(
    async () =>
      expect(
        await errorOf(
          rawRequest(kc, {
            method: 'POST',
            path: `/apis/diego.dev/v1alpha1/namespaces/${ns}/tasks?dryRun=All`,
            body: {
              apiVersion: 'diego.dev/v1alpha1',
              kind: 'Task',
              ...task('probe', { run: { path: '/bin/true', user: 'root' } }),
            },
          }),
        ),
      ).toMatch(OUTAGE),
    30_000,
    250,
  );

  // The controllers and a cell agent, as `make run` starts them (the cluster admin's credentials).
  manager = new Manager({ kc, log, systemNamespace: ns });
  await manager.start();
  rep = await startCellAgent(kc, {
    log,
    cellId,
    zone: 'z1',
    memoryMb: 1024,
    diskMb: 1024,
    containers: 10,
    stacks: ['busybox'],
    backend: 'process',
    stateDir,
    systemNamespace: ns,
  });
}, 120_000);

afterAll(async () => {
  await kubectl(['delete', 'validatingwebhookconfiguration', hook, '--ignore-not-found']);
  await rep?.stop();
  await manager?.stop();
  await client.delete('Cell', { name: cellId });
  if (ns) await deleteNamespace(kc, ns);
  rmSync(stateDir, { recursive: true, force: true });
});

describe('a webhook outage', () => {
  it('leaves scheduling alone: instances are placed and run, tasks placed, run and completed', async () => {
    await eventually(async () => {
      const [a] = await client.list('ActualLRP', { namespace: ns });
      expect(a?.status?.state).toBe('RUNNING');
      expect(a?.spec.cellId).toBe(cellId);
    }, 60_000);
    // A task's placement is a patch of its spec.cellId: the webhook's rules cover it, its conditions let it by.
    await eventually(async () => {
      const t = await client.get('Task', ns, 'quick');
      expect(t.status).toMatchObject({ state: 'Completed', failed: false });
    }, 60_000);
    // Scaling (the scale subresource) is never judged: the converger creates the instance, the auctioneer places it.
    const scaled = await kubectl(['scale', '-n', ns, 'desiredlrp/web', '--replicas=2']);
    expect(scaled.stderr).toBe('');
    await eventually(async () => {
      const all = await client.list('ActualLRP', { namespace: ns });
      expect(all.map((a) => a.status?.state)).toEqual(['RUNNING', 'RUNNING']);
    }, 60_000);
  }, 150_000);

  it("refuses a user's create and a user's change of a spec with the webhook's outage error", async () => {
    expect(await errorOf(client.create('Task', task('after', { run: { path: '/bin/true', user: 'root' } })))).toMatch(
      OUTAGE,
    );
    expect(
      await errorOf(client.patch('DesiredLRP', { namespace: ns, name: 'web' }, { spec: { annotation: 'changed' } })),
    ).toMatch(OUTAGE);
  });

  it('lets by what needs no verdict: a cancel request, and the writes of the operator’s own identities', async () => {
    await eventually(async () => expect((await client.get('Task', ns, 'long')).status?.state).toBe('Running'), 60_000);
    await client.patch('Task', { namespace: ns, name: 'long' }, { spec: { cancelled: true } });
    await eventually(async () => {
      const t = await client.get('Task', ns, 'long');
      expect(t.status).toMatchObject({ state: 'Completed', failed: true, failureReason: REASON_CANCELLED });
    }, 60_000);
    // The chart's controller ServiceAccount (as startLocalWebhook exempts it by default): not sent to the webhook.
    const operator = new DiegoClient(
      impersonating(kc, { user: CHART_DEFAULT_OPERATOR_USERS[0]!, groups: ['system:masters'] }),
    );
    expect(await errorOf(operator.create('Task', task('operator', { run: { path: '/bin/true', user: 'root' } })))).toBe(
      'accepted',
    );
  });

  it('registers the conditions startLocalWebhook and the chart use', async () => {
    const res = await kubectl(['get', 'validatingwebhookconfiguration', 'diego-operator', '-o', 'json']);
    const live = JSON.parse(res.stdout) as { webhooks: { matchConditions?: { name: string; expression: string }[] }[] };
    expect(live.webhooks[0]?.matchConditions).toEqual([
      { name: 'not-the-operator', expression: expect.stringContaining(CHART_DEFAULT_OPERATOR_USERS[0]!) as string },
      SPEC_CHANGED_CONDITION,
    ]);
  });
});
