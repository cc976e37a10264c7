// The BBS routes we serve (bbs-api.md §2) on top of the Diego CRs. Lookups go by field selector on the guid,
// because a guid that is not a valid Kubernetes name is stored under a hashed name (translate.ts objectName).
import { create, fromJson, type DescMessage, type JsonValue } from '@bufbuild/protobuf';
import type { IDesiredLRP, ITask } from '../crds/models.ts';
import { isAlreadyExists, isNotFound, refOf, retryOnConflict, type KindMap } from '../lib/resources.ts';
import { cancelTask, deleteTask, type Outcome, remove, resolveTask, retryMovedOn } from '../lifecycle/ops.ts';
import { EmptySchema } from '@bufbuild/protobuf/wkt';
import { route, type Ctx, type Route } from './route.ts';
import { createInstances } from './desire.ts';
import { desiredLRPToV2, taskDefinitionToV2 } from './downgrade.ts';
import { listFreshDomains, listPresentCells, upsertDomain } from './leases.ts';
import { BbsFailure, exists, invalidField, notFound } from './errors.ts';
import {
  createWithCredentials,
  fillCredentials,
  inlineCredentials,
  readCredentials,
  updateCredentials,
  withoutInline,
} from './image-credentials.ts';
import * as m from './models.ts';
import {
  actualLRPFromCR,
  desiredLRPFromCR,
  desiredLRPToSpec,
  objectName,
  schedulingInfoOf,
  taskFromCR,
  taskToSpec,
} from './translate.ts';

/** A field selector term; `\`, `,` and `=` in the value are escaped so a guid cannot add terms of its own. */
export const sel = (field: string, value: string) => `spec.${field}=${value.replace(/[\\,=]/g, (c) => `\\${c}`)}`;

/**
 * What the facade created is named objectName(guid): one GET finds it. Objects made another way (kubectl apply
 * with any name) are found by the selectable field, a list that costs more as the namespace grows.
 */
async function findByGuid<K extends 'DesiredLRP' | 'Task'>(
  ctx: Ctx,
  kind: K,
  field: 'processGuid' | 'taskGuid',
  guid: string,
): Promise<KindMap[K] | undefined> {
  try {
    const obj = await ctx.client.get(kind, ctx.namespace, objectName(guid));
    if ((obj.spec as Record<string, unknown>)[field] === guid) return obj;
  } catch (err) {
    if (!isNotFound(err)) throw err;
  }
  const [found] = await ctx.client.list(kind, { namespace: ctx.namespace, fieldSelector: sel(field, guid) });
  return found;
}

async function findDesired(ctx: Ctx, processGuid: string): Promise<IDesiredLRP> {
  if (!processGuid) throw invalidField('process_guid');
  const lrp = await findByGuid(ctx, 'DesiredLRP', 'processGuid', processGuid);
  if (!lrp) throw notFound();
  return lrp;
}

export async function findTask(ctx: Ctx, taskGuid: string): Promise<ITask> {
  if (!taskGuid) throw invalidField('task_guid');
  const task = await findByGuid(ctx, 'Task', 'taskGuid', taskGuid);
  if (!task) throw notFound();
  return task;
}

/** Sets Diego's inline image credentials of a DesiredLRP message (kept in a Secret: image-credentials.ts). */
const setLRPCredentials = (lrp: m.DesiredLRP, c: { username: string; password: string }) => {
  lrp.imageUsername = c.username;
  lrp.imagePassword = c.password;
};
const setTaskCredentials = (t: m.Task, c: { username: string; password: string }) => {
  if (!t.taskDefinition) return;
  t.taskDefinition.imageUsername = c.username;
  t.taskDefinition.imagePassword = c.password;
};

/** A DesiredLRP as Diego's read routes give it: with its image credentials, read back from their Secret. */
async function desiredWithCredentials(ctx: Ctx, cr: IDesiredLRP): Promise<m.DesiredLRP> {
  const lrp = desiredLRPFromCR(cr);
  const credentials = await readCredentials(ctx, cr.spec.imageCredentialsSecret);
  if (credentials) setLRPCredentials(lrp, credentials);
  return lrp;
}

async function taskWithCredentials(ctx: Ctx, cr: ITask): Promise<m.Task> {
  const task = taskFromCR(cr);
  const credentials = await readCredentials(ctx, cr.spec.imageCredentialsSecret);
  if (credentials) setTaskCredentials(task, credentials);
  return task;
}

async function listDesired(ctx: Ctx, req: m.DesiredLRPsRequest): Promise<m.DesiredLRP[]> {
  const items = await ctx.client.list('DesiredLRP', {
    namespace: ctx.namespace,
    fieldSelector: req.domain ? sel('domain', req.domain) : undefined,
  });
  const pairs = items
    .filter((d) => req.processGuids.length === 0 || req.processGuids.includes(d.spec.processGuid))
    .filter((d) => req.appGuids.length === 0 || req.appGuids.some((a) => d.spec.processGuid.startsWith(a)))
    .map((d) => ({ object: d, message: desiredLRPFromCR(d) }));
  await fillCredentials(ctx, pairs, setLRPCredentials);
  return pairs.map((p) => p.message);
}

async function listTasks(ctx: Ctx, req: m.TasksRequest): Promise<m.Task[]> {
  const items = await ctx.client.list('Task', {
    namespace: ctx.namespace,
    fieldSelector: req.domain ? sel('domain', req.domain) : undefined,
  });
  const pairs = items
    .filter((t) => !req.cellId || t.status?.cellId === req.cellId)
    .map((t) => ({ object: t, message: taskFromCR(t) }));
  await fillCredentials(ctx, pairs, setTaskCredentials);
  return pairs.map((p) => p.message);
}

const taskToV2 = (t: m.Task): m.Task =>
  t.taskDefinition ? { ...t, taskDefinition: taskDefinitionToV2(t.taskDefinition) } : t;

/**
 * A task operation (lifecycle/task-ops.ts) on the task as read now, read again while it loses a race: a refusal of
 * the state machine is Diego's InvalidStateTransition (its message is Diego's), a task gone is ResourceNotFound.
 */
async function onTask(ctx: Ctx, taskGuid: string, op: (task: ITask) => Promise<Outcome<unknown>>): Promise<void> {
  const o = await retryMovedOn(async () => op(await findTask(ctx, taskGuid)));
  if (o.outcome === 'refused') throw new BbsFailure(m.Error_Type.InvalidStateTransition, o.reason);
  if (o.outcome === 'moved-on')
    throw o.why === 'gone'
      ? notFound()
      : new BbsFailure(m.Error_Type.ResourceConflict, 'the requested resource is in a conflicting state');
}

const ok = <S extends DescMessage>(schema: S, init: Record<string, unknown> = {}) => create(schema, init as never);

export const bbsRoutes: Record<string, Route> = {
  '/v1/ping': route(EmptySchema, m.PingResponseSchema, () =>
    Promise.resolve(ok(m.PingResponseSchema, { available: true })),
  ),

  '/v1/domains/upsert': route(m.UpsertDomainRequestSchema, m.UpsertDomainResponseSchema, async (req, ctx) => {
    if (!req.domain) throw invalidField('domain');
    await upsertDomain(ctx.client.kc, ctx.systemNamespace, req.domain, req.ttl);
    return ok(m.UpsertDomainResponseSchema);
  }),
  '/v1/domains/list': route(EmptySchema, m.DomainsResponseSchema, async (_req, ctx) =>
    ok(m.DomainsResponseSchema, { domains: await listFreshDomains(ctx.client.kc, ctx.systemNamespace) }),
  ),
  '/v1/cells/list.r1': route(EmptySchema, m.CellsResponseSchema, async (_req, ctx) => {
    const present = new Set(await listPresentCells(ctx.client.kc, ctx.systemNamespace));
    const cells = (await ctx.client.list('Cell')).filter((c) => present.has(c.spec.cellId));
    return ok(m.CellsResponseSchema, {
      cells: cells.map((c) =>
        fromJson(m.CellPresenceSchema, c.spec as unknown as JsonValue, { ignoreUnknownFields: true }),
      ),
    });
  }),

  '/v1/desired_lrp/desire.r2': route(
    m.DesireLRPRequestSchema,
    m.DesiredLRPLifecycleResponseSchema,
    async (req, ctx) => {
      if (!req.desiredLrp) throw invalidField('desired_lrp');
      const credentials = inlineCredentials(req.desiredLrp.imageUsername, req.desiredLrp.imagePassword);
      const spec = withoutInline(desiredLRPToSpec(req.desiredLrp));
      const name = objectName(spec.processGuid);
      // Inline credentials go to a Secret the DesiredLRP names: every cell agent reads DesiredLRPs.
      const created = await createWithCredentials(ctx, 'DesiredLRP', name, credentials, async (secret) => {
        try {
          return await ctx.client.create('DesiredLRP', {
            metadata: { name, namespace: ctx.namespace },
            spec: { ...spec, ...(secret ? { imageCredentialsSecret: secret } : {}) },
          });
        } catch (err) {
          throw isAlreadyExists(err) ? exists() : err;
        }
      });
      // Diego answers once the UNCLAIMED instances exist.
      await createInstances(ctx, created, 0, spec.instances ?? 1);
      return ok(m.DesiredLRPLifecycleResponseSchema);
    },
  ),
  '/v1/desired_lrps/list.r3': route(m.DesiredLRPsRequestSchema, m.DesiredLRPsResponseSchema, async (req, ctx) =>
    ok(m.DesiredLRPsResponseSchema, { desiredLrps: await listDesired(ctx, req) }),
  ),
  '/v1/desired_lrps/list.r2': route(m.DesiredLRPsRequestSchema, m.DesiredLRPsResponseSchema, async (req, ctx) =>
    ok(m.DesiredLRPsResponseSchema, { desiredLrps: (await listDesired(ctx, req)).map(desiredLRPToV2) }),
  ),
  '/v1/desired_lrps/get_by_process_guid.r3': route(
    m.DesiredLRPByProcessGuidRequestSchema,
    m.DesiredLRPResponseSchema,
    async (req, ctx) =>
      ok(m.DesiredLRPResponseSchema, {
        desiredLrp: await desiredWithCredentials(ctx, await findDesired(ctx, req.processGuid)),
      }),
  ),
  '/v1/desired_lrps/get_by_process_guid.r2': route(
    m.DesiredLRPByProcessGuidRequestSchema,
    m.DesiredLRPResponseSchema,
    async (req, ctx) =>
      ok(m.DesiredLRPResponseSchema, {
        desiredLrp: desiredLRPToV2(await desiredWithCredentials(ctx, await findDesired(ctx, req.processGuid))),
      }),
  ),
  '/v1/desired_lrp_scheduling_infos/get_by_process_guid': route(
    m.DesiredLRPByProcessGuidRequestSchema,
    m.DesiredLRPSchedulingInfoByProcessGuidResponseSchema,
    async (req, ctx) =>
      ok(m.DesiredLRPSchedulingInfoByProcessGuidResponseSchema, {
        desiredLrpSchedulingInfo: schedulingInfoOf(desiredLRPFromCR(await findDesired(ctx, req.processGuid))),
      }),
  ),
  '/v1/desired_lrp_scheduling_infos/list': route(
    m.DesiredLRPsRequestSchema,
    m.DesiredLRPSchedulingInfosResponseSchema,
    async (req, ctx) =>
      ok(m.DesiredLRPSchedulingInfosResponseSchema, {
        desiredLrpSchedulingInfos: (await listDesired(ctx, req)).map(schedulingInfoOf),
      }),
  ),
  '/v1/desired_lrp/update': route(
    m.UpdateDesiredLRPRequestSchema,
    m.DesiredLRPLifecycleResponseSchema,
    // Re-read and retry a lost compare-and-swap: the converger's status writes move resourceVersion too, and
    // Diego's update does not fail because an instance changed meanwhile.
    async (req, ctx) => {
      const [before, after, credentialsDone] = await retryOnConflict(async () => {
        const cur = await findDesired(ctx, req.processGuid);
        const u = req.update;
        if (!u) throw invalidField('update');
        const patch: Record<string, unknown> = {};
        if (u.optionalInstances.case) {
          if (u.optionalInstances.value < 0) throw invalidField('instances');
          patch.instances = u.optionalInstances.value;
        }
        if (u.optionalAnnotation.case) patch.annotation = u.optionalAnnotation.value;
        // New image credentials reach their Secret before the DesiredLRP names it.
        const credentials = await updateCredentials(
          ctx,
          cur,
          u.optionalImageUsername.case ? u.optionalImageUsername.value : undefined,
          u.optionalImagePassword.case ? u.optionalImagePassword.value : undefined,
        );
        Object.assign(patch, credentials.patch);
        if (Object.keys(u.metricTags).length > 0) {
          const tags = desiredLRPFromCR({ ...cur, spec: { ...cur.spec, routes: undefined } });
          tags.metricTags = u.metricTags;
          patch.metricTags = desiredLRPToSpec(tags).metricTags;
        }
        if (u.routes) {
          const withRoutes = desiredLRPFromCR(cur);
          withRoutes.routes = u.routes;
          patch.routes = desiredLRPToSpec(withRoutes).routes ?? null;
        }
        // Compare-and-swap on resourceVersion, so the patch is computed from the version it applies to.
        return [cur, await ctx.client.patch('DesiredLRP', refOf(cur), { spec: patch }), credentials.after] as const;
      });
      await credentialsDone();
      // Diego's scale-up creates the new indices before answering (a scale-down is the converger's).
      await createInstances(ctx, after, before.spec.instances ?? 1, after.spec.instances ?? 1);
      return ok(m.DesiredLRPLifecycleResponseSchema);
    },
  ),
  '/v1/desired_lrp/remove': route(
    m.RemoveDesiredLRPRequestSchema,
    m.DesiredLRPLifecycleResponseSchema,
    async (req, ctx) => {
      const cur = await findDesired(ctx, req.processGuid);
      await ctx.client.delete('DesiredLRP', { namespace: ctx.namespace, name: cur.metadata.name! });
      return ok(m.DesiredLRPLifecycleResponseSchema);
    },
  ),

  '/v1/actual_lrps/list': route(m.ActualLRPsRequestSchema, m.ActualLRPsResponseSchema, async (req, ctx) => {
    const fields = [
      req.domain && sel('domain', req.domain),
      req.cellId && sel('cellId', req.cellId),
      req.processGuid && sel('processGuid', req.processGuid),
    ].filter(Boolean);
    const items = await ctx.client.list('ActualLRP', {
      namespace: ctx.namespace,
      fieldSelector: fields.length > 0 ? fields.join(',') : undefined,
    });
    const index = req.optionalIndex.case ? req.optionalIndex.value : undefined;
    return ok(m.ActualLRPsResponseSchema, {
      actualLrps: items.filter((a) => index === undefined || a.spec.index === index).map(actualLRPFromCR),
    });
  }),

  '/v1/actual_lrps/list_by_process_guids': route(
    m.ActualLRPsByProcessGuidsRequestSchema,
    m.ActualLRPsByProcessGuidsResponseSchema,
    async (req, ctx) => {
      // One list for the namespace beats one request per guid for Cloud Controller's bulk calls.
      const wanted = new Set(req.processGuids);
      const items = await ctx.client.list('ActualLRP', { namespace: ctx.namespace });
      return ok(m.ActualLRPsByProcessGuidsResponseSchema, {
        actualLrps: items.filter((a) => wanted.has(a.spec.processGuid)).map(actualLRPFromCR),
      });
    },
  ),

  // CC's "restart instance": deleting the ORDINARY ActualLRP makes its cell stop the container (finalizer); the
  // converger's next pass creates a fresh instance at the same index, as Diego's retire + convergence do.
  '/v1/actual_lrps/retire': route(
    m.RetireActualLRPRequestSchema,
    m.ActualLRPLifecycleResponseSchema,
    async (req, ctx) => {
      const key = req.actualLrpKey;
      const bad = [
        ...(!key?.processGuid ? ['process_guid'] : []),
        ...(!key || key.index < 0 ? ['index'] : []),
        ...(!key?.domain ? ['domain'] : []),
      ];
      if (!key || bad.length > 0) throw invalidField(...bad);
      const items = await ctx.client.list('ActualLRP', {
        namespace: ctx.namespace,
        fieldSelector: sel('processGuid', key.processGuid),
      });
      const target = items.find((a) => a.spec.index === key.index && (a.status?.presence ?? 'ORDINARY') === 'ORDINARY');
      if (!target) throw notFound();
      await remove(ctx.client, target, { asSeen: false });
      return ok(m.ActualLRPLifecycleResponseSchema);
    },
  ),

  '/v1/tasks/desire.r2': route(m.DesireTaskRequestSchema, m.TaskLifecycleResponseSchema, async (req, ctx) => {
    const credentials = inlineCredentials(
      req.taskDefinition?.imageUsername ?? '',
      req.taskDefinition?.imagePassword ?? '',
    );
    const spec = withoutInline(taskToSpec(req.taskGuid, req.domain, req.taskDefinition));
    // Diego: a task guid is unique across domains; the hashed name alone cannot promise that.
    if (
      (await ctx.client.list('Task', { namespace: ctx.namespace, fieldSelector: sel('taskGuid', req.taskGuid) })).length
    )
      throw exists();
    const name = objectName(req.taskGuid);
    await createWithCredentials(ctx, 'Task', name, credentials, async (secret) => {
      try {
        return await ctx.client.create('Task', {
          metadata: { name, namespace: ctx.namespace },
          spec: { ...spec, ...(secret ? { imageCredentialsSecret: secret } : {}) },
        });
      } catch (err) {
        throw isAlreadyExists(err) ? exists() : err;
      }
    });
    return ok(m.TaskLifecycleResponseSchema);
  }),
  '/v1/tasks/list.r3': route(m.TasksRequestSchema, m.TasksResponseSchema, async (req, ctx) =>
    ok(m.TasksResponseSchema, { tasks: await listTasks(ctx, req) }),
  ),
  '/v1/tasks/list.r2': route(m.TasksRequestSchema, m.TasksResponseSchema, async (req, ctx) =>
    ok(m.TasksResponseSchema, { tasks: (await listTasks(ctx, req)).map(taskToV2) }),
  ),
  '/v1/tasks/get_by_task_guid.r3': route(m.TaskByGuidRequestSchema, m.TaskResponseSchema, async (req, ctx) =>
    ok(m.TaskResponseSchema, { task: await taskWithCredentials(ctx, await findTask(ctx, req.taskGuid)) }),
  ),
  '/v1/tasks/get_by_task_guid.r2': route(m.TaskByGuidRequestSchema, m.TaskResponseSchema, async (req, ctx) =>
    ok(m.TaskResponseSchema, { task: taskToV2(await taskWithCredentials(ctx, await findTask(ctx, req.taskGuid))) }),
  ),
  // Re-read and re-checked on a lost compare-and-swap: the controllers write tasks too.
  '/v1/tasks/cancel': route(m.TaskGuidRequestSchema, m.TaskLifecycleResponseSchema, async (req, ctx) => {
    // The task controller completes a cancelled task (failed, "task was cancelled") and its cell stops it: one
    // writer of task status. A compare-and-swap, so a task that just completed is not cancelled after the fact.
    await onTask(ctx, req.taskGuid, (task) => cancelTask(ctx.client, task));
    return ok(m.TaskLifecycleResponseSchema);
  }),
  '/v1/tasks/resolving': route(m.TaskGuidRequestSchema, m.TaskLifecycleResponseSchema, async (req, ctx) => {
    await onTask(ctx, req.taskGuid, (task) => resolveTask(ctx.client, task, new Date()));
    return ok(m.TaskLifecycleResponseSchema);
  }),
  '/v1/tasks/delete': route(m.TaskGuidRequestSchema, m.TaskLifecycleResponseSchema, async (req, ctx) => {
    await onTask(ctx, req.taskGuid, (task) => deleteTask(ctx.client, task, { event: 'delete' }));
    return ok(m.TaskLifecycleResponseSchema);
  }),
};
