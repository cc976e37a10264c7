// A cell agent confined to its own cell (docs/security.md, "Node vs cluster"): the chart's ValidatingAdmissionPolicies
// on a real API server, with real ServiceAccount tokens bound to Pods on nodes (TokenRequest; the API server puts the
// node's name in the token as it does for the kubelet), and impersonation where no node is involved. Everything a
// compromised node could do with the cell agent's ServiceAccount to other cells' work is refused with a message naming
// the rule, and what a rep does to its own (registration, presence, claims, crashes, hand-backs, evacuation, tasks)
// still works: through the rep's own functions, then with real reps running an app and a task.
import { suspectName } from '../../src/lifecycle/names.ts';
import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { listPresentCells, upsertDomain } from '../../src/bbs/leases.ts';
import { handBackLRP, rejectTask } from '../../src/cell-agent/fit.ts';
import { registerCell, releasePresence, renewPresence } from '../../src/cell-agent/presence.ts';
import type { Rep } from '../../src/cell-agent/rep.ts';
import { startCellAgent } from '../../src/cmd/cell-agent.ts';
import {
  crashedStatus,
  evacuatingName,
  evacuateRunning,
  removeEvacuating,
  setCellEvacuating,
} from '../../src/controllers/evacuation.ts';
import { LEADER_LEASE_NAME, Manager } from '../../src/controllers/manager.ts';
import { FINALIZER_CONTAINER, placementPatch } from '../../src/controllers/names.ts';
import { completeTask, startTask } from '../../src/controllers/task-lifecycle.ts';
import type { CellSpec } from '../../src/crds/cell.ts';
import { GROUP, VERSION } from '../../src/crds/kinds.ts';
import type { IActualLRP, ITask } from '../../src/crds/models.ts';
import { basicAuthSecret, secretPath } from '../../src/lib/image-credentials.ts';
import { KubeError, rawRequest } from '../../src/lib/kube.ts';
import { leasePath, microTime } from '../../src/lib/lease.ts';
import { createLogger } from '../../src/lib/log.ts';
import { DiegoClient, refOf } from '../../src/lib/resources.ts';
import {
  ACCESS_KINDS,
  applyObjects,
  deleteObjects,
  helmBinary,
  policyWarnings,
  renderChart,
} from '../support/chart.ts';
import { create } from '@bufbuild/protobuf';
import { LockRequestSchema, ReleaseRequestSchema, TypeCode } from '../../src/bbs/gen/locket_pb.ts';
import { LocketStore } from '../../src/bbs/locket.ts';
import { eventually } from '../support/eventually.ts';
import { impersonating, NODE_NAME_EXTRA, nodeBoundToken, type NodeBoundToken, whoAmI } from '../support/identities.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../support/kube.ts';

const kc = testKubeConfig();
const admin = new DiegoClient(kc);
const log = createLogger(process.env.LOG_LEVEL ?? 'warn');
const hex = () => randomBytes(3).toString('hex');
const release = `confine-${hex()}`;

let ns = ''; // release and system namespace: ServiceAccounts, Leases
let accessYaml = '';
const sa = (component: string) => `${release}-diego-operator-${component}`;
const user = (component: string) => `system:serviceaccount:${ns}:${sa(component)}`;
const tokens: NodeBoundToken[] = [];

/** A cell agent's identity on `node`: a token the API server issued for a Pod of the cell-agent SA on that node. */
async function agentOn(node: string): Promise<NodeBoundToken> {
  const t = await nodeBoundToken(kc, { namespace: ns, serviceAccount: sa('cell-agent'), nodeName: node });
  tokens.push(t);
  return t;
}

/** Resolves the refusal of `write`: a 403 whose message names `rule`. */
async function refused(write: Promise<unknown>, rule: string): Promise<string> {
  const err = await write.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err, `expected [${rule}] to refuse the write`).toBeInstanceOf(KubeError);
  const e = err as KubeError;
  expect(e.message).toContain(`[${rule}]`);
  expect(e.code).toBe(403);
  return e.message;
}

const cellSpec = (cellId: string, over: Partial<CellSpec> = {}): CellSpec => ({
  cellId,
  zone: 'z1',
  capacity: { memoryMb: 1024, diskMb: 1024, containers: 10 },
  rootfsProviders: [{ name: 'preloaded', properties: ['busybox'] }],
  placementTags: [],
  optionalPlacementTags: [],
  volumeDrivers: [],
  ...over,
});

beforeAll(async () => {
  const helm = await helmBinary();
  ns = await createNamespace(kc, 'confine');
  const objects = await renderChart(helm, release, ns, ['bbs.enabled=true', 'bbs.tls.existingSecret=bbs-tls']);
  accessYaml = await applyObjects(objects.filter((o) => ACCESS_KINDS.includes(o.kind)));
  // The API server type-checks each policy against the CRDs' schemas (status.typeChecking): no expression may refer
  // to a field that does not exist or compare values of different types.
  const policies = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy').map((o) => o.metadata.name);
  expect(policies).toHaveLength(4);
  for (const name of policies) {
    const checked = await eventually(async () => {
      const w = await policyWarnings(name);
      expect(w.checked).toBe(true);
      return w;
    }, 30_000);
    expect(checked.warnings, name).toEqual([]);
  }
  // Policies reach the admission chain through an informer: wait until each one refuses.
  const unbound = new DiegoClient(impersonating(kc, { user: user('cell-agent') }));
  const controller = impersonating(kc, { user: user('controller') });
  await eventually(
    () => refused(registerCell(unbound.kc, cellSpec(`probe-${hex()}`)), 'cell-agent.bound-token'),
    30_000,
  );
  const probeSpec = { processGuid: 'probe', index: 0, domain: 'probe' };
  await eventually(
    () =>
      refused(
        unbound.create('ActualLRP', { metadata: { name: `probe-${hex()}`, namespace: ns }, spec: probeSpec }),
        'cell-agent.bound-token',
      ),
    30_000,
  );
  const probeTask = await admin.create('Task', {
    metadata: { name: 'probe', namespace: ns },
    spec: {
      taskGuid: 'probe',
      domain: 'probe',
      rootFs: 'preloaded:busybox',
      action: { run: { path: '/bin/true', user: 'root' } },
    },
  });
  await eventually(
    () => refused(unbound.patchStatus('Task', refOf(probeTask), { state: 'Running' }), 'cell-agent.bound-token'),
    30_000,
  );
  await eventually(
    () =>
      refused(
        rawRequest(controller, { method: 'POST', path: leasePath(ns), body: { metadata: { name: 'probe' } } }),
        'lease.controller',
      ),
    30_000,
  );
}, 600_000);

afterAll(async () => {
  for (const t of tokens) await t.revoke();
  await deleteObjects(accessYaml);
  if (ns) await deleteNamespace(kc, ns);
});

describe('a cell agent confined to its own cell', () => {
  let apps = '';
  const A = `cell-a-${hex()}`; // the compromised node
  const V = `cell-v-${hex()}`; // another cell: the victim
  let a: NodeBoundToken;
  let v: NodeBoundToken;
  let asA: DiegoClient;
  let uid = '';

  /** An ActualLRP as the control plane and cell V would have left it (written as the admin). */
  async function instance(
    name: string,
    placement: { cellId?: string; status?: Record<string, unknown>; owner?: boolean; bare?: boolean } = {},
  ): Promise<IActualLRP> {
    const created = await admin.create('ActualLRP', {
      metadata: {
        name,
        namespace: apps,
        labels: {
          'diego.dev/desired-lrp-uid': uid,
          ...(placement.cellId ? { 'diego.dev/cell-id': placement.cellId } : {}),
        },
        finalizers: [FINALIZER_CONTAINER],
        ...(placement.owner
          ? {
              ownerReferences: [
                {
                  apiVersion: `${GROUP}/${VERSION}`,
                  kind: 'DesiredLRP',
                  name: 'secret-app',
                  uid,
                  blockOwnerDeletion: true,
                },
              ],
            }
          : {}),
      },
      spec: {
        processGuid: 'secret-app',
        index: 0,
        domain: 'cf-apps',
        ...(placement.cellId ? { cellId: placement.cellId } : {}),
      },
    });
    // bare: as the converger creates it now, without a status (UNCLAIMED until claimed).
    if (placement.bare) return created;
    return admin.patchStatus('ActualLRP', { namespace: apps, name }, { presence: 'ORDINARY', ...placement.status });
  }

  const running = (cellId: string, instanceGuid = `guid-${hex()}`) => ({
    state: 'RUNNING',
    cellId,
    instanceGuid,
    since: new Date().toISOString(),
    routable: true,
    netInfo: { address: '10.0.0.5', instanceAddress: '10.255.0.2', ports: [{ containerPort: 8080, hostPort: 61001 }] },
  });

  async function task(
    name: string,
    placement: { cellId?: string; status?: Record<string, unknown> } = {},
  ): Promise<ITask> {
    await admin.create('Task', {
      metadata: { name, namespace: apps },
      spec: {
        taskGuid: `${name}-guid`,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 32,
        action: { run: { path: '/bin/true', user: 'root' } },
        ...(placement.cellId ? { cellId: placement.cellId } : {}),
      },
    });
    const t = await admin.patchStatus('Task', { namespace: apps, name }, { state: 'Pending', ...placement.status });
    return t;
  }

  beforeAll(async () => {
    apps = await createNamespace(kc, 'confine-apps');
    a = await agentOn(A);
    v = await agentOn(V);
    asA = new DiegoClient(a.kc);
    // The secret app: its image credentials are what a node should not read (they live in a Secret: the last test).
    await rawRequest(kc, {
      method: 'POST',
      path: secretPath(apps),
      body: basicAuthSecret(apps, 'secret-app-creds', { username: 'deploy', password: 'hunter2' }),
    });
    const d = await admin.create('DesiredLRP', {
      metadata: { name: 'secret-app', namespace: apps },
      spec: {
        processGuid: 'secret-app',
        domain: 'cf-apps',
        rootFs: 'docker:///registry.example.com/secret-app',
        imageCredentialsSecret: 'secret-app-creds',
        instances: 1,
        memoryMb: 16,
        diskMb: 16,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    uid = d.metadata.uid ?? '';
    // Cell V registers as a cell does, with its own token.
    await registerCell(v.kc, cellSpec(V));
    await renewPresence(v.kc, ns, V, 15);
    await rawRequest(kc, {
      method: 'POST',
      path: leasePath(ns),
      body: {
        metadata: { name: LEADER_LEASE_NAME },
        spec: { holderIdentity: 'controller-0', leaseDurationSeconds: 15, renewTime: microTime(new Date()) },
      },
    });
  });

  afterAll(async () => {
    // Drop the container finalizers nobody runs here, so the namespace can go.
    for (const x of await admin.list('ActualLRP', { namespace: apps })) {
      await admin.patch('ActualLRP', { namespace: apps, name: x.metadata.name! }, { metadata: { finalizers: null } });
    }
    for (const name of [A, V]) await admin.delete('Cell', { name });
    // No presence or leader left behind for the controller of the next block to time out.
    for (const name of [A, V, LEADER_LEASE_NAME]) {
      await rawRequest(kc, { method: 'DELETE', path: leasePath(ns, name) }).catch(() => undefined);
    }
    if (apps) await deleteNamespace(kc, apps);
  });

  it('knows a cell agent by the node its token is bound to', async () => {
    const me = await whoAmI(a.kc);
    expect(me.user).toBe(user('cell-agent'));
    expect(me.extra[NODE_NAME_EXTRA]).toEqual([A]);
    // A token the API server did not bind to a Pod on a node (impersonation here, a legacy Secret token in a
    // cluster) writes nothing: there is no cell to confine it to.
    const unbound = impersonating(kc, { user: user('cell-agent') });
    await refused(registerCell(unbound, cellSpec(A)), 'cell-agent.bound-token');
    await refused(renewPresence(unbound, ns, A, 15), 'cell-agent.bound-token');
  });

  it('registers and renews its own Cell and presence Lease, and marks itself evacuating', async () => {
    await registerCell(a.kc, cellSpec(A));
    await renewPresence(a.kc, ns, A, 15);
    await asA.patchStatus('Cell', { name: A }, { available: { memoryMb: 512, diskMb: 1024, containers: 9 }, tasks: 1 });
    await setCellEvacuating(asA, A, true);
    await setCellEvacuating(asA, A, false);
    expect(await listPresentCells(kc, ns)).toEqual(expect.arrayContaining([A, V]));
  });

  it("refuses writes to another cell's Cell, a Cell claiming 999,999 MB, other placement tags, more available than capacity", async () => {
    await refused(asA.patch('Cell', { name: V }, { spec: { capacity: { memoryMb: 1 } } }), 'cell.own');
    await refused(asA.patchStatus('Cell', { name: V }, { evacuating: true }), 'cell.own');
    const ghost = `ghost-${hex()}`;
    await refused(
      registerCell(a.kc, cellSpec(ghost, { capacity: { memoryMb: 999_999, diskMb: 1024, containers: 10 } })),
      'cell.own',
    );
    // Its own Cell: the capacity this release gives its cells (cellAgent.capacity), no more.
    const message = await refused(
      registerCell(a.kc, cellSpec(A, { capacity: { memoryMb: 999_999, diskMb: 1024, containers: 10 } })),
      'cell.capacity',
    );
    expect(message).toContain("ValidatingAdmissionPolicy '" + release + "-diego-operator-cell-agent-cells'");
    await refused(registerCell(a.kc, cellSpec(A, { placementTags: ['isolation-segment-1'] })), 'cell.placement-tags');
    await refused(
      asA.patchStatus('Cell', { name: A }, { available: { memoryMb: 999_999, diskMb: 1024, containers: 10 } }),
      'cell.available',
    );
    expect((await admin.get('Cell', undefined, V)).spec.capacity.memoryMb).toBe(1024);
  });

  it('lets a cell agent restarted with less capacity register below what it last reported available', async () => {
    await asA.patchStatus('Cell', { name: A }, { available: { memoryMb: 1000, diskMb: 1024, containers: 10 } });
    // A spec write (the chart upgraded with a smaller cellAgent.capacity): its old status cannot make it lie.
    await registerCell(a.kc, cellSpec(A, { capacity: { memoryMb: 512, diskMb: 1024, containers: 10 } }));
    expect((await admin.get('Cell', undefined, A)).spec.capacity.memoryMb).toBe(512);
    // Its next status report must fit the new capacity.
    await refused(
      asA.patchStatus('Cell', { name: A }, { available: { memoryMb: 1000, diskMb: 1024, containers: 10 } }),
      'cell.available',
    );
    await asA.patchStatus('Cell', { name: A }, { available: { memoryMb: 500, diskMb: 1024, containers: 10 } });
  });

  it("refuses writes to another cell's presence Lease and to the controller's leader Lease", async () => {
    await refused(renewPresence(a.kc, ns, V, 3600), 'lease.cell-presence');
    await refused(releasePresence(a.kc, ns, V), 'lease.cell-presence');
    const patch = (name: string, holderIdentity = A) =>
      rawRequest(a.kc, {
        method: 'PATCH',
        path: leasePath(ns, name),
        body: { spec: { holderIdentity } },
        contentType: 'application/merge-patch+json',
      });
    await refused(patch(LEADER_LEASE_NAME), 'lease.cell-presence');
    await refused(
      rawRequest(a.kc, { method: 'DELETE', path: leasePath(ns, LEADER_LEASE_NAME) }),
      'lease.cell-presence',
    );
    // Its own Lease, held in another cell's name (the BBS lists cells by holder).
    await refused(patch(A, V), 'lease.cell-presence');
    await patch(A);
    expect(await listPresentCells(kc, ns)).toContain(V);
  });

  it('holds the controller to its leader Lease and the BBS to its domain Leases (impersonation)', async () => {
    const controller = impersonating(kc, { user: user('controller') });
    const bbs = impersonating(kc, { user: user('bbs') });
    const lease = (name: string, labels: Record<string, string> = {}) => ({
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name, labels },
      spec: { holderIdentity: 'x' },
    });
    await refused(
      rawRequest(controller, { method: 'POST', path: leasePath(ns), body: lease(`other-${hex()}`) }),
      'lease.controller',
    );
    // Update and patch of any other Lease: RBAC names the leader Lease (resourceNames).
    const rbac = await rawRequest(controller, {
      method: 'PATCH',
      path: leasePath(ns, V),
      body: { spec: { holderIdentity: 'controller' } },
      contentType: 'application/merge-patch+json',
    }).catch((e: unknown) => e as KubeError);
    expect(rbac).toBeInstanceOf(KubeError);
    expect((rbac as KubeError).message).toContain('cannot patch resource "leases"');
    await rawRequest(controller, {
      method: 'PATCH',
      path: leasePath(ns, LEADER_LEASE_NAME),
      body: { spec: { leaseDurationSeconds: 15 } },
      contentType: 'application/merge-patch+json',
    });

    await refused(
      rawRequest(bbs, { method: 'POST', path: leasePath(ns), body: lease(`not-a-domain-${hex()}`) }),
      'lease.bbs',
    );
    await refused(
      rawRequest(bbs, { method: 'POST', path: leasePath(ns), body: lease(`bbs-domain-${hex()}`) }), // unlabelled
      'lease.bbs',
    );
    await refused(
      rawRequest(bbs, {
        method: 'PATCH',
        path: leasePath(ns, LEADER_LEASE_NAME),
        body: { spec: { holderIdentity: 'bbs' } },
        contentType: 'application/merge-patch+json',
      }),
      'lease.bbs',
    );
    await upsertDomain(bbs, ns, 'cf-apps', 0);
    await upsertDomain(bbs, ns, 'cf-apps', 120);

    // Locket locks (src/bbs/locket.ts): claimed, renewed and released as the BBS's ServiceAccount, under RBAC and the
    // policy; a locket-* Lease without its label, or a delete of another Lease, is refused.
    const locket = new LocketStore(bbs, new DiegoClient(bbs), ns, log);
    await locket.start();
    try {
      const claim = (owner: string, value: string) =>
        create(LockRequestSchema, {
          resource: { key: 'confined-lock', owner, value, typeCode: TypeCode.LOCK },
          ttlInSeconds: 30n,
        });
      await locket.lock(claim('bbs-a', 'v1'));
      await locket.lock(claim('bbs-a', 'v2'));
      await expect(locket.lock(claim('bbs-b', 'v3'))).rejects.toMatchObject({ message: 'lock-collision' });
      expect(await locket.fetch('confined-lock')).toMatchObject({ owner: 'bbs-a', value: 'v2' });
      await locket.release(create(ReleaseRequestSchema, { resource: { key: 'confined-lock', owner: 'bbs-a' } }));
      await expect(locket.fetch('confined-lock')).rejects.toMatchObject({ message: 'resource-not-found' });
    } finally {
      await locket.stop();
    }
    await refused(
      rawRequest(bbs, { method: 'POST', path: leasePath(ns), body: lease(`locket-${hex()}`) }), // unlabelled
      'lease.bbs',
    );
    await refused(rawRequest(bbs, { method: 'DELETE', path: leasePath(ns, LEADER_LEASE_NAME) }), 'lease.bbs');
    // A lock that also claims to be a cell's presence (the controller would count a dead cell present).
    await refused(
      rawRequest(bbs, {
        method: 'POST',
        path: leasePath(ns),
        body: lease(`locket-${hex()}`, { 'diego.dev/locket': 'true', 'diego.dev/cell-presence': 'true' }),
      }),
      'lease.bbs',
    );
    // A locket-* Lease the BBS did not make (no label) is not its to take over by labelling it.
    const foreign = `locket-${hex()}`;
    await rawRequest(kc, { method: 'POST', path: leasePath(ns), body: lease(foreign) });
    await refused(
      rawRequest(bbs, {
        method: 'PATCH',
        path: leasePath(ns, foreign),
        body: { metadata: { labels: { 'diego.dev/locket': 'true' } }, spec: { holderIdentity: 'bbs' } },
        contentType: 'application/merge-patch+json',
      }),
      'lease.bbs',
    );
  });

  it("refuses to claim, run, move, crash or delete another cell's instances (RUNNING at its own address: a traffic hijack)", async () => {
    const victim = await instance(`victim-${hex()}`, { cellId: V, status: running(V) });
    const hijack = {
      ...running(A),
      netInfo: { address: '203.0.113.66', ports: [{ containerPort: 8080, hostPort: 61001 }] },
    };
    const ref = { namespace: apps, name: victim.metadata.name! };
    await refused(asA.patchStatus('ActualLRP', ref, hijack), 'actuallrp.own-cell');
    await refused(asA.patchStatus('ActualLRP', ref, { netInfo: hijack.netInfo }), 'actuallrp.own-cell');
    await refused(asA.patch('ActualLRP', ref, placementPatch(A)), 'actuallrp.own-cell');
    await refused(asA.patchStatus('ActualLRP', ref, crashedStatus(victim, 'forged')), 'actuallrp.own-cell');
    await refused(asA.delete('ActualLRP', ref), 'actuallrp.own-cell');
    // Work waiting for placement is not its to take either.
    const waiting = await instance(`waiting-${hex()}`, { status: { state: 'UNCLAIMED' } });
    const wref = { namespace: apps, name: waiting.metadata.name! };
    await refused(asA.patch('ActualLRP', wref, placementPatch(A)), 'actuallrp.own-cell');
    await refused(
      asA.patchStatus('ActualLRP', wref, { state: 'CLAIMED', cellId: A, instanceGuid: 'g' }),
      'actuallrp.own-cell',
    );
    // Nor is a copy of another cell's instance (an EVACUATING copy serves the app's routes too).
    const copy = {
      metadata: { name: evacuatingName(victim.metadata.name!), namespace: apps },
      spec: { ...victim.spec, cellId: V },
    };
    await refused(asA.create('ActualLRP', copy), 'actuallrp.create');
    await refused(
      asA.create('ActualLRP', {
        metadata: { name: `rogue-${hex()}`, namespace: apps },
        spec: { ...victim.spec, cellId: A },
      }),
      'actuallrp.create',
    );
    const after = await admin.get('ActualLRP', apps, victim.metadata.name!);
    expect(after.spec.cellId).toBe(V);
    expect(after.status?.netInfo?.address).toBe('10.0.0.5');
  });

  it('refuses what a rep never does to its own instances: report another cell, place them elsewhere, change presence or owner', async () => {
    const own = await instance(`own-${hex()}`, { cellId: A, status: running(A) });
    const ref = { namespace: apps, name: own.metadata.name! };
    await refused(asA.patchStatus('ActualLRP', ref, { cellId: V }), 'actuallrp.status-cell');
    await refused(asA.patch('ActualLRP', ref, placementPatch(V)), 'actuallrp.placement');
    await refused(asA.patchStatus('ActualLRP', ref, { presence: 'SUSPECT' }), 'actuallrp.presence');
    await refused(
      asA.patch('ActualLRP', ref, { metadata: { labels: { 'diego.dev/desired-lrp-uid': 'another-app' } } }),
      'actuallrp.metadata',
    );
    await refused(
      asA.patch('ActualLRP', ref, { metadata: { finalizers: [FINALIZER_CONTAINER, 'x/y'] } }),
      'actuallrp.metadata',
    );
    const crashed = await instance(`crashed-${hex()}`, {
      cellId: A,
      status: { state: 'CRASHED', crashCount: 3, crashReason: 'exit 1' },
    });
    await refused(asA.patchStatus('ActualLRP', refOf(crashed), running(A)), 'actuallrp.transition');
  });

  it("does a rep's own instance writes: claim, run, readiness, crash, hand-back, unclaim, evacuation copy, release", async () => {
    const me = await instance(`mine-${hex()}`, { cellId: A, status: { state: 'UNCLAIMED' } });
    const ref = { namespace: apps, name: me.metadata.name! };
    const guid = `guid-${hex()}`;
    await asA.patchStatus('ActualLRP', ref, { state: 'CLAIMED', cellId: A, instanceGuid: guid, placementError: null });
    await asA.patchStatus('ActualLRP', ref, { ...running(A, guid), routable: false });
    await asA.patchStatus('ActualLRP', ref, { routable: true });
    const current = await admin.get('ActualLRP', apps, ref.name);
    await asA.patchStatus('ActualLRP', refOf(current), crashedStatus(current, 'exit status 1'));
    expect((await admin.get('ActualLRP', apps, ref.name)).status).toMatchObject({ state: 'CRASHED', crashCount: 1 });

    // An instance created on this cell in one write has no status yet: UNCLAIMED, so the cell claims it. A copy
    // without its status (a SUSPECT the converger is making) is not an instance to claim.
    const created = await instance(`created-${hex()}`, { cellId: A, bare: true });
    expect(created.status).toBeUndefined();
    const claimedNew = await asA.patchStatus('ActualLRP', refOf(created), {
      state: 'CLAIMED',
      cellId: A,
      instanceGuid: guid,
    });
    expect(claimedNew.status?.state).toBe('CLAIMED');
    const bareCopy = await instance(suspectName(`copy-${hex()}-0`), { cellId: A, bare: true });
    await refused(
      asA.patchStatus('ActualLRP', refOf(bareCopy), { state: 'CLAIMED', cellId: A, instanceGuid: guid }),
      'actuallrp.transition',
    );

    // The rep cannot fit it: back to the auction, with the reason (and this cell) in placementError.
    const unfit = await instance(`unfit-${hex()}`, { cellId: A, status: { state: 'UNCLAIMED' } });
    expect(await handBackLRP(asA, unfit, A, 'insufficient resources: memory', { log })).toBe(true);
    const back = await admin.get('ActualLRP', apps, unfit.metadata.name!);
    expect(back.spec.cellId).toBeUndefined();
    expect(back.status?.placementError).toBe(`insufficient resources: memory on cell ${A}`);

    // Bulk sync: a RUNNING instance whose container is gone goes back to UNCLAIMED (placement first, then status).
    const lost = await instance(`lost-${hex()}`, { cellId: A, status: running(A) });
    const moved = await asA.patch('ActualLRP', refOf(lost), placementPatch(null));
    await asA.patchStatus('ActualLRP', refOf(moved), {
      state: 'UNCLAIMED',
      instanceGuid: null,
      cellId: null,
      netInfo: null,
      routable: null,
    });

    // Evacuation: an EVACUATING copy of its running instance, the ORDINARY record unclaimed; the copy removed later.
    const evacGuid = `guid-${hex()}`;
    const evac = await instance(`evac-${hex()}`, { cellId: A, status: running(A, evacGuid), owner: true });
    expect(await evacuateRunning(asA, apps, evac.metadata.name!, { instanceGuid: evacGuid, cellId: A })).toBe(true);
    const copy = await admin.get('ActualLRP', apps, evacuatingName(evac.metadata.name!));
    expect(copy.spec.cellId).toBe(A);
    expect(copy.status).toMatchObject({ state: 'RUNNING', presence: 'EVACUATING', cellId: A, instanceGuid: evacGuid });
    const ordinary = await admin.get('ActualLRP', apps, evac.metadata.name!);
    expect(ordinary.spec.cellId).toBeUndefined();
    expect(ordinary.status?.state).toBe('UNCLAIMED');
    // The unclaim says who evacuated it (what vouches for the copy to the converger): the policy lets it through.
    expect(ordinary.status?.evacuatedBy).toEqual({ cellId: A, instanceGuid: evacGuid });
    await removeEvacuating(asA, copy, true);
    await eventually(async () =>
      expect(await admin.list('ActualLRP', { namespace: apps })).not.toContainEqual(
        expect.objectContaining({ metadata: expect.objectContaining({ name: copy.metadata.name }) }),
      ),
    );
    // Stop, then remove: the rep releases its container finalizer on a record being deleted.
    const gone = await instance(`gone-${hex()}`, { cellId: A, status: running(A) });
    await admin.delete('ActualLRP', refOf(gone));
    const deleting = await admin.get('ActualLRP', apps, gone.metadata.name!);
    await asA.patch('ActualLRP', refOf(deleting), { metadata: { finalizers: [] } });
  });

  it("refuses status.evacuatedBy naming another cell or another instance, and changes to another cell's", async () => {
    const guid = `guid-${hex()}`;
    const own = await instance(`evby-${hex()}`, { cellId: A, status: running(A, guid) });
    const ref = { namespace: apps, name: own.metadata.name! };
    // Vouching for a copy on V (or for an instance this record never had) would let a forged copy pass.
    await refused(
      asA.patchStatus('ActualLRP', ref, { evacuatedBy: { cellId: V, instanceGuid: guid } }),
      'actuallrp.evacuated-by',
    );
    await refused(
      asA.patchStatus('ActualLRP', ref, { evacuatedBy: { cellId: A, instanceGuid: 'guid-never-here' } }),
      'actuallrp.evacuated-by',
    );
    // Its own evacuation of the instance it holds is allowed (the unclaim that follows its EVACUATING copy).
    await asA.patchStatus('ActualLRP', ref, { evacuatedBy: { cellId: A, instanceGuid: guid } });
    // V evacuated this one; A claimed the replacement: A may not remove or rewrite V's evacuation.
    const vGuid = `guid-${hex()}`;
    const claimedHere = await instance(`evby-v-${hex()}`, {
      cellId: A,
      status: {
        state: 'CLAIMED',
        cellId: A,
        instanceGuid: `guid-${hex()}`,
        evacuatedBy: { cellId: V, instanceGuid: vGuid },
      },
    });
    const cref = { namespace: apps, name: claimedHere.metadata.name! };
    await refused(asA.patchStatus('ActualLRP', cref, { evacuatedBy: null }), 'actuallrp.evacuated-by');
    await refused(
      asA.patchStatus('ActualLRP', cref, { evacuatedBy: { cellId: V, instanceGuid: 'guid-other' } }),
      'actuallrp.evacuated-by',
    );
    // Its ordinary writes of that record (start, crash) keep V's evacuation: status writes are merge patches.
    await asA.patchStatus('ActualLRP', cref, { ...running(A, claimedHere.status!.instanceGuid) });
    expect((await admin.get('ActualLRP', apps, cref.name)).status?.evacuatedBy).toEqual({
      cellId: V,
      instanceGuid: vGuid,
    });
  });

  it("refuses to start or complete another cell's Task (a forged result), to cancel, place or forge a result for its own", async () => {
    const theirs = await task(`theirs-${hex()}`, { cellId: V, status: { state: 'Running', cellId: V } });
    const forged = { state: 'Completed', failed: false, result: 'forged', cellId: null };
    await refused(asA.patchStatus('Task', refOf(theirs), forged), 'task.own-cell');
    await refused(asA.patch('Task', refOf(theirs), placementPatch(null)), 'task.own-cell');
    const pendingThere = await task(`pending-there-${hex()}`, { cellId: V });
    await refused(startTask(asA, pendingThere, V), 'task.own-cell');
    const unplaced = await task(`unplaced-${hex()}`);
    await refused(asA.patch('Task', refOf(unplaced), placementPatch(A)), 'task.own-cell');
    await refused(asA.patchStatus('Task', refOf(unplaced), { state: 'Completed', failed: true }), 'task.own-cell');

    const mine = await task(`mine-${hex()}`, { cellId: A });
    await refused(asA.patchStatus('Task', refOf(mine), forged), 'task.fail-pending');
    await refused(asA.patch('Task', refOf(mine), { spec: { cancelled: true } }), 'task.cancel');
    await refused(asA.patch('Task', refOf(mine), placementPatch(V)), 'task.placement');
    await refused(asA.patchStatus('Task', refOf(mine), { state: 'Running', cellId: V }), 'task.status-cell');
    expect((await admin.get('Task', apps, theirs.metadata.name!)).status).toMatchObject({
      state: 'Running',
      cellId: V,
    });
  });

  it("does a rep's own task writes: start, complete with a result, reject a failed start back to Pending", async () => {
    const t = await task(`run-${hex()}`, { cellId: A });
    expect(await startTask(asA, t, A)).toBe(true);
    const started = await admin.get('Task', apps, t.metadata.name!);
    await completeTask(asA, started, A, { failed: false, result: '42' });
    expect((await admin.get('Task', apps, t.metadata.name!)).status).toMatchObject({
      state: 'Completed',
      failed: false,
      result: '42',
    });
    // A container that could not be created (retryable): rejected back to Pending, off this cell, counted.
    const r = await task(`reject-${hex()}`, { cellId: A });
    await startTask(asA, r, A);
    const runningHere = await admin.get('Task', apps, r.metadata.name!);
    expect(await rejectTask(asA, runningHere, A, 'failed to create container', { log })).toBe(true);
    const rejected = await admin.get('Task', apps, r.metadata.name!);
    expect(rejected.spec.cellId).toBeUndefined();
    expect(rejected.status).toMatchObject({ state: 'Pending', rejectionCount: 1 });
  });

  it('hands back a Pending task that does not fit, counting the rejection while the task is still its own', async () => {
    // The rep records the rejection while the task is still placed here, then clears the placement (lifecycle
    // rejectTask): both writes are to its own work. A status write to work on no cell stays refused: it would let
    // any node fail any waiting task.
    const t = await task(`nofit-${hex()}`, { cellId: A });
    expect(await rejectTask(asA, t, A, 'insufficient resources: memory', { log })).toBe(true);
    const after = await admin.get('Task', apps, t.metadata.name!);
    expect(after.spec.cellId).toBeUndefined();
    expect(after.status?.state).toBe('Pending');
    expect(after.status?.rejectionCount).toBe(1);
    await refused(asA.patchStatus('Task', refOf(after), { rejectionCount: 2 }), 'task.own-cell');
  });

  it('reads DesiredLRPs but no image credentials: they are in a Secret it cannot read (docs/security.md)', async () => {
    // RBAC cannot filter reads by field or by placement, so the credentials left the DesiredLRP for a Secret; the
    // cell the work is placed on gets them from the controller (test/integration/image-credentials.test.ts).
    const d = await asA.get('DesiredLRP', apps, 'secret-app');
    expect(d.spec.imagePassword).toBeUndefined();
    expect(d.spec.imageCredentialsSecret).toBe('secret-app-creds');
    const read = await rawRequest(a.kc, { method: 'GET', path: secretPath(apps, 'secret-app-creds') }).catch(
      (e: unknown) => e,
    );
    expect(read).toBeInstanceOf(KubeError);
    expect((read as KubeError).code).toBe(403);
  });
});

describe('real reps confined to their cells run an app and a task, and evacuate', () => {
  let apps = '';
  let manager: Manager | undefined;
  const reps: Rep[] = [];
  const cells = [`cell-x-${hex()}`, `cell-y-${hex()}`];
  const dirs: string[] = [];
  const client = admin;

  async function startRep(cellId: string, agentKc: KubeConfig): Promise<Rep> {
    const stateDir = mkdtempSync(path.join(tmpdir(), 'confine-cell-'));
    dirs.push(stateDir);
    const rep = await startCellAgent(agentKc, {
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
      evacuationTimeoutMs: 60_000,
    });
    reps.push(rep);
    return rep;
  }

  beforeAll(async () => {
    apps = await createNamespace(kc, 'confine-run');
    manager = new Manager({ kc: impersonating(kc, { user: user('controller') }), log, systemNamespace: ns });
    await manager.start();
    for (const cellId of cells) await startRep(cellId, (await agentOn(cellId)).kc);
  });

  afterAll(async () => {
    for (const rep of reps) await rep.stop().catch(() => undefined);
    await manager?.stop();
    for (const name of cells) await admin.delete('Cell', { name });
    if (apps) await deleteNamespace(kc, apps);
    for (const d of dirs) rmSync(d, { recursive: true, force: true });
  });

  it('runs an app on both cells and a task to completion, each rep writing only its own', async () => {
    await client.create('DesiredLRP', {
      metadata: { name: 'web', namespace: apps },
      spec: {
        processGuid: 'web',
        domain: 'cf-apps',
        rootFs: 'preloaded:busybox',
        instances: 2,
        memoryMb: 16,
        diskMb: 16,
        action: { run: { path: '/bin/sleep', args: ['600'], user: 'root' } },
      },
    });
    await client.create('Task', {
      metadata: { name: 'once', namespace: apps },
      spec: {
        taskGuid: 'once',
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        memoryMb: 16,
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });
    await eventually(async () => {
      const instances = await client.list('ActualLRP', { namespace: apps });
      expect(instances.map((x) => x.status?.state)).toEqual(['RUNNING', 'RUNNING']);
      for (const x of instances) {
        expect(cells).toContain(x.spec.cellId);
        expect(x.status?.cellId).toBe(x.spec.cellId);
      }
    }, 60_000);
    await eventually(async () => {
      const t = await client.get('Task', apps, 'once');
      expect(t.status).toMatchObject({ state: 'Completed', failed: false });
    }, 60_000);
    for (const name of cells) {
      const cell = await client.get('Cell', undefined, name);
      expect(cell.spec.cellId).toBe(name);
    }
  }, 120_000);

  it('evacuates a cell: an EVACUATING copy serves until the instance runs on the other cell', async () => {
    const [first] = await client.list('ActualLRP', { namespace: apps });
    const from = first!.spec.cellId!;
    const rep = reps[cells.indexOf(from)]!;
    const result = await rep.evacuate();
    expect(result.timedOut).toBe(false);
    await eventually(async () => {
      const instances = await client.list('ActualLRP', { namespace: apps });
      expect(instances.map((x) => x.metadata.name).sort()).toEqual(['web-0', 'web-1']);
      for (const x of instances) {
        expect(x.status?.state).toBe('RUNNING');
        expect(x.spec.cellId).not.toBe(from);
        // Who evacuated it is forgotten once the replacement runs (the converger's write).
        expect(x.status?.evacuatedBy).toBeUndefined();
      }
    }, 60_000);
  }, 120_000);

  it("removes a node's forged EVACUATING copy of another cell's instance, instance guid and all (docs/security.md)", async () => {
    // Node F (present, no rep running: a compromised node's agent does what it likes) copies web-0, RUNNING on
    // another cell, as its own EVACUATING copy with web-0's instance guid, at its own address: admission allows it
    // (it cannot read the ORDINARY record), the converger finds nothing vouching for it and removes it.
    const F = `cell-f-${hex()}`;
    const f = await agentOn(F);
    const asF = new DiegoClient(f.kc);
    await renewPresence(f.kc, ns, F, 3600);
    try {
      const victim = await client.get('ActualLRP', apps, 'web-0');
      const { cellId, instanceGuid } = victim.status ?? {};
      expect(victim.status?.state).toBe('RUNNING');
      expect(cellId).not.toBe(F);
      const name = evacuatingName('web-0');
      await asF.create('ActualLRP', {
        metadata: {
          name,
          namespace: apps,
          labels: victim.metadata.labels,
          ownerReferences: victim.metadata.ownerReferences,
          finalizers: [FINALIZER_CONTAINER],
        },
        spec: { ...victim.spec, cellId: F },
      });
      await asF.patchStatus(
        'ActualLRP',
        { namespace: apps, name },
        {
          state: 'RUNNING',
          presence: 'EVACUATING',
          cellId: F,
          instanceGuid,
          routable: true,
          netInfo: { address: '203.0.113.66', ports: [{ containerPort: 8080, hostPort: 61001 }] },
        },
      );
      // Gone for good: deleted, and its container finalizer released by the converger (F never will).
      await eventually(async () => {
        const names = (await client.list('ActualLRP', { namespace: apps })).map((x) => x.metadata.name);
        expect(names).not.toContain(name);
      }, 60_000);
      const after = await client.get('ActualLRP', apps, 'web-0');
      expect(after.status).toMatchObject({ state: 'RUNNING', cellId, instanceGuid });
      const d = await client.get('DesiredLRP', apps, 'web');
      await eventually(async () => {
        const events = await rawRequest<{
          items: { reason?: string; type?: string; message?: string; involvedObject?: { uid?: string } }[];
        }>(kc, { method: 'GET', path: `/api/v1/namespaces/${apps}/events` });
        const forged = events.items.filter((e) => e.reason === 'ForgedEvacuatingCopy');
        expect(forged).toContainEqual(
          expect.objectContaining({
            type: 'Warning',
            involvedObject: expect.objectContaining({ uid: d.metadata.uid }),
          }),
        );
        expect(forged[0]?.message).toContain(F);
      }, 30_000);
    } finally {
      await releasePresence(f.kc, ns, F).catch(() => undefined);
    }
  }, 120_000);
});
