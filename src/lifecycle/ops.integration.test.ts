// The fenced operations against a real API server: lost races come back as `moved-on` (never an overwrite, never a
// throw), and a writer whose instance key is stale is refused before it writes.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { IActualLRP, ITask } from '../crds/models.ts';
import { DiegoClient, refOf } from '../lib/resources.ts';
import { createNamespace, deleteNamespace, testKubeConfig } from '../../test/support/kube.ts';
import { type InstanceKey, presenceOf } from './actual-lrp.ts';
import { FINALIZER_CONTAINER, placementPatch } from './names.ts';
import {
  claim,
  completeTask,
  crash,
  failTask,
  promoteSuspect,
  rejectTask,
  releaseContainer,
  remove,
  removeCopy,
  setRoutable,
  start,
  startTask,
  unclaim,
} from './ops.ts';

const kc = testKubeConfig();
const client = new DiegoClient(kc);
let ns = '';
let n = 0;

beforeAll(async () => {
  ns = await createNamespace(kc, 'lifecycle-ops');
});
afterAll(async () => {
  await deleteNamespace(kc, ns);
});

const A: InstanceKey = { instanceGuid: 'guid-a', cellId: 'cell-a' };
const B: InstanceKey = { instanceGuid: 'guid-b', cellId: 'cell-b' };
const net = {
  netInfo: { address: '10.0.0.1', ports: [{ containerPort: 8080, hostPort: 61001 }] },
  routable: true,
  availabilityZone: 'z1',
};

/** A fresh UNCLAIMED ORDINARY record with the container finalizer, placed on `cellId` when given. */
async function instance(cellId?: string, name = `web${++n}-0`): Promise<IActualLRP> {
  const created = await client.create('ActualLRP', {
    metadata: { name, namespace: ns, finalizers: [FINALIZER_CONTAINER] },
    spec: { processGuid: `web${n}`, index: 0, domain: 'cf-apps' },
  });
  return cellId ? client.patch('ActualLRP', refOf(created), placementPatch(cellId)) : created;
}

const get = (a: IActualLRP) => client.get('ActualLRP', ns, a.metadata.name ?? '');
const value = <T>(o: { outcome: string; value?: T }): T => {
  expect(o.outcome).toBe('done');
  return o.value as T;
};

describe('ActualLRP operations', () => {
  it('claim: of two cells racing on the same version exactly one wins; the other is told it moved on', async () => {
    const seen = await instance('cell-a');
    const [first, second] = await Promise.all([
      claim(client, seen, A, Date.now()),
      claim(client, seen, { ...A, instanceGuid: 'guid-a2' }, Date.now()),
    ]);
    expect([first.outcome, second.outcome].sort()).toEqual(['done', 'moved-on']);
    const winner = first.outcome === 'done' ? A.instanceGuid : 'guid-a2';
    expect((await get(seen)).status).toMatchObject({ state: 'CLAIMED', instanceGuid: winner, cellId: 'cell-a' });
  });

  it('claim: only the cell the record is placed on; claiming again with the same key writes nothing', async () => {
    const seen = await instance('cell-a');
    expect(await claim(client, seen, B, Date.now())).toMatchObject({ outcome: 'refused', rule: 'placement' });
    const claimed = value(await claim(client, seen, A, Date.now()));
    const again = value(await claim(client, claimed, A, Date.now()));
    expect(again.metadata.resourceVersion).toBe(claimed.metadata.resourceVersion);
    // Another instance guid on the same cell cannot take a claimed record (Diego: CLAIMED → CLAIMED same key only).
    expect(await claim(client, claimed, { ...A, instanceGuid: 'guid-x' }, Date.now())).toMatchObject({
      outcome: 'refused',
      rule: 'transition',
    });
  });

  it('a stale instance key is refused: start, crash, readiness and a hand-back of a record re-claimed since', async () => {
    const seen = await instance('cell-a');
    const claimedOld = value(await claim(client, seen, A, Date.now()));
    // The record goes back to the auction and this cell claims it again as a new container.
    const back = value(await unclaim(client, claimedOld, { now: Date.now() }));
    const placed = await client.patch('ActualLRP', refOf(back), placementPatch('cell-a'));
    const fresh = value(await claim(client, placed, { ...A, instanceGuid: 'guid-new' }, Date.now()));
    const before = fresh.metadata.resourceVersion;
    // The old container (guid-a) reports against the newest version: each write is refused before it is sent.
    for (const o of [
      await start(client, fresh, A, net, { now: Date.now(), claim: 'own' }),
      await crash(client, fresh, A, 'exited', { now: Date.now() }),
      await setRoutable(client, fresh, A, true),
      await unclaim(client, fresh, { now: Date.now(), owner: A }),
      await remove(client, fresh, { owner: A, containerGone: true }),
    ])
      expect(o).toMatchObject({ outcome: 'refused', rule: 'instance-key' });
    expect((await get(fresh)).metadata.resourceVersion).toBe(before);
  });

  it('start and crash: RUNNING as the claiming container, a heartbeat writes nothing, a crash counts', async () => {
    const claimed = value(await claim(client, await instance('cell-a'), A, Date.now()));
    const running = value(await start(client, claimed, A, net, { now: Date.now(), claim: 'own' }));
    expect(running.status).toMatchObject({ state: 'RUNNING', instanceGuid: 'guid-a', routable: true });
    const beat = value(await start(client, running, A, net, { now: Date.now(), claim: 'own' }));
    expect(beat.metadata.resourceVersion).toBe(running.metadata.resourceVersion);
    const crashed = value(await crash(client, running, A, 'APP/PROC/WEB: Exited with status 1', { now: Date.now() }));
    expect(crashed.status).toMatchObject({
      state: 'CRASHED',
      crashCount: 1,
      crashReason: 'APP/PROC/WEB: Exited with status 1',
    });
    expect(crashed.status?.instanceGuid).toBeUndefined();
    // Crashed records hold no instance: a second report of the same container is refused.
    expect(await crash(client, crashed, A, 'again', { now: Date.now() })).toMatchObject({ outcome: 'refused' });
  });

  it('a write from a version that moved on is not applied (moved-on), never thrown', async () => {
    const stale = await instance('cell-a');
    value(await claim(client, stale, A, Date.now()));
    expect(await unclaim(client, stale, { now: Date.now() })).toMatchObject({ outcome: 'moved-on', why: 'changed' });
    expect((await get(stale)).status?.state).toBe('CLAIMED');
  });

  it('unclaim: off its cell and UNCLAIMED with one field set', async () => {
    const claimed = value(await claim(client, await instance('cell-a'), A, Date.now()));
    const running = value(await start(client, claimed, A, net, { now: Date.now(), claim: 'own' }));
    const back = value(await unclaim(client, running, { now: Date.now(), owner: A }));
    expect(back.spec.cellId).toBeUndefined();
    expect(back.metadata.labels?.['diego.dev/cell-id']).toBeUndefined();
    expect(back.status?.state).toBe('UNCLAIMED');
    expect(presenceOf(back)).toBe('ORDINARY'); // created without a status: ORDINARY by its name
    for (const f of ['instanceGuid', 'cellId', 'netInfo', 'routable', 'placementError'] as const)
      expect(back.status?.[f]).toBeUndefined();
  });

  it('releaseContainer: re-reads when its compare-and-swap loses, and refuses while a live cell may run it', async () => {
    const a = await instance('cell-a');
    await client.delete('ActualLRP', refOf(a));
    // Someone writes meanwhile: the version this caller saw is stale.
    await client.patch(
      'ActualLRP',
      { namespace: ns, name: a.metadata.name ?? '' },
      { metadata: { labels: { x: 'y' } } },
    );
    expect(await releaseContainer(client, a, () => false)).toMatchObject({ outcome: 'refused', rule: 'container' });
    expect((await get(a)).metadata.finalizers).toContain(FINALIZER_CONTAINER);
    expect((await releaseContainer(client, a)).outcome).toBe('done');
    await expect(get(a)).rejects.toThrow(/404/);
  });

  it("removeCopy: removes its own copy, and refuses another cell's copy that took the name since it was read", async () => {
    const copyOn = async (key: InstanceKey) => {
      const c = await client.create('ActualLRP', {
        metadata: { name: 'app-0-evacuating', namespace: ns, finalizers: [FINALIZER_CONTAINER] },
        spec: { processGuid: 'app', index: 0, domain: 'cf-apps', cellId: key.cellId },
      });
      return client.patchStatus('ActualLRP', refOf(c), { state: 'RUNNING', presence: 'EVACUATING', ...key });
    };
    const stale = await copyOn(A);
    value(await removeCopy(client, stale, { containerGone: true }));
    await copyOn(B);
    expect(await removeCopy(client, stale, { containerGone: true })).toMatchObject({ outcome: 'refused' });
    const kept = await client.get('ActualLRP', ns, 'app-0-evacuating');
    expect(kept.status?.cellId).toBe('cell-b');
    expect(kept.metadata.deletionTimestamp).toBeUndefined();
    value(await removeCopy(client, kept, { containerGone: true }));
    await expect(client.get('ActualLRP', ns, 'app-0-evacuating')).rejects.toThrow(/404/);
  });

  it('promoteSuspect: only over an UNCLAIMED replacement, a compare-and-swap a claiming cell wins', async () => {
    const ordinary = await instance(undefined, 'promo-0');
    const suspectObj = await client.create('ActualLRP', {
      metadata: { name: 'promo-0-suspect', namespace: ns, finalizers: [FINALIZER_CONTAINER] },
      spec: { processGuid: ordinary.spec.processGuid, index: 0, domain: 'cf-apps', cellId: 'cell-a' },
    });
    const suspect = await client.patchStatus('ActualLRP', refOf(suspectObj), {
      state: 'RUNNING',
      presence: 'SUSPECT',
      ...A,
      netInfo: net.netInfo,
    });
    // The replacement is placed and claimed on cell-b first: the promotion is refused, the claim stands.
    const placed = await client.patch('ActualLRP', refOf(ordinary), placementPatch('cell-b'));
    expect(await promoteSuspect(client, ordinary, suspect)).toMatchObject({ outcome: 'moved-on' });
    const claimedB = value(await claim(client, placed, B, Date.now()));
    expect(await promoteSuspect(client, claimedB, suspect)).toMatchObject({ outcome: 'refused', rule: 'transition' });
    expect((await get(claimedB)).status).toMatchObject({ state: 'CLAIMED', instanceGuid: 'guid-b' });
    // Handed back before any claim: the suspect comes back as the ORDINARY record, on its cell.
    const back = value(await unclaim(client, claimedB, { now: Date.now() }));
    const promotedRecord = value(await promoteSuspect(client, back, suspect));
    expect(promotedRecord.spec.cellId).toBe('cell-a');
    expect(promotedRecord.status).toMatchObject({ state: 'RUNNING', presence: 'ORDINARY', instanceGuid: 'guid-a' });
  });
});

describe('Task operations', () => {
  async function pending(cellId?: string): Promise<ITask> {
    const t = await client.create('Task', {
      metadata: { name: `task${++n}`, namespace: ns },
      spec: {
        taskGuid: `task-guid-${n}`,
        domain: 'cf-tasks',
        rootFs: 'preloaded:busybox',
        action: { run: { path: '/bin/true', user: 'root' } },
      },
    });
    let p = await client.patchStatus('Task', refOf(t), { state: 'Pending', rejectionCount: 0 });
    if (cellId) p = await client.patch('Task', refOf(p), placementPatch(cellId));
    return p;
  }

  it('start: at most once — two starts of the same version, one wins; an unplaced cell is refused', async () => {
    const t = await pending('cell-a');
    expect(await startTask(client, t, 'cell-b', new Date())).toMatchObject({ outcome: 'refused', rule: 'placement' });
    const results = await Promise.all([
      startTask(client, t, 'cell-a', new Date()),
      startTask(client, t, 'cell-a', new Date()),
    ]);
    expect(results.map((r) => r.outcome).sort()).toEqual(['done', 'moved-on']);
    const won = results.find((r) => r.outcome === 'done');
    expect(won).toMatchObject({ value: { shouldStart: true } });
    const again = await startTask(client, await client.get('Task', ns, t.metadata.name ?? ''), 'cell-a', new Date());
    expect(again).toMatchObject({ outcome: 'done', value: { shouldStart: false } });
  });

  it('complete: only by the cell it runs on; a completed task cannot fail again', async () => {
    const t = await pending('cell-a');
    const { task } = value(await startTask(client, t, 'cell-a', new Date()));
    expect(await completeTask(client, task, 'cell-b', { failed: false }, new Date())).toMatchObject({
      outcome: 'refused',
      rule: 'other-cell',
    });
    const completed = value(await completeTask(client, task, 'cell-a', { failed: false, result: 'ok' }, new Date()));
    expect(completed.status).toMatchObject({ state: 'Completed', failed: false, result: 'ok' });
    expect(await failTask(client, completed, 'late', new Date())).toMatchObject({
      outcome: 'refused',
      rule: 'transition',
    });
  });

  it("reject: only a cell's own work; back to the auction, off the cell, counted", async () => {
    const t = await pending('cell-a');
    expect(await rejectTask(client, t, 'no room', { maxRetries: 3, now: new Date(), byCell: 'cell-b' })).toMatchObject({
      outcome: 'refused',
      rule: 'placement',
    });
    const rejected = value(
      await rejectTask(client, t, 'no room', { maxRetries: 3, now: new Date(), byCell: 'cell-a' }),
    );
    expect(rejected.spec.cellId).toBeUndefined();
    expect(rejected.status).toMatchObject({ state: 'Pending', rejectionCount: 1, rejectionReason: 'no room' });
  });
});
