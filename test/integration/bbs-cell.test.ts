// The cell-side BBS routes a Diego rep and auctioneer call (claim/start/crash/fail/remove, task
// start/complete/reject/fail), route-emitter's routing infos and the deprecated ActualLRP group reads, against
// the real API server with the controllers running. The simulated cell only registers and holds its Lease: the
// test plays the rep through the facade.
import { randomBytes } from 'node:crypto';
import type { MessageInitShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import * as m from '../../src/bbs/models.ts';
import { taskRequestInit, useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { stateOf } from '../../src/lifecycle/actual-lrp.ts';

const env = useDiego('bbs-cell', { convergeIntervalMs: 1000 });
const { bbs, placedLRP: placed } = useBbsApp(env, { maxTaskRetries: 1 });
const E = m.Error_Type;

const lifecycle = <S extends Parameters<typeof bbs>[1]>(path: string, schema: S, req: MessageInitShape<S>) =>
  bbs(path, schema, req, m.ActualLRPLifecycleResponseSchema);

const placedLRP = (cellId: string, instances: number) =>
  placed('cell-app', cellId, instances, {
    metricTags: { source_id: { static: 'src' } },
    ports: [8080],
    routes: { routes: { 'cf-router': new TextEncoder().encode('[{"hostnames":["a.example"],"port":8080}]') } },
  });

async function actual(guid: string, index: number): Promise<m.ActualLRP | undefined> {
  const res = await bbs(
    '/v1/actual_lrps/list',
    m.ActualLRPsRequestSchema,
    { processGuid: guid, optionalIndex: { case: 'index', value: index } },
    m.ActualLRPsResponseSchema,
  );
  return res.actualLrps.find((a) => a.presence === m.ActualLRP_Presence.ORDINARY);
}

describe('BBS cell-side ActualLRP routes', () => {
  it('claims, starts, crashes, fails and removes instances as Diego rules allow', async () => {
    const [cell] = await env.startCells(1, () => ({ autoStart: false, autoStartTasks: false }));
    const cellId = cell!.o.cellId;
    const guid = await placedLRP(cellId, 2);
    const key = (index: number) => ({ processGuid: guid, index, domain: 'cf-apps' });
    const ik = { cellId, instanceGuid: 'ig-0' };

    // Claim: only by the cell it is placed on; again with the same key is fine, with another key it is not.
    const claim = (index: number, instanceKey: { cellId: string; instanceGuid: string }) =>
      lifecycle('/v1/actual_lrps/claim', m.ClaimActualLRPRequestSchema, {
        processGuid: guid,
        index,
        actualLrpInstanceKey: instanceKey,
      });
    expect((await claim(0, { cellId: 'someone-else', instanceGuid: 'x' })).error?.type).toBe(
      E.ActualLRPCannotBeClaimed,
    );
    expect((await claim(0, ik)).error).toBeUndefined();
    expect((await claim(0, ik)).error).toBeUndefined();
    expect((await claim(0, { cellId, instanceGuid: 'other' })).error?.type).toBe(E.ActualLRPCannotBeClaimed);
    expect((await claim(0, { cellId: '', instanceGuid: '' })).error?.message).toBe(
      'Invalid field: cell_id, Invalid field: instance_guid',
    );
    const claimed = await actual(guid, 0);
    expect(claimed?.state).toBe('CLAIMED');
    expect(claimed?.actualLrpInstanceKey).toMatchObject(ik);
    const unknown = await lifecycle('/v1/actual_lrps/claim', m.ClaimActualLRPRequestSchema, {
      processGuid: 'no-such-process',
      index: 0,
      actualLrpInstanceKey: ik,
    });
    expect(unknown.error?.type).toBe(E.ResourceNotFound);

    // Start (r1): net info, internal routes, metric tags, routable, zone.
    const startReq: MessageInitShape<typeof m.StartActualLRPRequestSchema> = {
      actualLrpKey: key(0),
      actualLrpInstanceKey: ik,
      actualLrpNetInfo: {
        address: '10.0.0.5',
        instanceAddress: '10.255.0.7',
        preferredAddress: m.ActualLRPNetInfo_PreferredAddress.HOST,
        ports: [{ containerPort: 8080, hostPort: 61000 }],
      },
      actualLrpInternalRoutes: [{ hostname: 'app.apps.internal' }],
      metricTags: { app_name: 'web' },
      optionalRoutable: { case: 'Routable', value: false },
      availabilityZone: 'z1',
    };
    const start = (req: MessageInitShape<typeof m.StartActualLRPRequestSchema>, path = '/v1/actual_lrps/start.r1') =>
      lifecycle(path, m.StartActualLRPRequestSchema, req);
    expect((await start({ ...startReq, actualLrpNetInfo: undefined })).error?.message).toBe(
      'Invalid field: actual_lrp_net_info',
    );
    expect(
      (await start({ ...startReq, actualLrpInstanceKey: { cellId, instanceGuid: 'ig-x' } })).error,
    ).toBeUndefined();
    expect((await start(startReq)).error?.type).toBe(E.ActualLRPCannotBeStarted); // RUNNING as ig-x now
    await remove(0, { cellId, instanceGuid: 'nope' }, E.ResourceNotFound);
    // Back to the claimed instance: crash it (converger restarts it), claim and start it again.
    const crash = (instanceGuid: string) =>
      lifecycle('/v1/actual_lrps/crash', m.CrashActualLRPRequestSchema, {
        actualLrpKey: key(0),
        actualLrpInstanceKey: { cellId, instanceGuid },
        errorMessage: 'Exited with status 17',
      });
    expect((await crash('ig-0')).error?.type).toBe(E.ActualLRPCannotBeCrashed);
    expect((await crash('ig-x')).error).toBeUndefined();
    const crashed = await eventually(async () => {
      const a = await actual(guid, 0);
      expect(a?.crashCount).toBe(1);
      expect(a?.crashReason).toBe('Exited with status 17');
      expect(a?.actualLrpInstanceKey?.instanceGuid).toBe('');
      return a!;
    }, 10_000);
    expect(['CRASHED', 'UNCLAIMED']).toContain(crashed.state);
    // The first crash restarts at once: the converger makes it UNCLAIMED and the auctioneer places it again.
    await eventually(async () => {
      const [cr] = await env.client.list('ActualLRP', {
        namespace: env.ns,
        fieldSelector: `spec.processGuid=${guid},spec.cellId=${cellId}`,
      });
      expect(cr).toBeDefined();
      expect((await actual(guid, 0))?.state).toBe('UNCLAIMED');
      expect((await claim(0, ik)).error).toBeUndefined();
    }, 20_000);
    expect((await start(startReq)).error).toBeUndefined();
    const running = await actual(guid, 0);
    expect(running).toMatchObject({
      state: 'RUNNING',
      availabilityZone: 'z1',
      optionalRoutable: { case: 'routable', value: false },
      metricTags: { app_name: 'web' },
      crashCount: 1,
    });
    expect(running?.actualLrpNetInfo).toMatchObject({
      address: '10.0.0.5',
      instanceAddress: '10.255.0.7',
      preferredAddress: m.ActualLRPNetInfo_PreferredAddress.HOST,
    });
    expect(running?.actualLrpNetInfo?.ports.map((p) => [p.containerPort, p.hostPort])).toEqual([[8080, 61000]]);
    expect(running?.actualLrpInternalRoutes.map((r) => r.hostname)).toEqual(['app.apps.internal']);
    // The rep's periodic re-start with nothing changed writes nothing.
    const rv = async () =>
      (await env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` })).find(
        (a) => a.spec.index === 0,
      )?.metadata.resourceVersion;
    const before = await rv();
    expect((await start(startReq)).error).toBeUndefined();
    expect(await rv()).toBe(before);
    // The deprecated start (r0) ignores internal routes and metric tags.
    expect((await start(startReq, '/v1/actual_lrps/start')).error).toBeUndefined();
    expect((await actual(guid, 0))?.metricTags).toEqual({});

    // Fail: only an UNCLAIMED instance takes a placement error; a missing one is not an error (Diego).
    const fail = (index: number, errorMessage: string) =>
      lifecycle('/v1/actual_lrps/fail', m.FailActualLRPRequestSchema, { actualLrpKey: key(index), errorMessage });
    expect((await fail(0, 'insufficient resources')).error?.type).toBe(E.ActualLRPCannotBeFailed);
    expect((await fail(1, '')).error?.message).toBe('Invalid field: error_message');
    expect((await fail(1, 'insufficient resources: memory')).error).toBeUndefined();
    expect((await actual(guid, 1))?.placementError).toBe('insufficient resources: memory');
    expect((await fail(7, 'whatever')).error).toBeUndefined();

    // Remove: by key (the caller ran it) or outright; the converger then creates the index afresh.
    const uid1 = (
      await env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` })
    ).find((a) => a.spec.index === 1)!.metadata.uid;
    expect((await claim(1, { cellId, instanceGuid: 'ig-1' })).error).toBeUndefined();
    await remove(1, { cellId, instanceGuid: 'ig-1' });
    await eventually(async () => {
      const again = (
        await env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` })
      ).find((a) => a.spec.index === 1);
      expect(again?.metadata.uid).toBeDefined();
      expect(again?.metadata.uid).not.toBe(uid1);
      expect(again && stateOf(again)).toBe('UNCLAIMED');
    }, 20_000);
    await remove(-1, undefined, E.InvalidRequest);

    async function remove(index: number, instanceKey?: { cellId: string; instanceGuid: string }, error?: number) {
      const res = await lifecycle('/v1/actual_lrps/remove', m.RemoveActualLRPRequestSchema, {
        processGuid: guid,
        index,
        actualLrpInstanceKey: instanceKey,
      });
      expect(res.error?.type).toBe(error);
    }
  });

  it('serves routing infos and the deprecated ActualLRP group reads', async () => {
    const [cell] = await env.startCells(1, () => ({ autoStart: false, autoStartTasks: false }));
    const guid = await placedLRP(cell!.o.cellId, 2);
    const infos = await bbs(
      '/v1/desired_lrp_routing_infos/list',
      m.DesiredLRPsRequestSchema,
      { processGuids: [guid] },
      m.DesiredLRPsResponseSchema,
    );
    expect(infos.desiredLrps).toHaveLength(1);
    const info = infos.desiredLrps[0]!;
    expect(info).toMatchObject({ processGuid: guid, domain: 'cf-apps', instances: 2, rootFs: '', memoryMb: 0 });
    expect(info.action).toBeUndefined();
    expect(new TextDecoder().decode(info.routes?.routes['cf-router'])).toContain('a.example');
    expect(info.modificationTag?.epoch).not.toBe('');
    expect(info.metricTags.source_id?.static).toBe('src');
    const all = await bbs(
      '/v1/desired_lrp_routing_infos/list',
      m.DesiredLRPsRequestSchema,
      {},
      m.DesiredLRPsResponseSchema,
    );
    expect(all.desiredLrps.map((d) => d.processGuid)).toContain(guid);

    const byGuid = await bbs(
      '/v1/actual_lrp_groups/list_by_process_guid',
      m.ActualLRPGroupsByProcessGuidRequestSchema,
      { processGuid: guid },
      m.ActualLRPGroupsResponseSchema,
    );
    expect(byGuid.actualLrpGroups.map((g) => g.instance?.actualLrpKey?.index).sort()).toEqual([0, 1]);
    expect(byGuid.actualLrpGroups.every((g) => g.evacuating === undefined)).toBe(true);
    const listed = await bbs(
      '/v1/actual_lrp_groups/list',
      m.ActualLRPGroupsRequestSchema,
      { domain: 'cf-apps' },
      m.ActualLRPGroupsResponseSchema,
    );
    expect(listed.actualLrpGroups.filter((g) => g.instance?.actualLrpKey?.processGuid === guid)).toHaveLength(2);
    const one = (index: number) =>
      bbs(
        '/v1/actual_lrp_groups/get_by_process_guid_and_index',
        m.ActualLRPGroupByProcessGuidAndIndexRequestSchema,
        { processGuid: guid, index },
        m.ActualLRPGroupResponseSchema,
      );
    expect((await one(1)).actualLrpGroup?.instance?.actualLrpKey?.index).toBe(1);
    expect((await one(5)).error?.type).toBe(E.ResourceNotFound);
    expect((await one(-1)).error?.message).toBe('Invalid field: index');
  });
});

describe('BBS cell-side task routes', () => {
  const desireTask = async (cellId: string) => {
    const guid = `cell-task-${randomBytes(4).toString('hex')}`;
    const res = await bbs(
      '/v1/tasks/desire.r2',
      m.DesireTaskRequestSchema,
      taskRequestInit(guid),
      m.TaskLifecycleResponseSchema,
    );
    expect(res.error).toBeUndefined();
    await eventually(async () => {
      const [t] = await env.client.list('Task', { namespace: env.ns, fieldSelector: `spec.taskGuid=${guid}` });
      expect(t?.spec.cellId).toBe(cellId);
    }, 30_000);
    return guid;
  };
  const get = async (taskGuid: string) =>
    (await bbs('/v1/tasks/get_by_task_guid.r3', m.TaskByGuidRequestSchema, { taskGuid }, m.TaskResponseSchema)).task!;

  it('starts once, completes from the right cell only, and refuses later transitions', async () => {
    const [cell] = await env.startCells(1, () => ({ autoStart: false, autoStartTasks: false }));
    const cellId = cell!.o.cellId;
    const guid = await desireTask(cellId);
    const start = (c: string) =>
      bbs('/v1/tasks/start', m.StartTaskRequestSchema, { taskGuid: guid, cellId: c }, m.StartTaskResponseSchema);
    expect((await start('')).error?.message).toBe('Invalid field: cell_id');
    expect((await start('other-cell')).error?.type).toBe(E.ResourceConflict); // not placed there
    const won = await start(cellId);
    expect(won.error).toBeUndefined();
    expect(won.shouldStart).toBe(true);
    const again = await start(cellId);
    expect(again.error).toBeUndefined();
    expect(again.shouldStart).toBe(false);
    expect((await get(guid)).state).toBe(m.Task_State.Running);

    const complete = (c: string) =>
      bbs(
        '/v1/tasks/complete',
        m.CompleteTaskRequestSchema,
        { taskGuid: guid, cellId: c, failed: false, result: '{"ok":true}' },
        m.TaskLifecycleResponseSchema,
      );
    const wrong = await complete('other-cell');
    expect(wrong.error?.type).toBe(E.RunningOnDifferentCell);
    expect(wrong.error?.message).toBe(`Running on cell ${cellId} not other-cell`);
    expect((await complete(cellId)).error).toBeUndefined();
    const done = await get(guid);
    expect(done).toMatchObject({ state: m.Task_State.Completed, failed: false, result: '{"ok":true}' });
    expect((await complete(cellId)).error?.message).toBe('Cannot transition from Completed to Completed');
    expect((await start(cellId)).error?.message).toBe('Cannot transition from Completed to Running');
    const missing = await bbs(
      '/v1/tasks/start',
      m.StartTaskRequestSchema,
      { taskGuid: 'no-such-task', cellId },
      m.StartTaskResponseSchema,
    );
    expect(missing.error?.type).toBe(E.ResourceNotFound);
  });

  it('rejects back to the auction, fails after max retries, and fails (deprecated) directly', async () => {
    const [cell] = await env.startCells(1, () => ({ autoStart: false, autoStartTasks: false }));
    const cellId = cell!.o.cellId;
    const guid = await desireTask(cellId);
    const reject = (rejectionReason: string) =>
      bbs(
        '/v1/tasks/reject',
        m.RejectTaskRequestSchema,
        { taskGuid: guid, rejectionReason },
        m.TaskLifecycleResponseSchema,
      );
    expect((await reject('')).error?.message).toBe('Invalid field: failure_reason');
    expect((await reject('no room')).error).toBeUndefined();
    const rejected = await get(guid);
    expect(rejected).toMatchObject({ state: m.Task_State.Pending, rejectionCount: 1, rejectionReason: 'no room' });
    // Taken off the cell, then placed again by the auctioneer (the only cell is this one).
    await eventually(async () => {
      const [t] = await env.client.list('Task', { namespace: env.ns, fieldSelector: `spec.taskGuid=${guid}` });
      expect(t?.spec.cellId).toBe(cellId);
      expect(t?.status?.rejectionCount).toBe(1);
    }, 20_000);
    // maxTaskRetries is 1 here: the second rejection fails the task with the reason.
    expect((await reject('still no room')).error).toBeUndefined();
    expect(await get(guid)).toMatchObject({
      state: m.Task_State.Completed,
      failed: true,
      failureReason: 'still no room',
      rejectionCount: 2,
    });
    expect((await reject('late')).error?.type).toBe(E.InvalidRequest);

    const other = await desireTask(cellId);
    const fail = (failureReason: string) =>
      bbs('/v1/tasks/fail', m.FailTaskRequestSchema, { taskGuid: other, failureReason }, m.TaskLifecycleResponseSchema);
    expect((await fail('')).error?.message).toBe('Invalid field: failure_reason');
    expect((await fail('operator gave up')).error).toBeUndefined();
    expect(await get(other)).toMatchObject({
      state: m.Task_State.Completed,
      failed: true,
      failureReason: 'operator gave up',
    });
    expect((await fail('again')).error?.message).toBe('Cannot transition from Completed to Completed');
  });
});
