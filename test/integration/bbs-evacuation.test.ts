// The evacuation routes a draining Diego rep calls (evacuate_running(.r1), evacuate_claimed, evacuate_crashed,
// evacuate_stopped, remove_evacuating) against the real API server with the controllers running. The test
// plays the draining cell's rep through the facade; simulated cells register (and, for the replacement, claim
// and run what the auctioneer places on them).
import type { MessageInitShape } from '@bufbuild/protobuf';
import { describe, expect, it } from 'vitest';
import * as m from '../../src/bbs/models.ts';
import { cellObjectName } from '../../src/cell-agent/presence.ts';
import { setCellEvacuating } from '../../src/lifecycle/evacuation.ts';
import { useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import type { SimCell } from '../support/sim-cell.ts';

const env = useDiego('bbs-evac', { convergeIntervalMs: 1000 });
const { bbs, placedLRP: placed } = useBbsApp(env);
const E = m.Error_Type;
type InstanceKey = { cellId: string; instanceGuid: string };

/** A DesiredLRP (through the BBS) whose instances the auctioneer placed on `cellId`, the only cell yet. */
const placedLRP = (cellId: string, instances: number) =>
  placed('evac-app', cellId, instances, { metricTags: { source_id: { static: 'src' } } });

/** The index's records as the BBS lists them (ORDINARY, and an EVACUATING copy when there is one). */
async function records(guid: string, index: number) {
  const res = await bbs(
    '/v1/actual_lrps/list',
    m.ActualLRPsRequestSchema,
    { processGuid: guid, optionalIndex: { case: 'index', value: index } },
    m.ActualLRPsResponseSchema,
  );
  return {
    ordinary: res.actualLrps.find((a) => a.presence === m.ActualLRP_Presence.ORDINARY),
    evacuating: res.actualLrps.find((a) => a.presence === m.ActualLRP_Presence.EVACUATING),
  };
}

const netInfo = (address: string) => ({ address, ports: [{ containerPort: 8080, hostPort: 61001 }] });

/** Claims and starts an instance as a rep would, on the cell it was placed on. */
async function run(guid: string, index: number, ik: InstanceKey) {
  const claim = await bbs(
    '/v1/actual_lrps/claim',
    m.ClaimActualLRPRequestSchema,
    { processGuid: guid, index, actualLrpInstanceKey: ik },
    m.ActualLRPLifecycleResponseSchema,
  );
  expect(claim.error).toBeUndefined();
  const start = await bbs(
    '/v1/actual_lrps/start.r1',
    m.StartActualLRPRequestSchema,
    {
      actualLrpKey: { processGuid: guid, index, domain: 'cf-apps' },
      actualLrpInstanceKey: ik,
      actualLrpNetInfo: netInfo('10.0.0.5'),
    },
    m.ActualLRPLifecycleResponseSchema,
  );
  expect(start.error).toBeUndefined();
}

/** The rep's calls, each with the index key and the asking container's instance key. */
function rep(guid: string) {
  const key = (index: number) => ({ processGuid: guid, index, domain: 'cf-apps' });
  return {
    running: (
      index: number,
      ik: InstanceKey,
      extra: Partial<MessageInitShape<typeof m.EvacuateRunningActualLRPRequestSchema>> = {},
      path = '/v1/actual_lrps/evacuate_running.r1',
    ) =>
      bbs(
        path,
        m.EvacuateRunningActualLRPRequestSchema,
        {
          actualLrpKey: key(index),
          actualLrpInstanceKey: ik,
          actualLrpNetInfo: netInfo('10.0.0.5'),
          ...extra,
        } as MessageInitShape<typeof m.EvacuateRunningActualLRPRequestSchema>,
        m.EvacuationResponseSchema,
      ),
    claimed: (index: number, ik?: InstanceKey) =>
      bbs(
        '/v1/actual_lrps/evacuate_claimed',
        m.EvacuateClaimedActualLRPRequestSchema,
        { actualLrpKey: key(index), actualLrpInstanceKey: ik },
        m.EvacuationResponseSchema,
      ),
    crashed: (index: number, ik: InstanceKey, errorMessage = 'Exited with status 3') =>
      bbs(
        '/v1/actual_lrps/evacuate_crashed',
        m.EvacuateCrashedActualLRPRequestSchema,
        { actualLrpKey: key(index), actualLrpInstanceKey: ik, errorMessage },
        m.EvacuationResponseSchema,
      ),
    stopped: (index: number, ik: InstanceKey) =>
      bbs(
        '/v1/actual_lrps/evacuate_stopped',
        m.EvacuateStoppedActualLRPRequestSchema,
        { actualLrpKey: key(index), actualLrpInstanceKey: ik },
        m.EvacuationResponseSchema,
      ),
    removeEvacuating: (index: number, ik: InstanceKey) =>
      bbs(
        '/v1/actual_lrps/remove_evacuating',
        m.RemoveEvacuatingActualLRPRequestSchema,
        { actualLrpKey: key(index), actualLrpInstanceKey: ik },
        m.RemoveEvacuatingActualLRPResponseSchema,
      ),
  };
}

/** An answer without error, telling the rep whether to keep its container. */
function answered(res: m.EvacuationResponse, keepContainer: boolean): void {
  expect(res.error).toBeUndefined();
  expect(res.keepContainer).toBe(keepContainer);
}

/** The draining cell: the test plays its rep, so it neither claims nor runs anything itself. */
async function drainingCell(): Promise<SimCell> {
  const [cell] = await env.startCells(1, () => ({ autoStart: false, autoStartTasks: false }));
  return cell!;
}

/** The drain has begun: the auction leaves the cell out (what Diego's rep does by refusing work). */
const startDraining = (cell: SimCell) => setCellEvacuating(env.client, cellObjectName(cell.o.cellId), true);

/** The CRs of a process, for what the BBS does not show (records being deleted, finalizers). */
const crsOf = (guid: string) =>
  env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${guid}` });

describe('BBS evacuation routes', () => {
  it('evacuate_running keeps the container while its EVACUATING copy serves, then lets it go once the replacement runs', async () => {
    const draining = await drainingCell();
    const cellId = draining.o.cellId;
    const guid = await placedLRP(cellId, 1);
    const ik = { cellId, instanceGuid: 'ig-a' };
    await run(guid, 0, ik);
    const evac = rep(guid);

    // Refused as Diego's Validate refuses, with keep_container true (the rep keeps serving).
    const bad = await evac.running(0, ik, { actualLrpNetInfo: undefined });
    expect(bad.error?.message).toBe('Invalid field: actual_lrp_net_info');
    expect(bad.keepContainer).toBe(true);
    // Nothing of another cell's: nothing to keep.
    const foreign = await evac.running(0, { cellId: 'another-cell', instanceGuid: 'ig-a' });
    answered(foreign, false);
    const unknown = await rep('no-such-process').running(0, ik);
    answered(unknown, false);
    expect((await records(guid, 0)).ordinary?.state).toBe('RUNNING');

    await startDraining(draining);
    const first = await evac.running(0, ik);
    answered(first, true);
    const { ordinary, evacuating } = await records(guid, 0);
    // The copy: same instance, cell and address, RUNNING; the ORDINARY record is off the cell, to be auctioned.
    expect(evacuating).toMatchObject({ state: 'RUNNING', actualLrpInstanceKey: ik });
    expect(evacuating?.actualLrpNetInfo?.address).toBe('10.0.0.5');
    expect(ordinary?.state).toBe('UNCLAIMED');
    expect(ordinary?.actualLrpInstanceKey?.instanceGuid).toBe('');

    // The rep's next round (deprecated r0 here) still keeps it, and refreshes the copy's net info and routability.
    const again = await evac.running(
      0,
      ik,
      { actualLrpNetInfo: netInfo('10.0.0.6'), optionalRoutable: { case: 'Routable', value: false } },
      '/v1/actual_lrps/evacuate_running',
    );
    answered(again, true);
    const refreshed = (await records(guid, 0)).evacuating;
    expect(refreshed?.actualLrpNetInfo?.address).toBe('10.0.0.6');
    expect(refreshed?.optionalRoutable).toEqual({ case: 'routable', value: false });

    // A healthy cell joins: the replacement is placed and runs there.
    const [healthy] = await env.startCells(1);
    const replacement = await eventually(async () => {
      const o = (await records(guid, 0)).ordinary;
      expect(o).toMatchObject({ state: 'RUNNING', actualLrpInstanceKey: { cellId: healthy!.o.cellId } });
      return o!;
    }, 30_000);
    expect(replacement.actualLrpInstanceKey?.instanceGuid).not.toBe('ig-a');

    // Now the old container may go, and its copy is gone (finalizer included: no record is left behind).
    const last = await evac.running(0, ik);
    answered(last, false);
    await eventually(async () => {
      expect((await records(guid, 0)).evacuating).toBeUndefined();
      expect((await crsOf(guid)).map((a) => a.metadata.name)).toHaveLength(1);
    }, 15_000);
  });

  it('evacuate_running lets the container go once its DesiredLRP is removed', async () => {
    const draining = await drainingCell();
    const cellId = draining.o.cellId;
    const guid = await placedLRP(cellId, 1);
    const ik = { cellId, instanceGuid: 'ig-d' };
    await run(guid, 0, ik);
    await startDraining(draining);
    answered(await rep(guid).running(0, ik), true);
    const removed = await bbs(
      '/v1/desired_lrp/remove',
      m.RemoveDesiredLRPRequestSchema,
      { processGuid: guid },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect(removed.error).toBeUndefined();
    await eventually(async () => answered(await rep(guid).running(0, ik), false), 15_000);
    await eventually(async () => expect(await crsOf(guid)).toEqual([]), 15_000);
  });

  it('evacuate_claimed sends a starting instance back to the auction; unknown containers are ResourceNotFound', async () => {
    const draining = await drainingCell();
    const cellId = draining.o.cellId;
    const guid = await placedLRP(cellId, 1);
    const ik = { cellId, instanceGuid: 'ig-c' };
    const claim = await bbs(
      '/v1/actual_lrps/claim',
      m.ClaimActualLRPRequestSchema,
      { processGuid: guid, index: 0, actualLrpInstanceKey: ik },
      m.ActualLRPLifecycleResponseSchema,
    );
    expect(claim.error).toBeUndefined();
    const evac = rep(guid);

    // Diego: a request that does not validate keeps the container; an unknown container is ResourceNotFound.
    const bad = await evac.claimed(0);
    expect(bad.error?.message).toBe('Invalid field: actual_lrp_instance_key');
    expect(bad.keepContainer).toBe(true);
    const wrongCell = await evac.claimed(0, { cellId: 'another-cell', instanceGuid: 'ig-c' });
    expect(wrongCell.error?.type).toBe(E.ResourceNotFound);
    expect(wrongCell.keepContainer).toBe(false);
    expect((await rep('no-such-process').claimed(0, ik)).error?.type).toBe(E.ResourceNotFound);
    expect((await records(guid, 0)).ordinary?.state).toBe('CLAIMED');

    await startDraining(draining);
    const res = await evac.claimed(0, ik);
    answered(res, false);
    expect((await records(guid, 0)).evacuating).toBeUndefined(); // a starting instance served nothing: no copy

    // Re-auctioned: it runs on the healthy cell that joins.
    const [healthy] = await env.startCells(1);
    await eventually(async () => {
      expect((await records(guid, 0)).ordinary).toMatchObject({
        state: 'RUNNING',
        actualLrpInstanceKey: { cellId: healthy!.o.cellId },
      });
    }, 30_000);
    const repeat = await evac.claimed(0, ik);
    expect(repeat.error?.type).toBe(E.ResourceNotFound);
    expect(repeat.keepContainer).toBe(false);
  });

  it('evacuate_crashed and evacuate_stopped end an instance or its EVACUATING copy', async () => {
    const draining = await drainingCell();
    const cellId = draining.o.cellId;
    const guid = await placedLRP(cellId, 5);
    const ik = (index: number) => ({ cellId, instanceGuid: `ig-${index}` });
    for (let i = 0; i < 5; i++) await run(guid, i, ik(i));
    const evac = rep(guid);

    // Crashed: the message is required; only the instance's own container may report it.
    const noReason = await evac.crashed(0, ik(0), '');
    expect(noReason.error?.message).toBe('Invalid field: error_message');
    expect(noReason.keepContainer).toBe(false);
    expect((await evac.crashed(0, { cellId: 'another-cell', instanceGuid: 'ig-0' })).error?.type).toBe(
      E.ResourceNotFound,
    );
    answered(await evac.crashed(0, ik(0)), false);
    await eventually(async () => {
      const o = (await records(guid, 0)).ordinary;
      expect(o).toMatchObject({ crashCount: 1, crashReason: 'Exited with status 3' });
      expect(o?.actualLrpInstanceKey?.instanceGuid).toBe('');
    }, 10_000);
    expect((await evac.crashed(0, ik(0))).error?.type).toBe(E.ResourceNotFound);

    // Stopped: the ORDINARY record goes (finalizer released); the converger creates the index afresh.
    const uid1 = (await crsOf(guid)).find((a) => a.spec.index === 1)?.metadata.uid;
    expect((await evac.stopped(1, { cellId: 'another-cell', instanceGuid: 'ig-1' })).error?.type).toBe(
      E.ResourceNotFound,
    );
    answered(await evac.stopped(1, ik(1)), false);
    await eventually(async () => {
      const again = (await crsOf(guid)).find((a) => a.spec.index === 1);
      expect(again?.metadata.uid).toBeDefined();
      expect(again?.metadata.uid).not.toBe(uid1);
      expect(again?.status?.instanceGuid).toBeUndefined();
    }, 20_000);

    // Copies: a crashed, stopped (or still starting) container's EVACUATING copy is removed outright; the ORDINARY
    // record is untouched.
    await startDraining(draining);
    for (const i of [2, 3, 4]) expect((await evac.running(i, ik(i))).keepContainer).toBe(true);
    expect((await records(guid, 2)).evacuating).toBeDefined();
    answered(await evac.crashed(2, ik(2)), false);
    answered(await evac.stopped(3, ik(3)), false);
    answered(await evac.claimed(4, ik(4)), false);
    await eventually(async () => {
      const left = await crsOf(guid);
      expect(left.filter((a) => a.status?.presence === 'EVACUATING')).toEqual([]);
      expect(left.filter((a) => a.spec.index >= 2).map((a) => a.status?.crashCount ?? 0)).toEqual([0, 0, 0]);
    }, 15_000);
  });

  it('remove_evacuating removes only the asking container’s EVACUATING copy', async () => {
    const draining = await drainingCell();
    const cellId = draining.o.cellId;
    const guid = await placedLRP(cellId, 1);
    const ik = { cellId, instanceGuid: 'ig-r' };
    await run(guid, 0, ik);
    const evac = rep(guid);

    // The ORDINARY record is not EVACUATING: ResourceNotFound, as Diego.
    expect((await evac.removeEvacuating(0, ik)).error?.type).toBe(E.ResourceNotFound);
    await startDraining(draining);
    expect((await evac.running(0, ik)).keepContainer).toBe(true);
    expect((await evac.removeEvacuating(0, { cellId: 'another-cell', instanceGuid: 'ig-r' })).error?.type).toBe(
      E.ResourceNotFound,
    );
    expect((await evac.removeEvacuating(0, { cellId, instanceGuid: 'other' })).error?.type).toBe(E.ResourceNotFound);
    expect((await records(guid, 0)).evacuating).toBeDefined();
    expect((await evac.removeEvacuating(0, ik)).error).toBeUndefined();
    await eventually(async () => {
      expect((await crsOf(guid)).filter((a) => a.status?.presence === 'EVACUATING')).toEqual([]);
    }, 15_000);
    expect((await evac.removeEvacuating(0, ik)).error?.type).toBe(E.ResourceNotFound);
  });
});
