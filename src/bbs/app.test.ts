// The HTTP shell without a cluster: routing, the 404 fallback, the error envelope, malformed bodies, and the
// DesiredLRP/Task translation round trip.
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { afterAll, describe, expect, it } from 'vitest';
import { createLogger } from '../lib/log.ts';
import { KubeError } from '../lib/kube.ts';
import type { DiegoClient } from '../lib/resources.ts';
import { buildBbsApp, PROTOBUF } from './app.ts';
import {
  ActionSchema,
  DesiredLRPByProcessGuidRequestSchema,
  DesiredLRPResponseSchema,
  DesiredLRPSchema,
  DesireLRPRequestSchema,
  DesiredLRPLifecycleResponseSchema,
  Error_Type,
  PingResponseSchema,
  TaskDefinitionSchema,
  TaskResponseSchema,
  TaskByGuidRequestSchema,
  DesireTaskRequestSchema,
  TaskLifecycleResponseSchema,
  MetricTagValue_DynamicValue,
  type DesiredLRP,
  UpdateDesiredLRPRequestSchema,
} from './models.ts';
import { desiredLRPFromCR, desiredLRPToSpec, objectName, taskFromCR, taskToSpec } from './translate.ts';

/** Only what the routes under test touch; everything else fails loudly. A GET by name finds nothing by default. */
function fakeClient(overrides: Partial<DiegoClient>): DiegoClient {
  overrides = { get: () => Promise.reject(new KubeError(404, { reason: 'NotFound' }, 'GET')), ...overrides };
  return new Proxy(overrides, {
    get: (t, k) => (k in t ? t[k as keyof typeof t] : () => Promise.reject(new Error(`unexpected ${String(k)}`))),
  }) as DiegoClient;
}

let client = fakeClient({});
const app = buildBbsApp({
  client: new Proxy({} as DiegoClient, { get: (_t, k): unknown => Reflect.get(client, k) }),
  namespace: 'ns',
  logger: createLogger('silent'),
});
afterAll(() => app.close());

async function call<Res extends DescMessage>(path: string, res: Res, body: Uint8Array = new Uint8Array()) {
  const r = await app.inject({
    method: 'POST',
    url: path,
    payload: Buffer.from(body),
    headers: { 'content-type': PROTOBUF },
  });
  expect(r.statusCode).toBe(200);
  expect(r.headers['content-type']).toBe(PROTOBUF);
  return fromBinary(res, r.rawPayload);
}

const lrp = (init: Partial<DesiredLRP> = {}): DesiredLRP =>
  Object.assign(
    create(DesiredLRPSchema, {
      processGuid: 'app-1',
      domain: 'cf-apps',
      rootFs: 'preloaded:cflinuxfs4',
      instances: 2,
      action: { runAction: { path: '/bin/sh', args: ['-c', 'sleep 1'], user: 'vcap' } },
      metricTags: { source_id: { static: 'src' }, index: { dynamic: MetricTagValue_DynamicValue.INDEX } },
      routes: { routes: { 'cf-router': new TextEncoder().encode('[{"hostnames":["a.example"],"port":8080}]') } },
      PlacementTags: ['iso'],
      startTimeoutMs: 60000n,
    }),
    init,
  );

describe('BBS HTTP shell', () => {
  it('answers ping with available=true, with or without a content type', async () => {
    expect((await call('/v1/ping', PingResponseSchema)).available).toBe(true);
    const r = await app.inject({ method: 'POST', url: '/v1/ping' });
    expect(fromBinary(PingResponseSchema, r.rawPayload).available).toBe(true);
  });

  it('answers unknown routes with a plain-text 404 so clients fall back', async () => {
    const r = await app.inject({
      method: 'POST',
      url: '/v1/actual_lrps/no_such_route',
      payload: Buffer.alloc(0),
    });
    expect(r.statusCode).toBe(404);
    expect(r.headers['content-type']).toMatch(/^text\/plain/);
  });

  it('answers another method on a known route with 405 and Allow: POST, as Diego does', async () => {
    const r = await app.inject({ method: 'GET', url: '/v1/desired_lrps/list.r3' });
    expect(r.statusCode).toBe(405);
    expect(r.headers.allow).toBe('POST');
  });

  it('turns a malformed body into InvalidRequest as Diego does (models.ErrBadRequest), not a crash', async () => {
    const res = await call('/v1/desired_lrp/desire.r2', DesiredLRPLifecycleResponseSchema, Uint8Array.of(0x0a, 0xff));
    expect(res.error?.type).toBe(Error_Type.InvalidRequest);
    expect(res.error?.message).toBe('the request received is invalid');
  });

  it('answers a body over the size limit with an InvalidRequest envelope, not a 413 or a crash', async () => {
    const res = await call(
      '/v1/desired_lrp/desire.r2',
      DesiredLRPLifecycleResponseSchema,
      new Uint8Array(10 * 1024 * 1024 + 1),
    );
    expect(res.error?.type).toBe(Error_Type.InvalidRequest);
    expect(res.error?.message).toBe('the request body is larger than the 10485760-byte limit');
    expect((await call('/v1/ping', PingResponseSchema)).available).toBe(true); // still serving
  });

  it('rejects action trees deeper than 32 levels; the decoder refuses absurd nesting outright', async () => {
    const desire = async (levels: number) => {
      let action: DesiredLRP['action'] = create(ActionSchema, { runAction: { path: '/bin/true', user: 'vcap' } });
      for (let i = 0; i < levels; i++) action = create(ActionSchema, { tryAction: { action } });
      const body = toBinary(DesireLRPRequestSchema, create(DesireLRPRequestSchema, { desiredLrp: lrp({ action }) }));
      return (await call('/v1/desired_lrp/desire.r2', DesiredLRPLifecycleResponseSchema, body)).error;
    };
    expect(await desire(40)).toMatchObject({ type: Error_Type.InvalidRequest, message: 'Invalid field: action' });
    // protobuf-es stops decoding at 100 nested messages (50 action levels): Diego's ErrBadRequest.
    expect(await desire(200)).toMatchObject({
      type: Error_Type.InvalidRequest,
      message: 'the request received is invalid',
    });
  });

  it('rejects invalid LRPs with Invalid field messages', async () => {
    const bad = lrp({ processGuid: 'abc def', domain: '', rootFs: 'ploop', metricTags: {} });
    const res = await call(
      '/v1/desired_lrp/desire.r2',
      DesiredLRPLifecycleResponseSchema,
      toBinary(DesireLRPRequestSchema, create(DesireLRPRequestSchema, { desiredLrp: bad })),
    );
    expect(res.error?.type).toBe(Error_Type.InvalidRequest);
    expect(res.error?.message).toContain('Invalid field: process_guid');
    expect(res.error?.message).toContain('Invalid field: rootfs');
  });

  it('maps Kubernetes outcomes to BBS error types', async () => {
    client = fakeClient({ list: () => Promise.resolve([]) });
    const req = toBinary(
      DesiredLRPByProcessGuidRequestSchema,
      create(DesiredLRPByProcessGuidRequestSchema, { processGuid: 'nope' }),
    );
    expect((await call('/v1/desired_lrps/get_by_process_guid.r3', DesiredLRPResponseSchema, req)).error?.type).toBe(
      Error_Type.ResourceNotFound,
    );
    client = fakeClient({ create: () => Promise.reject(new KubeError(409, { reason: 'AlreadyExists' }, 'POST')) });
    const desire = toBinary(DesireLRPRequestSchema, create(DesireLRPRequestSchema, { desiredLrp: lrp() }));
    expect((await call('/v1/desired_lrp/desire.r2', DesiredLRPLifecycleResponseSchema, desire)).error?.type).toBe(
      Error_Type.ResourceExists,
    );
    client = fakeClient({ create: () => Promise.reject(new KubeError(500, { message: 'boom' }, 'POST')) });
    expect((await call('/v1/desired_lrp/desire.r2', DesiredLRPLifecycleResponseSchema, desire)).error?.type).toBe(
      Error_Type.UnknownError,
    );
    client = fakeClient({
      list: () => Promise.resolve([{ metadata: { name: 'a', resourceVersion: '1' }, spec: {} }] as never),
      patch: () => Promise.reject(new KubeError(409, { reason: 'Conflict' }, 'PATCH')),
    });
    const update = toBinary(
      UpdateDesiredLRPRequestSchema,
      create(UpdateDesiredLRPRequestSchema, {
        processGuid: 'a',
        update: { optionalInstances: { case: 'instances', value: 3 } },
      }),
    );
    expect((await call('/v1/desired_lrp/update', DesiredLRPLifecycleResponseSchema, update)).error?.type).toBe(
      Error_Type.ResourceConflict,
    );
    client = fakeClient({
      list: () => Promise.resolve([]),
      create: () =>
        Promise.reject(
          new KubeError(422, { details: { causes: [{ field: 'spec.memoryMb', message: 'too big' }] } }, 'POST'),
        ),
    });
    const task = toBinary(
      DesireTaskRequestSchema,
      create(DesireTaskRequestSchema, {
        taskGuid: 't1',
        domain: 'd',
        taskDefinition: { rootFs: 'docker:///busybox', action: { runAction: { path: '/bin/true', user: 'root' } } },
      }),
    );
    const res = await call('/v1/tasks/desire.r2', TaskLifecycleResponseSchema, task);
    expect(res.error?.type).toBe(Error_Type.InvalidRequest);
    expect(res.error?.message).toBe('Invalid field: spec.memoryMb too big');
  });

  it('looks tasks up by guid and returns them with state and ns timestamps', async () => {
    client = fakeClient({
      list: () =>
        Promise.resolve([
          {
            metadata: { name: 't1', creationTimestamp: '2026-01-01T00:00:00Z' },
            spec: taskToSpec(
              't1',
              'd',
              create(TaskDefinitionSchema, { rootFs: 'docker:///x', action: { runAction: { path: '/p', user: 'u' } } }),
            ),
            status: { state: 'Completed', failed: true, failureReason: 'x' },
          },
        ] as never),
    });
    const res = await call(
      '/v1/tasks/get_by_task_guid.r2',
      TaskResponseSchema,
      toBinary(TaskByGuidRequestSchema, create(TaskByGuidRequestSchema, { taskGuid: 't1' })),
    );
    expect(res.error).toBeUndefined();
    expect(res.task?.createdAt).toBe(1767225600000000000n);
    expect(res.task?.failureReason).toBe('x');
    expect(res.task?.taskDefinition?.action?.runAction?.path).toBe('/p');
  });
});

describe('translation', () => {
  it('names objects by guid when Kubernetes allows it, else by hash', () => {
    expect(objectName('app-1')).toBe('app-1');
    expect(objectName('App_1')).toMatch(/^p-[0-9a-f]{16}$/);
    expect(objectName('a'.repeat(64))).toMatch(/^p-[0-9a-f]{16}$/);
  });

  it('round-trips a DesiredLRP through the CR spec', () => {
    const spec = desiredLRPToSpec(lrp());
    expect(spec.action).toEqual({ run: { path: '/bin/sh', args: ['-c', 'sleep 1'], user: 'vcap' } });
    expect(spec.routes).toEqual({ 'cf-router': [{ hostnames: ['a.example'], port: 8080 }] });
    expect(spec.placementTags).toEqual(['iso']);
    expect(spec.startTimeoutMs).toBe(60000);
    const back = desiredLRPFromCR({
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'DesiredLRP',
      metadata: { uid: 'u', generation: 3 },
      spec,
    });
    expect(back.processGuid).toBe('app-1');
    expect(back.instances).toBe(2);
    expect(back.action?.runAction?.args).toEqual(['-c', 'sleep 1']);
    expect(back.PlacementTags).toEqual(['iso']);
    expect(back.metricsGuid).toBe('src');
    expect(back.metricTags.index?.dynamic).toBe(MetricTagValue_DynamicValue.INDEX);
    expect(JSON.parse(new TextDecoder().decode(back.routes?.routes['cf-router']))).toEqual([
      { hostnames: ['a.example'], port: 8080 },
    ]);
    expect(back.modificationTag?.index).toBe(3);
  });

  it('round-trips a task definition', () => {
    const spec = taskToSpec(
      't-1',
      'cf-tasks',
      create(TaskDefinitionSchema, {
        rootFs: 'docker:///busybox',
        action: {
          serialAction: {
            actions: [
              { runAction: { path: '/a', user: 'root' } },
              { timeoutAction: { timeoutMs: 5000n, action: { runAction: { path: '/b', user: 'root' } } } },
            ],
          },
        },
        memoryMb: 64,
      }),
    );
    expect(spec.action).toEqual({
      serial: {
        actions: [
          { run: { path: '/a', user: 'root' } },
          { timeout: { timeoutMs: 5000, action: { run: { path: '/b', user: 'root' } } } },
        ],
      },
    });
    const t = taskFromCR({ apiVersion: 'x' as never, kind: 'Task', metadata: {}, spec });
    expect(t.taskDefinition?.action?.serialAction?.actions[1]?.timeoutAction?.timeoutMs).toBe(5000n);
    expect(t.taskDefinition?.memoryMb).toBe(64);
  });
});
