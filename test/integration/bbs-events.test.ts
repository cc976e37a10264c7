// The BBS event streams against a real API server: a subscriber sees Diego's events, in Diego's SSE wire form,
// for desired LRPs, their instances and tasks as they are created, change and go away; a cell id keeps only
// that cell's instance events; disconnecting frees the subscription and closing the facade ends the streams.
import { randomBytes } from 'node:crypto';
import { request, type ClientRequest, type IncomingMessage } from 'node:http';
import type { AddressInfo } from 'node:net';
import { create, fromBinary, toBinary, type DescMessage } from '@bufbuild/protobuf';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildBbsApp, PROTOBUF } from '../../src/bbs/app.ts';
import * as m from '../../src/bbs/models.ts';
import { registry } from '../../src/lib/metrics.ts';
import { desiredLRPInit, useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';

const env = useDiego('bbs-events', { convergeIntervalMs: 1000 });
const { app, bbs } = useBbsApp(env, { expectNoError: true });
let port = 0;
beforeAll(async () => {
  await app().listen({ host: '127.0.0.1', port: 0 });
  port = (app().server.address() as AddressInfo).port;
});

const SCHEMAS: Record<string, DescMessage> = {
  desired_lrp_created: m.DesiredLRPCreatedEventSchema,
  desired_lrp_changed: m.DesiredLRPChangedEventSchema,
  desired_lrp_removed: m.DesiredLRPRemovedEventSchema,
  actual_lrp_created: m.ActualLRPCreatedEventSchema,
  actual_lrp_changed: m.ActualLRPChangedEventSchema,
  actual_lrp_removed: m.ActualLRPRemovedEventSchema,
  actual_lrp_crashed: m.ActualLRPCrashedEventSchema,
  actual_lrp_instance_created: m.ActualLRPInstanceCreatedEventSchema,
  actual_lrp_instance_changed: m.ActualLRPInstanceChangedEventSchema,
  actual_lrp_instance_removed: m.ActualLRPInstanceRemovedEventSchema,
  task_created: m.TaskCreatedEventSchema,
  task_changed: m.TaskChangedEventSchema,
  task_removed: m.TaskRemovedEventSchema,
};

interface Received {
  id: number;
  name: string;
  // Decoded with the generated codec; the test narrows by name.
  msg: Record<string, unknown>;
}

/** A minimal SSE reader over plain node:http, decoding each frame's base64 protobuf. */
class Stream {
  readonly events: Received[] = [];
  raw = '';
  res!: IncomingMessage;
  ended = false;
  private req!: ClientRequest;

  static open(path: string, method: 'GET' | 'POST' = 'POST', cellId?: string): Promise<Stream> {
    const s = new Stream();
    const body =
      cellId === undefined
        ? Buffer.alloc(0)
        : Buffer.from(toBinary(m.EventsByCellIdSchema, create(m.EventsByCellIdSchema, { cellId })));
    return new Promise((resolve, reject) => {
      s.req = request({ host: '127.0.0.1', port, path, method, headers: { 'content-length': body.length } }, (res) => {
        s.res = res;
        res.setEncoding('utf8');
        res.on('data', (chunk: string) => s.feed(chunk));
        res.on('end', () => (s.ended = true));
        res.on('error', () => (s.ended = true));
        resolve(s);
      });
      s.req.on('error', reject);
      s.req.end(body);
    });
  }

  private buffer = '';
  private feed(chunk: string): void {
    this.raw += chunk;
    this.buffer += chunk;
    for (let end = this.buffer.indexOf('\n\n'); end >= 0; end = this.buffer.indexOf('\n\n')) {
      const frame = this.buffer.slice(0, end);
      this.buffer = this.buffer.slice(end + 2);
      const fields = Object.fromEntries(
        frame.split('\n').map((l) => [l.slice(0, l.indexOf(':')), l.slice(l.indexOf(':') + 2)] as const),
      );
      const schema = SCHEMAS[fields.event ?? ''];
      if (!schema) throw new Error(`unknown event ${fields.event}`);
      this.events.push({
        id: Number(fields.id),
        name: fields.event!,
        msg: fromBinary(schema, Buffer.from(fields.data ?? '', 'base64')),
      });
    }
  }

  named<T>(name: string, pred: (msg: T) => boolean = () => true): T[] {
    return this.events
      .filter((e) => e.name === name)
      .map((e) => e.msg as T)
      .filter(pred);
  }

  /** Waits until an event of that name (matching pred) has arrived and returns the first. */
  async next<T>(name: string, pred: (msg: T) => boolean = () => true, timeoutMs = 30_000): Promise<T> {
    return eventually(() => {
      const [hit] = this.named<T>(name, pred);
      if (!hit) throw new Error(`no ${name} yet; got ${this.events.map((e) => e.name).join(', ')}`);
      return hit;
    }, timeoutMs);
  }

  close(): void {
    this.req.destroy();
  }
}

const desire = (processGuid: string, instances: number) =>
  bbs(
    '/v1/desired_lrp/desire.r2',
    m.DesireLRPRequestSchema,
    { desiredLrp: desiredLRPInit(processGuid, instances) },
    m.DesiredLRPLifecycleResponseSchema,
  );
const scale = (processGuid: string, instances: number) =>
  bbs(
    '/v1/desired_lrp/update',
    m.UpdateDesiredLRPRequestSchema,
    { processGuid, update: { optionalInstances: { case: 'instances', value: instances } } },
    m.DesiredLRPLifecycleResponseSchema,
  );
const remove = (processGuid: string) =>
  bbs('/v1/desired_lrp/remove', m.RemoveDesiredLRPRequestSchema, { processGuid }, m.DesiredLRPLifecycleResponseSchema);

async function subscribers(topic: string): Promise<number> {
  const metric = await registry.getSingleMetric('bbs_event_stream_subscribers')?.get();
  return metric?.values.find((v) => v.labels.topic === topic)?.value ?? 0;
}

const guid = (prefix: string) => `${prefix}-${randomBytes(4).toString('hex')}`;

describe('BBS event streams', () => {
  it('streams desired LRP and instance events as Diego does', { timeout: 120_000 }, async () => {
    const [cell] = await env.startCells(1);
    const instances = await Stream.open('/v1/events/lrp_instances.r1');
    const groups = await Stream.open('/v1/events.r1', 'GET');
    const legacy = await Stream.open('/v1/events/lrp_instances');
    expect(instances.res.statusCode).toBe(200);
    expect(instances.res.headers['content-type']).toBe('text/event-stream; charset=utf-8');
    expect(instances.res.headers['cache-control']).toBe('no-cache, no-store, must-revalidate');
    expect(groups.res.statusCode).toBe(200);

    const pg = guid('events-app');
    await desire(pg, 1);
    const created = await instances.next<m.DesiredLRPCreatedEvent>(
      'desired_lrp_created',
      (e) => e.desiredLrp?.processGuid === pg,
    );
    expect(created.desiredLrp?.instances).toBe(1);
    expect(created.desiredLrp?.action?.runAction?.path).toBe('/bin/app');
    const ofPg = (e: { actualLrp?: m.ActualLRP }) => e.actualLrp?.actualLrpKey?.processGuid === pg;
    await instances.next<m.ActualLRPInstanceCreatedEvent>('actual_lrp_instance_created', ofPg);
    const running = await instances.next<m.ActualLRPInstanceChangedEvent>(
      'actual_lrp_instance_changed',
      (e) => e.actualLrpKey?.processGuid === pg && e.after?.state === 'RUNNING',
    );
    expect(running.actualLrpInstanceKey?.cellId).toBe(cell!.o.cellId);
    expect(running.actualLrpInstanceKey?.instanceGuid).not.toBe('');
    expect(running.before?.state).not.toBe('RUNNING');

    await scale(pg, 2);
    const changed = await instances.next<m.DesiredLRPChangedEvent>(
      'desired_lrp_changed',
      (e) => e.after?.processGuid === pg,
    );
    expect([changed.before?.instances, changed.after?.instances]).toEqual([1, 2]);

    // A crash, as the cell reports it: actual_lrp_crashed names the instance that crashed.
    const [actual] = (await env.client.list('ActualLRP', { namespace: env.ns })).filter(
      (a) => a.spec.processGuid === pg && a.status?.state === 'RUNNING',
    );
    const crashedGuid = actual!.status!.instanceGuid;
    await cell!.crash(actual!.metadata.name!, env.ns);
    const crash = await instances.next<m.ActualLRPCrashedEvent>(
      'actual_lrp_crashed',
      (e) => e.actualLrpKey?.processGuid === pg,
    );
    expect(crash.crashCount).toBe(1);
    expect(crash.crashReason).toBe('APP/PROC/WEB: Exited with status 1');
    expect(crash.actualLrpInstanceKey).toMatchObject({ cellId: cell!.o.cellId, instanceGuid: crashedGuid });
    await instances.next<m.ActualLRPInstanceChangedEvent>(
      'actual_lrp_instance_changed',
      (e) => e.actualLrpKey?.processGuid === pg && e.after?.state === 'CRASHED',
    );
    // Restarted at once (crash #1): a new instance of that index (on a loaded machine it can follow the crash late).
    await eventually(() => expect(instances.named('actual_lrp_instance_created', ofPg)).toHaveLength(3), 60_000);

    await remove(pg);
    const removed = await instances.next<m.DesiredLRPRemovedEvent>(
      'desired_lrp_removed',
      (e) => e.desiredLrp?.processGuid === pg,
    );
    expect(removed.desiredLrp?.instances).toBe(2);
    // Every instance that was created (two, and one more after the crash) is removed again.
    await eventually(() => {
      expect(instances.named('actual_lrp_instance_created', ofPg)).toHaveLength(3);
      expect(instances.named('actual_lrp_instance_removed', ofPg)).toHaveLength(3);
    }, 30_000);

    // The wire: ids from 0 by one per connection, `id`/`event`/`data` lines, base64 protobuf, a blank line.
    expect(instances.events.map((e) => e.id)).toEqual(instances.events.map((_e, i) => i));
    expect(instances.raw).toMatch(/^id: 0\nevent: desired_lrp_created\ndata: [A-Za-z0-9+/]+=*\n\n/);

    // The deprecated group stream speaks in actual_lrp_created/changed/removed and crashed too.
    await groups.next<m.ActualLRPCreatedEvent>(
      'actual_lrp_created',
      (e) => e.actualLrpGroup?.instance?.actualLrpKey?.processGuid === pg,
    );
    await groups.next<m.ActualLRPChangedEvent>(
      'actual_lrp_changed',
      (e) => e.after?.instance?.state === 'RUNNING' && e.after.instance.actualLrpKey?.processGuid === pg,
    );
    await groups.next('actual_lrp_crashed');
    await groups.next<m.ActualLRPRemovedEvent>(
      'actual_lrp_removed',
      (e) => e.actualLrpGroup?.instance?.actualLrpKey?.processGuid === pg,
    );
    await groups.next('desired_lrp_removed');
    expect(groups.named('actual_lrp_instance_created')).toEqual([]);
    // ... and the deprecated instance stream sends the same event types with V0 desired LRPs.
    await legacy.next('desired_lrp_removed');
    expect(legacy.events.map((e) => e.name)).toEqual(instances.events.map((e) => e.name));

    for (const s of [instances, groups, legacy]) s.close();
  });

  it('keeps only the actual LRP events of the cell asked for', { timeout: 120_000 }, async () => {
    const [a, b] = await env.startCells(2);
    const all = await Stream.open('/v1/events/lrp_instances.r1');
    const onlyA = await Stream.open('/v1/events/lrp_instances.r1', 'POST', a!.o.cellId);
    // The deprecated group stream is a GET with the EventsByCellId body, as Diego's client sends it.
    const groupsA = await Stream.open('/v1/events.r1', 'GET', a!.o.cellId);
    const pg = guid('filtered-app');
    await desire(pg, 4);
    const runningOn = (s: Stream) =>
      s
        .named<m.ActualLRPInstanceChangedEvent>(
          'actual_lrp_instance_changed',
          (e) => e.actualLrpKey?.processGuid === pg && e.after?.state === 'RUNNING',
        )
        .map((e) => e.actualLrpInstanceKey?.cellId);
    // The auction spreads four instances over the two cells.
    await eventually(() => expect(new Set(runningOn(all))).toEqual(new Set([a!.o.cellId, b!.o.cellId])), 60_000);
    await eventually(() =>
      expect(runningOn(onlyA).length).toBe(runningOn(all).filter((c) => c === a!.o.cellId).length),
    );
    expect(new Set(runningOn(onlyA))).toEqual(new Set([a!.o.cellId]));
    // Desired LRP events are never filtered; unplaced instances (no cell yet) are not A's.
    await onlyA.next('desired_lrp_created');
    expect(onlyA.named('actual_lrp_instance_created')).toEqual([]);
    expect(
      all.named(
        'actual_lrp_instance_created',
        (e: m.ActualLRPInstanceCreatedEvent) => e.actualLrp?.actualLrpKey?.processGuid === pg,
      ),
    ).toHaveLength(4);
    const groupCells = (e: m.ActualLRPChangedEvent) => [
      e.before?.instance?.actualLrpInstanceKey?.cellId,
      e.after?.instance?.actualLrpInstanceKey?.cellId,
    ];
    await groupsA.next<m.ActualLRPChangedEvent>('actual_lrp_changed', (e) => e.after?.instance?.state === 'RUNNING');
    expect(
      groupsA.named<m.ActualLRPChangedEvent>('actual_lrp_changed').every((e) => groupCells(e).includes(a!.o.cellId)),
    ).toBe(true);
    expect(groupsA.named('actual_lrp_created')).toEqual([]); // unplaced instances have no cell yet
    all.close();
    onlyA.close();
    groupsA.close();
  });

  it('streams task events', { timeout: 60_000 }, async () => {
    const tasks = await Stream.open('/v1/events/tasks.r1');
    const legacy = await Stream.open('/v1/events/tasks');
    const taskGuid = guid('events-task');
    await bbs(
      '/v1/tasks/desire.r2',
      m.DesireTaskRequestSchema,
      {
        taskGuid,
        domain: 'cf-tasks',
        taskDefinition: {
          rootFs: 'preloaded:busybox',
          memoryMb: 16,
          diskMb: 16,
          action: { runAction: { path: '/bin/true', user: 'vcap' } },
        },
      },
      m.TaskLifecycleResponseSchema,
    );
    const ofTask = (e: { task?: m.Task }) => e.task?.taskGuid === taskGuid;
    const created = await tasks.next<m.TaskCreatedEvent>('task_created', ofTask);
    expect(created.task?.taskDefinition?.action?.runAction?.path).toBe('/bin/true');
    const call = (path: string) => bbs(path, m.TaskGuidRequestSchema, { taskGuid }, m.TaskLifecycleResponseSchema);
    await call('/v1/tasks/cancel');
    const completed = await tasks.next<m.TaskChangedEvent>(
      'task_changed',
      (e) => e.after?.taskGuid === taskGuid && e.after.state === m.Task_State.Completed,
    );
    expect(completed.after?.failed).toBe(true);
    expect(completed.after?.failureReason).toBe('task was cancelled');
    await call('/v1/tasks/resolving');
    await tasks.next<m.TaskChangedEvent>('task_changed', (e) => e.after?.state === m.Task_State.Resolving);
    await call('/v1/tasks/delete');
    const removed = await tasks.next<m.TaskRemovedEvent>('task_removed', ofTask);
    expect(removed.task?.state).toBe(m.Task_State.Resolving);
    await legacy.next('task_removed', ofTask);
    expect(legacy.events.map((e) => e.name)).toEqual(tasks.events.map((e) => e.name));
    tasks.close();
    legacy.close();
  });

  it('frees the subscription when the client goes away and ends streams when the facade closes', async () => {
    const before = await subscribers('task');
    const s = await Stream.open('/v1/events/tasks.r1');
    expect(await subscribers('task')).toBe(before + 1);
    s.close();
    await eventually(async () => expect(await subscribers('task')).toBe(before));

    const other = buildBbsApp({ client: env.client, namespace: env.ns, logger: env.log });
    await other.listen({ host: '127.0.0.1', port: 0 });
    const otherPort = (other.server.address() as AddressInfo).port;
    const saved = port;
    port = otherPort;
    const open = await Stream.open('/v1/events/lrp_instances.r1').finally(() => (port = saved));
    expect(open.res.statusCode).toBe(200);
    await other.close();
    await eventually(() => expect(open.ended).toBe(true), 10_000);
  });

  it('answers a body it cannot parse with a bare 500, as BBS does', async () => {
    const r = await app().inject({
      method: 'POST',
      url: '/v1/events/lrp_instances.r1',
      payload: Buffer.from([0x0a, 0xff]),
      headers: { 'content-type': PROTOBUF },
    });
    expect(r.statusCode).toBe(500);
    expect(r.body).toBe('');
  });
});
