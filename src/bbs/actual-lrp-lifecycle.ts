// The cell-side ActualLRP routes (claim, start, crash, fail, remove) that Diego's rep and auctioneer call,
// mapped onto our protocol (docs/adr/0002): an instance is the ORDINARY record `<dlrp>-<index>` (plus
// `-suspect`/`-evacuating` copies), placement is spec.cellId, and every state change is a status merge patch
// carrying the resourceVersion we checked (a compare-and-swap, retried after a fresh read when it loses).
// Transitions follow Diego's ActualLRP.AllowsTransitionTo; the converger keeps its job of restarting
// crashed instances and re-creating removed ones.
import type { IActualLRP } from '../crds/models.ts';
import { crashedStatus, releaseContainer } from '../controllers/evacuation.ts';
import { LABEL_INDEX } from '../controllers/names.ts';
import { refOf, retryOnConflict } from '../lib/resources.ts';
import { BbsFailure, invalidField, notFound } from './errors.ts';
import { sel } from './handlers.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';

/** Diego truncates crash reasons and placement errors to 1024 characters. */
const REASON_MAX = 1024;

export const presenceOf = (a: IActualLRP) => a.status?.presence ?? 'ORDINARY';
const stateOf = (a: IActualLRP) => a.status?.state ?? 'UNCLAIMED';

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

export const sameInstance = (a: IActualLRP, key: m.ActualLRPInstanceKey | undefined) =>
  !!key && (a.status?.instanceGuid ?? '') === key.instanceGuid && (a.status?.cellId ?? '') === key.cellId;

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
 * Our protocol on top of Diego's transition table: only the cell the auctioneer placed the instance on
 * (spec.cellId) may claim or start it, so a stale or foreign rep cannot take an instance from the auction.
 */
const placedOn = (a: IActualLRP, cellId: string) => a.spec.cellId === cellId;

/** The ORDINARY record of a key, re-read on every attempt; a lost compare-and-swap re-runs `step`. */
function withOrdinary<T>(
  ctx: Ctx,
  processGuid: string,
  index: number,
  step: (ordinary: IActualLRP | undefined, all: IActualLRP[]) => Promise<T>,
): Promise<T> {
  return retryOnConflict(async () => {
    const all = await recordsOf(ctx, processGuid, index);
    return step(
      all.find((a) => presenceOf(a) === 'ORDINARY'),
      all,
    );
  });
}

const ok = () => ({ $typeName: 'models.ActualLRPLifecycleResponse' as const });

async function claim(req: m.ClaimActualLRPRequest, ctx: Ctx) {
  check([...(req.processGuid ? [] : ['process_guid']), ...instanceKeyErrors(req.actualLrpInstanceKey)]);
  const key = req.actualLrpInstanceKey!;
  await withOrdinary(ctx, req.processGuid, req.index, async (a, all) => {
    // Diego: claiming a SUSPECT instance is a no-op (it keeps running until a replacement does).
    if (all.some((x) => presenceOf(x) === 'SUSPECT' && sameInstance(x, key))) return;
    if (!a) throw notFound();
    const state = stateOf(a);
    if (state === 'CLAIMED' && sameInstance(a, key)) return;
    const allowed = state === 'UNCLAIMED' || ((state === 'RUNNING' || state === 'CRASHED') && sameInstance(a, key));
    if (!allowed || !placedOn(a, key.cellId)) throw cannot(m.Error_Type.ActualLRPCannotBeClaimed, 'claim');
    await ctx.client.patchStatus('ActualLRP', refOf(a), {
      state: 'CLAIMED',
      cellId: key.cellId,
      instanceGuid: key.instanceGuid,
      since: new Date().toISOString(),
      placementError: null,
      netInfo: null,
    });
  });
  return ok();
}

export function netInfoOf(n: m.ActualLRPNetInfo): Record<string, unknown> {
  return {
    address: n.address,
    instanceAddress: n.instanceAddress || undefined,
    instanceIpv6Address: n.instanceIpv6Address || undefined,
    preferredAddress:
      Object.entries(m.ActualLRPNetInfo_PreferredAddress).find(([, v]) => v === n.preferredAddress)?.[0] ?? 'UNKNOWN',
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
    const key = req.actualLrpInstanceKey!;
    const routable = req.optionalRoutable.case === 'Routable' ? req.optionalRoutable.value : true;
    await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a, all) => {
      if (all.some((x) => presenceOf(x) === 'SUSPECT' && sameInstance(x, key))) return;
      // Diego would create a missing record here; ours are created only by the converger (owner, finalizer).
      if (!a) throw notFound();
      const state = stateOf(a);
      const allowed =
        a.spec.domain === lrpKey.domain &&
        (state === 'UNCLAIMED' || state === 'CLAIMED' || sameInstance(a, key)) &&
        placedOn(a, key.cellId);
      if (!allowed) throw cannot(m.Error_Type.ActualLRPCannotBeStarted, 'start');
      const status = {
        state: 'RUNNING',
        cellId: key.cellId,
        instanceGuid: key.instanceGuid,
        netInfo: netInfoOf(req.actualLrpNetInfo!),
        internalRoutes: withExtras ? req.actualLrpInternalRoutes.map((r) => ({ hostname: r.hostname })) : [],
        metricTags: withExtras ? req.metricTags : {},
        routable,
        availabilityZone: req.availabilityZone,
        placementError: null,
      };
      if (state === 'RUNNING' && sameAsRunning(a, status)) return; // a rep's heartbeat: nothing changed
      // A merge patch merges maps: null out the tags the new set no longer has.
      const dropped = Object.fromEntries(Object.keys(a.status?.metricTags ?? {}).map((k) => [k, null]));
      await ctx.client.patchStatus('ActualLRP', refOf(a), {
        ...status,
        metricTags: { ...dropped, ...status.metricTags },
        since: new Date().toISOString(),
      });
    });
    return ok();
  };
}

function sameAsRunning(a: IActualLRP, s: Record<string, unknown>): boolean {
  const st = (a.status ?? {}) as Record<string, unknown>;
  return ['instanceGuid', 'cellId', 'netInfo', 'internalRoutes', 'metricTags', 'routable', 'availabilityZone'].every(
    (k) => JSON.stringify(normalise(st[k])) === JSON.stringify(normalise(s[k])),
  );
}

/** Drops undefined and empty values so a stored record and a request compare equal when Diego's would. */
function normalise(v: unknown): unknown {
  if (Array.isArray(v)) return v.length === 0 ? undefined : v.map(normalise);
  if (v === null || typeof v !== 'object') return v === '' ? undefined : v;
  const entries = Object.entries(v)
    .map(([k, x]) => [k, normalise(x)] as const)
    .filter(([, x]) => x !== undefined)
    .sort(([x], [y]) => x.localeCompare(y));
  return entries.length === 0 ? undefined : Object.fromEntries(entries);
}

async function crash(req: m.CrashActualLRPRequest, ctx: Ctx) {
  check([...keyErrors(req.actualLrpKey), ...instanceKeyErrors(req.actualLrpInstanceKey)]);
  const lrpKey = req.actualLrpKey!;
  const key = req.actualLrpInstanceKey!;
  await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a, all) => {
    // Diego: a crashed SUSPECT instance is simply removed; its ORDINARY replacement carries on.
    const suspect = all.find((x) => presenceOf(x) === 'SUSPECT' && sameInstance(x, key));
    if (suspect) return ctx.client.delete('ActualLRP', refOf(suspect));
    if (!a) throw notFound();
    const state = stateOf(a);
    if (a.spec.domain !== lrpKey.domain || (state !== 'CLAIMED' && state !== 'RUNNING') || !sameInstance(a, key))
      throw cannot(m.Error_Type.ActualLRPCannotBeCrashed, 'crash');
    // The converger applies the restart policy (immediately or after the backoff) to the CRASHED record.
    await ctx.client.patchStatus('ActualLRP', refOf(a), crashedStatus(a, req.errorMessage));
  });
  return ok();
}

async function fail(req: m.FailActualLRPRequest, ctx: Ctx) {
  check([...keyErrors(req.actualLrpKey), ...(req.errorMessage ? [] : ['error_message'])]);
  const lrpKey = req.actualLrpKey!;
  await withOrdinary(ctx, lrpKey.processGuid, lrpKey.index, async (a) => {
    if (!a) return; // Diego answers a missing instance without an error here
    if (stateOf(a) !== 'UNCLAIMED' || a.spec.domain !== lrpKey.domain)
      throw cannot(m.Error_Type.ActualLRPCannotBeFailed, 'fail');
    await ctx.client.patchStatus('ActualLRP', refOf(a), {
      placementError: req.errorMessage.slice(0, REASON_MAX),
      since: new Date().toISOString(),
    });
  });
  return ok();
}

async function remove(req: m.RemoveActualLRPRequest, ctx: Ctx) {
  check([...(req.processGuid ? [] : ['process_guid']), ...(req.index < 0 ? ['index'] : [])]);
  const key = req.actualLrpInstanceKey;
  await withOrdinary(ctx, req.processGuid, req.index, async (a) => {
    if (!a || (key && !sameInstance(a, key))) throw notFound();
    await ctx.client.delete('ActualLRP', refOf(a));
    // The caller named the instance it ran: its container is gone, so "stop, then remove" is already done.
    if (key) await releaseContainer(ctx.client, a);
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
