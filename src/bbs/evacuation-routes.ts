// The evacuation routes a draining Diego rep calls (remove_evacuating, evacuate_claimed/crashed/stopped,
// evacuate_running and its deprecated r0), mapped onto our protocol: the operations are the cell-agent's own
// (lifecycle/evacuation.ts, docs/adr/0002 addendum), so a Diego rep and our evacuator move instances through
// the same compare-and-swap writes; this module finds the index's records, checks the request as Diego's
// Validate does, and turns outcomes into Diego's answers (keep_container and errors).
import { type InstanceKey, presenceOf } from '../lifecycle/actual-lrp.ts';
import {
  evacuateClaimed,
  evacuateCrashed,
  evacuateRunning,
  evacuateStopped,
  removeEvacuating,
} from '../lifecycle/evacuation.ts';
import { copyPresenceOfName, ordinaryNameOf as ordinaryNameOfRecord } from '../lifecycle/names.ts';
import { BbsFailure, notFound, toBbsError } from './errors.ts';
import { check, instanceKeyErrors, keyErrors, netInfoOf, recordsOf, sameInstance } from './actual-lrp-lifecycle.ts';
import * as m from './models.ts';
import { route, type Ctx, type Route } from './route.ts';

/** A request naming an index and the container (instance key) that asks. */
interface Keyed {
  actualLrpKey?: m.ActualLRPKey;
  actualLrpInstanceKey?: m.ActualLRPInstanceKey;
}

/** Diego's Validate of the evacuation requests: both keys, complete. */
function keys(req: Keyed, more: string[] = []): { lrpKey: m.ActualLRPKey; me: InstanceKey } {
  check([...keyErrors(req.actualLrpKey), ...instanceKeyErrors(req.actualLrpInstanceKey), ...more]);
  const { cellId, instanceGuid } = req.actualLrpInstanceKey!;
  return { lrpKey: req.actualLrpKey!, me: { cellId, instanceGuid } };
}

/**
 * The ORDINARY record's name of an index (`<desiredlrp>-<index>`), taken from whichever of its records exists:
 * copies carry a `-evacuating`/`-suspect` suffix. Undefined when the index has no record at all.
 */
async function ordinaryNameOf(ctx: Ctx, key: m.ActualLRPKey): Promise<string | undefined> {
  const names = (await recordsOf(ctx, key.processGuid, key.index)).map((a) => a.metadata.name ?? '');
  const name = names.find((n) => !copyPresenceOfName(n)) ?? names[0];
  return name === undefined ? undefined : ordinaryNameOfRecord(name);
}

const evacuation = (keepContainer: boolean, error?: BbsFailure) => ({
  $typeName: 'models.EvacuationResponse' as const,
  keepContainer,
  ...(error ? { error: toBbsError(error) } : {}),
});

/** RemoveEvacuatingActualLRP: the copy's container is gone; only that container's copy may be removed. */
async function removeEvacuatingRoute(req: m.RemoveEvacuatingActualLRPRequest, ctx: Ctx) {
  const { lrpKey } = keys(req);
  const records = await recordsOf(ctx, lrpKey.processGuid, lrpKey.index);
  const copy = records.find((a) => presenceOf(a) === 'EVACUATING' && sameInstance(a, req.actualLrpInstanceKey));
  // Diego: no record of this container, or one that is not EVACUATING, is ResourceNotFound.
  if (!copy) throw notFound();
  const removed = await removeEvacuating(ctx.client, copy, true);
  if (removed.outcome === 'refused') throw notFound(); // another container's copy took the name meanwhile
  return { $typeName: 'models.RemoveEvacuatingActualLRPResponse' as const };
}

/** EvacuateClaimedActualLRP: back to the auction; the container is destroyed (keep_container false). */
async function claimedRoute(req: m.EvacuateClaimedActualLRPRequest, ctx: Ctx) {
  const { lrpKey, me } = keys(req);
  const ordinaryName = await ordinaryNameOf(ctx, lrpKey);
  const found =
    ordinaryName !== undefined &&
    (await evacuateClaimed(ctx.client, ctx.namespace, ordinaryName, me, { releaseRemoved: true }));
  // Diego: an unknown container is ResourceNotFound with keep_container false; other failures keep it.
  return found ? evacuation(false) : evacuation(false, notFound());
}

/** EvacuateCrashedActualLRP: copies are removed, an ORDINARY instance records the crash. */
async function crashedRoute(req: m.EvacuateCrashedActualLRPRequest, ctx: Ctx) {
  const { lrpKey, me } = keys(req, req.errorMessage ? [] : ['error_message']);
  const ordinaryName = await ordinaryNameOf(ctx, lrpKey);
  const outcome = ordinaryName
    ? await evacuateCrashed(ctx.client, ctx.namespace, ordinaryName, me, req.errorMessage)
    : 'not-found';
  if (outcome === 'not-found') throw notFound();
  if (outcome === 'cannot-crash')
    throw new BbsFailure(m.Error_Type.ActualLRPCannotBeCrashed, 'cannot crash actual LRP');
  return evacuation(false);
}

/** EvacuateStoppedActualLRP: the container's record (copy or ORDINARY) is removed. */
async function stoppedRoute(req: m.EvacuateStoppedActualLRPRequest, ctx: Ctx) {
  const { lrpKey, me } = keys(req);
  const ordinaryName = await ordinaryNameOf(ctx, lrpKey);
  const outcome = ordinaryName ? await evacuateStopped(ctx.client, ctx.namespace, ordinaryName, me) : 'not-found';
  if (outcome === 'not-found') throw notFound();
  return evacuation(false);
}

/**
 * EvacuateRunningActualLRP: the evacuation dance (copy + UNCLAIMED replacement), keep_container true while
 * the copy serves, false once the replacement runs or the LRP is gone. r1 also refreshes the copy's internal
 * routes and metric tags; the deprecated r0 leaves them as they are.
 */
function runningRoute(withExtras: boolean) {
  return async (req: m.EvacuateRunningActualLRPRequest, ctx: Ctx) => {
    const net = req.actualLrpNetInfo;
    const { lrpKey, me } = keys(req, !net ? ['actual_lrp_net_info'] : net.address ? [] : ['address']);
    const ordinaryName = await ordinaryNameOf(ctx, lrpKey);
    if (!ordinaryName) return evacuation(false); // Diego: no record of the index, nothing to keep serving
    const copyStatus: Record<string, unknown> = {
      netInfo: netInfoOf(net!),
      routable: req.optionalRoutable.case === 'Routable' ? req.optionalRoutable.value : true,
      availabilityZone: req.availabilityZone,
      ...(withExtras
        ? {
            internalRoutes: req.actualLrpInternalRoutes.map((r) => ({ hostname: r.hostname })),
            metricTags: req.metricTags,
          }
        : {}),
    };
    const keep = await evacuateRunning(ctx.client, ctx.namespace, ordinaryName, me, {
      releaseRemoved: true,
      copyStatus,
    });
    return evacuation(keep);
  };
}

/** Diego's evacuate_claimed and evacuate_running answer keep_container true with any error they return. */
const keepOnError = { keepContainer: true };

export const evacuationRoutes: Record<string, Route> = {
  '/v1/actual_lrps/remove_evacuating': route(
    m.RemoveEvacuatingActualLRPRequestSchema,
    m.RemoveEvacuatingActualLRPResponseSchema,
    removeEvacuatingRoute,
  ),
  '/v1/actual_lrps/evacuate_claimed': route(
    m.EvacuateClaimedActualLRPRequestSchema,
    m.EvacuationResponseSchema,
    claimedRoute,
    keepOnError,
  ),
  '/v1/actual_lrps/evacuate_crashed': route(
    m.EvacuateCrashedActualLRPRequestSchema,
    m.EvacuationResponseSchema,
    crashedRoute,
  ),
  '/v1/actual_lrps/evacuate_stopped': route(
    m.EvacuateStoppedActualLRPRequestSchema,
    m.EvacuationResponseSchema,
    stoppedRoute,
  ),
  '/v1/actual_lrps/evacuate_running.r1': route(
    m.EvacuateRunningActualLRPRequestSchema,
    m.EvacuationResponseSchema,
    runningRoute(true),
    keepOnError,
  ),
  '/v1/actual_lrps/evacuate_running': route(
    m.EvacuateRunningActualLRPRequestSchema,
    m.EvacuationResponseSchema,
    runningRoute(false),
    keepOnError,
  ),
};
