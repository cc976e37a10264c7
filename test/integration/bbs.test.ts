// The BBS facade against a real API server: Diego's protobuf calls go in, Diego CRs come out, and the
// Manager plus simulated cells make the desired LRPs run.
import { randomBytes } from 'node:crypto';
import { fromBinary, type MessageInitShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import * as m from '../../src/bbs/models.ts';
import { desiredLRPInit, taskRequestInit, useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('bbs', { convergeIntervalMs: 1000 });
const { app, bbs } = useBbsApp(env);

const desiredLRP = (processGuid: string, instances: number): MessageInitShape<typeof m.DesiredLRPSchema> =>
  desiredLRPInit(processGuid, instances, { annotation: 'v1', ports: [8080] });

const actuals = (processGuid: string) =>
  bbs('/v1/actual_lrps/list', m.ActualLRPsRequestSchema, { processGuid }, m.ActualLRPsResponseSchema);

describe('BBS facade', () => {
  it('answers ping', async () => {
    const r = await app().inject({ method: 'POST', url: '/v1/ping' });
    expect(fromBinary(m.PingResponseSchema, r.rawPayload).available).toBe(true);
  });

  it('upserts domains as Leases and lists only fresh ones', async () => {
    const up = (domain: string, ttl: number) =>
      bbs('/v1/domains/upsert', m.UpsertDomainRequestSchema, { domain, ttl }, m.UpsertDomainResponseSchema);
    expect((await up('cf-apps', 0)).error).toBeUndefined();
    expect((await up('cf-tasks', 120)).error).toBeUndefined();
    expect((await up('short', 1)).error).toBeUndefined();
    expect((await up('cf-tasks', 120)).error).toBeUndefined(); // upsert again
    expect((await up('', 1)).error?.type).toBe(m.Error_Type.InvalidRequest);
    const list = () => bbs('/v1/domains/list', m.UpsertDomainRequestSchema, {}, m.DomainsResponseSchema);
    expect((await list()).domains.sort()).toEqual(['cf-apps', 'cf-tasks', 'short']);
    await eventually(async () => expect((await list()).domains.sort()).toEqual(['cf-apps', 'cf-tasks']), 5000);
  });

  it('desires, lists, updates and removes an LRP that runs on a cell', async () => {
    const [cell] = await env.startCells(1);
    const cells = await bbs('/v1/cells/list.r1', m.UpsertDomainRequestSchema, {}, m.CellsResponseSchema);
    expect(cells.cells.map((c) => c.cellId)).toContain(cell!.o.cellId);

    // Not a valid Kubernetes name: stored under a hashed name, found by field selector.
    const guid = `App_${randomBytes(4).toString('hex')}`;
    const desire = (n: number) =>
      bbs(
        '/v1/desired_lrp/desire.r2',
        m.DesireLRPRequestSchema,
        { desiredLrp: desiredLRP(guid, n) },
        m.DesiredLRPLifecycleResponseSchema,
      );
    expect((await desire(2)).error).toBeUndefined();
    const crs = await env.client.list('DesiredLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` });
    expect(crs).toHaveLength(1);
    expect(crs[0]!.metadata.name).toMatch(/^p-[0-9a-f]{16}$/);
    expect(crs[0]!.spec.action).toEqual({ run: { path: '/bin/app', user: 'vcap' } });
    expect((await desire(2)).error?.type).toBe(m.Error_Type.ResourceExists);

    await eventually(async () => {
      const res = await actuals(guid);
      expect(res.actualLrps.map((a) => a.state)).toEqual(['RUNNING', 'RUNNING']);
      expect(res.actualLrps.every((a) => a.actualLrpInstanceKey?.cellId === cell!.o.cellId)).toBe(true);
      expect(res.actualLrps.every((a) => a.since > 0n)).toBe(true);
    }, 30_000);

    const got = await bbs(
      '/v1/desired_lrps/get_by_process_guid.r3',
      m.DesiredLRPByProcessGuidRequestSchema,
      { processGuid: guid },
      m.DesiredLRPResponseSchema,
    );
    expect(got.desiredLrp?.instances).toBe(2);
    expect(got.desiredLrp?.action?.runAction?.path).toBe('/bin/app');
    expect(got.desiredLrp?.metricsGuid).toBe('app-guid');
    const gotV2 = await bbs(
      '/v1/desired_lrps/get_by_process_guid.r2',
      m.DesiredLRPByProcessGuidRequestSchema,
      { processGuid: guid },
      m.DesiredLRPResponseSchema,
    );
    expect(gotV2.desiredLrp?.processGuid).toBe(guid);
    const bulk = await bbs(
      '/v1/actual_lrps/list_by_process_guids',
      m.ActualLRPsByProcessGuidsRequestSchema,
      { processGuids: [guid, 'other'] },
      m.ActualLRPsByProcessGuidsResponseSchema,
    );
    expect(bulk.actualLrps).toHaveLength(2);
    const listed = await bbs(
      '/v1/desired_lrps/list.r3',
      m.DesiredLRPsRequestSchema,
      { domain: 'cf-apps', processGuids: [guid] },
      m.DesiredLRPsResponseSchema,
    );
    expect(listed.desiredLrps.map((d) => d.processGuid)).toEqual([guid]);
    const infos = await bbs(
      '/v1/desired_lrp_scheduling_infos/list',
      m.DesiredLRPsRequestSchema,
      { domain: 'cf-apps' },
      m.DesiredLRPSchedulingInfosResponseSchema,
    );
    expect(infos.desiredLrpSchedulingInfos.find((i) => i.desiredLrpKey?.processGuid === guid)?.annotation).toBe('v1');

    // Retire (CC's instance restart): index 0 comes back as a new instance.
    const before = (await actuals(guid)).actualLrps.find((a) => a.actualLrpKey?.index === 0)!;
    const retire = (index: number) =>
      bbs(
        '/v1/actual_lrps/retire',
        m.RetireActualLRPRequestSchema,
        { actualLrpKey: { processGuid: guid, index, domain: 'cf-apps' } },
        m.ActualLRPLifecycleResponseSchema,
      );
    expect((await retire(0)).error).toBeUndefined();
    expect((await retire(7)).error?.type).toBe(m.Error_Type.ResourceNotFound);
    await eventually(async () => {
      const again = (await actuals(guid)).actualLrps.find((a) => a.actualLrpKey?.index === 0);
      expect(again?.state).toBe('RUNNING');
      expect(again?.actualLrpInstanceKey?.instanceGuid).not.toBe(before.actualLrpInstanceKey?.instanceGuid);
    }, 30_000);

    const update = await bbs(
      '/v1/desired_lrp/update',
      m.UpdateDesiredLRPRequestSchema,
      {
        processGuid: guid,
        update: {
          optionalInstances: { case: 'instances', value: 1 },
          optionalAnnotation: { case: 'annotation', value: 'v2' },
        },
      },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect(update.error).toBeUndefined();
    const routes = { routes: { 'cf-router': new TextEncoder().encode('[{"hostnames":["x.example"],"port":8080}]') } };
    const update2 = await bbs(
      '/v1/desired_lrp/update',
      m.UpdateDesiredLRPRequestSchema,
      { processGuid: guid, update: { routes, metricTags: { source_id: { static: 'new-source' } } } },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect(update2.error).toBeUndefined();
    const [cr] = await env.client.list('DesiredLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` });
    expect(cr!.spec).toMatchObject({
      instances: 1,
      annotation: 'v2',
      routes: { 'cf-router': [{ hostnames: ['x.example'], port: 8080 }] },
      metricTags: { source_id: { static: 'new-source' } },
    });
    await eventually(async () => expect((await actuals(guid)).actualLrps).toHaveLength(1), 30_000);

    const remove = (processGuid: string) =>
      bbs(
        '/v1/desired_lrp/remove',
        m.RemoveDesiredLRPRequestSchema,
        { processGuid },
        m.DesiredLRPLifecycleResponseSchema,
      );
    expect((await remove(guid)).error).toBeUndefined();
    expect((await remove(guid)).error?.type).toBe(m.Error_Type.ResourceNotFound);
    await eventually(async () => expect((await actuals(guid)).actualLrps).toHaveLength(0), 30_000);
  });

  it('rejects an invalid LRP with InvalidRequest', async () => {
    const res = await bbs(
      '/v1/desired_lrp/desire.r2',
      m.DesireLRPRequestSchema,
      { desiredLrp: { ...desiredLRP('abc.def', 1), metricTags: {} } },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect(res.error?.type).toBe(m.Error_Type.InvalidRequest);
    expect(res.error?.message).toContain('Invalid field: process_guid');
    expect(res.error?.message).toContain('Invalid field: metric_tags');
  });

  it('runs the task lifecycle: desire, get, list, cancel, resolving, delete', async () => {
    const guid = `task-${randomBytes(4).toString('hex')}`;
    const byGuid = { taskGuid: guid };
    const desire = () =>
      bbs(
        '/v1/tasks/desire.r2',
        m.DesireTaskRequestSchema,
        {
          taskGuid: guid,
          domain: 'cf-tasks',
          taskDefinition: {
            rootFs: 'preloaded:busybox',
            memoryMb: 16,
            action: { runAction: { path: '/bin/true', user: 'root' } },
            annotation: 'hello',
          },
        },
        m.TaskLifecycleResponseSchema,
      );
    expect((await desire()).error).toBeUndefined();
    expect((await desire()).error?.type).toBe(m.Error_Type.ResourceExists);

    const get = () => bbs('/v1/tasks/get_by_task_guid.r2', m.TaskByGuidRequestSchema, byGuid, m.TaskResponseSchema);
    const task = (await get()).task!;
    expect(task.state).toBe(m.Task_State.Pending); // no cells: it stays pending
    expect(task.taskDefinition?.annotation).toBe('hello');
    expect(task.createdAt).toBeGreaterThan(0n);
    const list = await bbs('/v1/tasks/list.r2', m.TasksRequestSchema, { domain: 'cf-tasks' }, m.TasksResponseSchema);
    expect(list.tasks.map((t) => t.taskGuid)).toContain(guid);

    const call = (path: string) => bbs(path, m.TaskGuidRequestSchema, byGuid, m.TaskLifecycleResponseSchema);
    expect((await call('/v1/tasks/resolving')).error?.type).toBe(m.Error_Type.InvalidStateTransition);
    expect((await call('/v1/tasks/cancel')).error).toBeUndefined();
    await eventually(async () => {
      const t = (await get()).task!;
      expect(t.state).toBe(m.Task_State.Completed);
      expect(t.failed).toBe(true);
      expect(t.failureReason).toBe('task was cancelled');
    }, 20_000);
    expect((await call('/v1/tasks/cancel')).error?.type).toBe(m.Error_Type.InvalidStateTransition);
    expect((await call('/v1/tasks/delete')).error?.type).toBe(m.Error_Type.InvalidStateTransition);
    expect((await call('/v1/tasks/resolving')).error).toBeUndefined();
    expect((await call('/v1/tasks/delete')).error).toBeUndefined();
    await eventually(async () => expect((await get()).error?.type).toBe(m.Error_Type.ResourceNotFound), 10_000);
    expect((await call('/v1/tasks/cancel')).error?.type).toBe(m.Error_Type.ResourceNotFound);
  });

  it('runs a task on a cell to completion and resolves it', async () => {
    await env.startCells(1, () => ({ autoComplete: { failed: false, result: 'done' } }));
    const guid = `task-${randomBytes(4).toString('hex')}`;
    const desired = await bbs(
      '/v1/tasks/desire.r2',
      m.DesireTaskRequestSchema,
      taskRequestInit(guid),
      m.TaskLifecycleResponseSchema,
    );
    expect(desired.error).toBeUndefined();
    const done = await eventually(async () => {
      const t = (
        await bbs('/v1/tasks/get_by_task_guid.r3', m.TaskByGuidRequestSchema, { taskGuid: guid }, m.TaskResponseSchema)
      ).task!;
      expect(t.state).toBe(m.Task_State.Completed);
      return t;
    }, 30_000);
    expect(done.failed).toBe(false);
    expect(done.result).toBe('done');
    expect(done.firstCompletedAt).toBeGreaterThan(0n);
    const call = (path: string) =>
      bbs(path, m.TaskGuidRequestSchema, { taskGuid: guid }, m.TaskLifecycleResponseSchema);
    expect((await call('/v1/tasks/resolving')).error).toBeUndefined();
    expect((await call('/v1/tasks/delete')).error).toBeUndefined();
  });
});
