// The cell-side ActualLRP routes (claim, start, crash, fail, remove) that Diego's rep and auctioneer call,
// mapped onto our protocol (docs/adr/0002): an instance is the ORDINARY record `<dlrp>-<index>` (plus
// `-suspect`/`-evacuating` copies), placement is spec.cellId, and every state change is one of the fenced
// operations every writer uses (src/lifecycle/ops.ts: Diego's AllowsTransitionTo, the instance key, a
// compare-and-swap), read again when it loses a race. This module finds the records and turns refusals into Diego's
// errors; the converger keeps its job of restarting crashed instances and re-creating removed ones.
import type { IActualLRP } from '../crds/models.ts';
import { holds, instanceKeyOf, type NetInfo, presenceOf, sameKey, stateOf } from '../lifecycle/actual-lrp.ts';
import { LABEL_INDEX } from '../lifecycle/names.ts';
import {
  claim as claimOp,
  crash as crashOp,
  done,
  failPlacement,
  type Outcome,
  remove as removeOp,
  removeCopy,
  retryMovedOn,
  start as startOp,
} from '../lifecycle/ops.ts';
import { BbsFailure, invalidField, notFound } from './errors.ts';
import { sel } from './handlers.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';

export { presenceOf };

/**
 * Every record (ORDINARY, SUSPECT, EVACUATING) of one index of a process. The index label (every record and
 * copy carries it) keeps the answer to those few records, not all instances of the process on every call.
 */
export async function recordsOf(ctx: Ctx, processGuid: string, index: number): Promise<IActualLRP[]> {
  if (!Number.isInteger(index) || index < 0) return []; // no such record (and no such label value)
  const items = await ctx.client.list('ActualLRP', {
    namespace: ctx.namespace,
    fieldSelector: sel('processGuid', processGuid),
    labelSelector: `${LABEL_INDEX}=${index}`,
  });
  return items.filter((a) => a.spec.index === index);
}

/** The record stands for the container of `key` (Diego's instance key; lifecycle's holds). */
export const sameInstance = (a: IActualLRP, key: m.ActualLRPInstanceKey | undefined) =>
  !!key && holds(a, { instanceGuid: key.instanceGuid, cellId: key.cellId });

export function keyErrors(key: m.ActualLRPKey | undefined, field = 'actual_lrp_key'): string[] {
  if (!key) return [field];
  return [
    ...(key.processGuid ? [] : ['process_guid']),
    ...(key.index < 0 ? ['index'] : []),
    ...(key.domain ? [] : ['domain']),
  ];
}

export function instanceKeyErrors(key: m.ActualLRPInstanceKey | undefined): string[] {
  if (!key) return ['actual_lrp_instance_key'];
  return [...(key.cellId ? [] : ['cell_id']), ...(key.instanceGuid ? [] : ['instance_guid'])];
}

export function check(bad: string[]): void {
  if (bad.length > 0) throw invalidField(...bad);
}

const cannot = (type: m.Error_Type, verb: string) => new BbsFailure(type, `cannot ${verb} actual LRP`);

/**
 * Runs `step` on the ORDINARY record of a key (and all the index's records), read again while its write loses a
 * race. A record gone meanwhile is ResourceNotFound; one that kept changing, ResourceConflict.
 */
async function withOrdinary(
  ctx: Ctx,
  processGuid: string,
  index: number,
  step: (ordinary: IActualLRP | undefined, all: IActualLRP[]) => Promise<Outcome<unknown>>,
): Promise<void> {
  const o = await retryMovedOn(async () => {
    const all = await recordsOf(ctx, processGuid, index);
    return step(
      all.find((a) => presenceOf(a) === 'ORDINARY'),
      all,
    );
  });
  if (o.outcome === 'moved-on')
    throw o.why === 'gone'
      ? notFound()
      : new BbsFailure(m.Error_Type.ResourceConflict, 'the requested resource is in a conflicting state');
}

/** A refusal (the transition table, the instance key, our placement rule) as Diego's cannot-X error. */
function orCannot<T>(o: Outcome<T>, type: m.Error_Type, verb: string): Outcome<T> {
  if (o.outcome === 'refused') throw cannot(type, verb);
  return o;
}

const ok = () => ({ $typeName: 'models.ActualLRPLifecycleResponse' as const });

async function claim(req: m.ClaimActualLRPRequest, ctx: Ctx) {
  check([...(req.processGuid ? [] : ['process_guid']), ...instanceKeyErrors(req.actualLrpInstanceKey)]);
  const { cellId, instanceGuid } = req.actualLrpInstanceKey!;
  const key = { cellId, instanceGuid };
  await withOrdinary(ctx, req.processGuid, req.index, async (a, all) => {
    // Diego: claiming a SUSPECT instance is a no-op (it keeps running until a replacement does).
    if (all.some((x) => presenceOf(x) === 'SUSPECT' && holds(x, key))) return done(undefined);
    if (!a) throw notFound();
    // Only the cell the auctioneer placed the instance on (spec.cellId) may claim it: a stale or foreign rep
    // cannot take an instance from the auction.
    return orCannot(await claimOp(ctx.client, a, key, Date.now()), m.Error_Type.ActualLRPCannotBeClaimed, 'claim');
  });
  return ok();
}

export function netInfoOf(n: m.ActualLRPNetInfo): NetInfo {
  const preferred = Object.entries(m.ActualLRPNetInfo_PreferredAddress).find(([, v]) => v === n.preferredAddress)?.[0];
  return {
    address: n.address,
    instanceAddress: n.instanceAddress || undefined,
    instanceIpv6Address: n.instanceIpv6Address || undefined,
    preferredAddress: preferred === 'INSTANCE' || preferred === 'HOST' ? preferred : 'UNKNOWN',
    ports: n.ports.map((p) => ({
      containerPort: p.containerPort,
      hostPort: p.hostPort,
      ...(p.containerTlsProxyPort ? { containerTlsProxyPort: p.containerTlsProxyPort } : {}),
      ...(p.hostTlsProxyPort ? { hostTlsProxyPort: p.hostTlsProxyPort } : {}),
    })),
  };
}

/** start.r1 records internal routes and metric tags; the deprecated start (r0) ignores them, as Diego does. */
function start(withExtras: boolean) {
  return async (req: m.StartActualLRPRequest, ctx: Ctx) => {
    check([
      ...keyErrors(req.actualLrpKey),
      ...instanceKeyErrors(req.actualLrpInstanceKey),
      ...(!req.actualLrpNetInfo ? ['actual_lrp_net_info'] : req.actualLrpNetInfo.address ? [] : ['address']),
    ]);
    const lrpKey = req.actualLrpKey!;
    const { cellId, instanceGuid } = req.actualLrpInstanceKey!;
    const key = { cellId, instanceGuid };
    const info = {
      netInfo: netInfoOf(req.actualLrpNetInfo!),
      routable: req.optionalRoutable.case === 'Routable' ? req.optionalRoutable.value : true,
      availabilityZone: req.availabilityZone,
      internalRoutes: withExtras ? req.actualLrpInternalRoutes.map((r) => ({ hostname: r.hostname })) : [],
      metricTags: withExtras ? req.metricTags : {},
    };
    await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a, all) => {
      if (all.some((x) => presenceOf(x) === 'SUSPECT' && holds(x, key))) return done(undefined);
      // Diego would create a missing record here; ours are created only by the converger (owner, finalizer).
      if (!a) throw notFound();
      if (a.spec.domain !== lrpKey.domain) throw cannot(m.Error_Type.ActualLRPCannotBeStarted, 'start');
      // Diego's StartActualLRP starts any claim of the record, on the cell it is placed on; a heartbeat that
      // changes nothing writes nothing.
      const started = await startOp(ctx.client, a, key, info, { now: Date.now(), claim: 'any' });
      return orCannot(started, m.Error_Type.ActualLRPCannotBeStarted, 'start');
    });
    return ok();
  };
}

async function crash(req: m.CrashActualLRPRequest, ctx: Ctx) {
  check([...keyErrors(req.actualLrpKey), ...instanceKeyErrors(req.actualLrpInstanceKey)]);
  const lrpKey = req.actualLrpKey!;
  const { cellId, instanceGuid } = req.actualLrpInstanceKey!;
  const key = { cellId, instanceGuid };
  await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a, all) => {
    // Diego: a crashed SUSPECT instance is simply removed; its ORDINARY replacement carries on.
    const suspect = all.find((x) => presenceOf(x) === 'SUSPECT' && holds(x, key));
    if (suspect) return removeCopy(ctx.client, suspect, { owner: key });
    if (!a) throw notFound();
    if (a.spec.domain !== lrpKey.domain) throw cannot(m.Error_Type.ActualLRPCannotBeCrashed, 'crash');
    // The converger applies the restart policy (immediately or after the backoff) to the CRASHED record.
    const crashed = await crashOp(ctx.client, a, key, req.errorMessage, { now: Date.now() });
    return orCannot(crashed, m.Error_Type.ActualLRPCannotBeCrashed, 'crash');
  });
  return ok();
}

async function fail(req: m.FailActualLRPRequest, ctx: Ctx) {
  check([...keyErrors(req.actualLrpKey), ...(req.errorMessage ? [] : ['error_message'])]);
  const lrpKey = req.actualLrpKey!;
  await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a) => {
    if (!a) return done(undefined); // Diego answers a missing instance without an error here
    if (stateOf(a) !== 'UNCLAIMED' || a.spec.domain !== lrpKey.domain)
      throw cannot(m.Error_Type.ActualLRPCannotBeFailed, 'fail');
    const failed = await failPlacement(ctx.client, a, req.errorMessage, { now: Date.now() });
    return orCannot(failed, m.Error_Type.ActualLRPCannotBeFailed, 'fail');
  });
  return ok();
}

async function remove(req: m.RemoveActualLRPRequest, ctx: Ctx) {
  check([...(req.processGuid ? [] : ['process_guid']), ...(req.index < 0 ? ['index'] : [])]);
  const key = req.actualLrpInstanceKey;
  await withOrdinary(ctx, req.processGuid, req.index, async (a) => {
    // Diego: an instance key that is not the record's (an empty one matches an UNCLAIMED record) is not found.
    if (!a || (key && !sameKey(instanceKeyOf(a), { cellId: key.cellId, instanceGuid: key.instanceGuid })))
      throw notFound();
    // The caller named the instance it ran: its container is gone, so "stop, then remove" is already done.
    return removeOp(ctx.client, a, { containerGone: !!key });
  });
  return ok();
}

export const actualLRPLifecycleRoutes: Record<string, Route> = {
  '/v1/actual_lrps/claim': route(m.ClaimActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, claim),
  '/v1/actual_lrps/start.r1': route(m.StartActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, start(true)),
  '/v1/actual_lrps/start': route(m.StartActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, start(false)),
  '/v1/actual_lrps/crash': route(m.CrashActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, crash),
  '/v1/actual_lrps/fail': route(m.FailActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, fail),
  '/v1/actual_lrps/remove': route(m.RemoveActualLRPRequestSchema, m.ActualLRPLifecycleResponseSchema, remove),
};
