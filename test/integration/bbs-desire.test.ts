// DesireLRP and RetireActualLRP timing as in Diego, through the BBS facade on a real API server: DesireLRP (and a
// scale-up) answers once the UNCLAIMED instances exist, and a retired instance comes back only with the next
// convergence pass (a long interval here, so a pass is easy to tell apart from an immediate re-creation).
import { randomBytes } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import * as m from '../../src/bbs/models.ts';
import { objectName } from '../../src/bbs/translate.ts';
import { metrics } from '../../src/controllers/metrics.ts';
import { actualLRPName, FINALIZER_CONTAINER, instanceLabels } from '../../src/lifecycle/names.ts';
import { desiredLRPInit, useBbsApp } from '../support/bbs-call.ts';
import { eventually } from '../support/eventually.ts';
import { useDiego } from '../support/fixture.ts';
import { presenceOf, stateOf } from '../../src/lifecycle/actual-lrp.ts';

const CONVERGE_INTERVAL_MS = 20_000;
const env = useDiego('bbs-desire', { convergeIntervalMs: CONVERGE_INTERVAL_MS });
const { bbs } = useBbsApp(env, { expectNoError: true });

const actuals = async (processGuid: string) =>
  (await bbs('/v1/actual_lrps/list', m.ActualLRPsRequestSchema, { processGuid }, m.ActualLRPsResponseSchema))
    .actualLrps;
const records = (processGuid: string) =>
  env.client.list('ActualLRP', { namespace: env.ns, fieldSelector: `spec.processGuid=${processGuid}` });
const desire = (processGuid: string, instances: number) =>
  bbs(
    '/v1/desired_lrp/desire.r2',
    m.DesireLRPRequestSchema,
    { desiredLrp: desiredLRPInit(processGuid, instances) },
    m.DesiredLRPLifecycleResponseSchema,
  );
const convergencePasses = async () => (await metrics.convergenceLRPRuns.get()).values[0]?.value ?? 0;

describe('DesireLRP', () => {
  it('answers once the UNCLAIMED instances exist, as the converger would create them', async () => {
    // No cell: nothing claims them, so the state each was created with stays.
    const guid = `desire-${randomBytes(4).toString('hex')}`;
    await desire(guid, 40);
    const listed = await actuals(guid);
    expect(listed.map((a) => a.actualLrpKey?.index).sort((a, b) => a! - b!)).toEqual([...Array(40).keys()]);
    expect(new Set(listed.map((a) => a.state))).toEqual(new Set(['UNCLAIMED']));
    expect(listed.every((a) => a.presence === m.ActualLRP_Presence.ORDINARY && a.since > 0n)).toBe(true);

    const d = await env.client.get('DesiredLRP', env.ns, objectName(guid));
    const crs = await records(guid);
    expect(crs).toHaveLength(40);
    for (const a of crs) {
      const i = a.spec.index;
      expect(a.metadata.name).toBe(actualLRPName(d.metadata.name!, i));
      expect(a.metadata.labels).toEqual(instanceLabels(d.metadata.uid!, i, guid));
      expect(a.metadata.finalizers).toEqual([FINALIZER_CONTAINER]);
      expect(a.metadata.ownerReferences).toEqual([
        expect.objectContaining({ kind: 'DesiredLRP', name: d.metadata.name, uid: d.metadata.uid, controller: true }),
      ]);
      expect(a.spec).toEqual({ processGuid: guid, index: i, domain: 'cf-apps' });
      // Created in one write, without a status: UNCLAIMED, ORDINARY, no crashes (the auctioneer may have said
      // meanwhile that no cell fits: there is none here).
      expect([stateOf(a), presenceOf(a), a.status?.crashCount ?? 0]).toEqual(['UNCLAIMED', 'ORDINARY', 0]);
    }

    // A scale-up creates the new indices within the call too.
    await bbs(
      '/v1/desired_lrp/update',
      m.UpdateDesiredLRPRequestSchema,
      { processGuid: guid, update: { optionalInstances: { case: 'instances', value: 43 } } },
      m.DesiredLRPLifecycleResponseSchema,
    );
    expect((await records(guid)).map((a) => a.spec.index).sort((a, b) => a - b)).toEqual([...Array(43).keys()]);

    // The converger, which saw the same DesiredLRP, neither duplicates nor replaces them nor rewrites their status.
    const uids = new Map((await records(guid)).map((a) => [a.metadata.name, a.metadata.uid]));
    await eventually(async () => {
      const status = (await env.client.get('DesiredLRP', env.ns, objectName(guid))).status;
      expect(status).toMatchObject({ unclaimedInstances: 43 });
    }, 30_000);
    await sleep(2000);
    const after = await records(guid);
    expect(after).toHaveLength(43);
    expect(new Map(after.map((a) => [a.metadata.name, a.metadata.uid]))).toEqual(uids);
    expect(after.every((a) => stateOf(a) === 'UNCLAIMED')).toBe(true);
  });
});

describe('RetireActualLRP', () => {
  it('leaves a retired CRASHED instance missing until the next convergence pass', { timeout: 180_000 }, async () => {
    const [cell] = await env.startCells(1);
    const guid = `retire-${randomBytes(4).toString('hex')}`;
    await desire(guid, 2);
    const name = objectName(guid);
    // Never restarted after its first crash, so it stays CRASHED until it is retired.
    await env.client.patch(
      'DesiredLRP',
      { namespace: env.ns, name },
      { spec: { crashRestartPolicy: { immediateRestarts: 0, maxRestarts: 1 } } },
    );
    await eventually(
      async () => expect((await actuals(guid)).map((a) => a.state)).toEqual(['RUNNING', 'RUNNING']),
      60_000,
    );
    const index0 = actualLRPName(name, 0);
    await cell!.crash(index0, env.ns);
    await eventually(async () => {
      const a = await env.client.get('ActualLRP', env.ns, index0);
      expect(a.status?.state).toBe('CRASHED');
      expect(a.spec.cellId ?? null).toBeNull(); // the converger took it off its cell
    }, 30_000);

    // Retire right after a pass, so the next one is a whole interval away.
    const passes = await convergencePasses();
    await eventually(
      async () => expect(await convergencePasses()).toBeGreaterThan(passes),
      CONVERGE_INTERVAL_MS + 30_000,
    );
    const passedAt = Date.now();
    const before = await convergencePasses();
    await bbs(
      '/v1/actual_lrps/retire',
      m.RetireActualLRPRequestSchema,
      { actualLrpKey: { processGuid: guid, index: 0, domain: 'cf-apps' } },
      m.ActualLRPLifecycleResponseSchema,
    );
    const present = async () => (await records(guid)).some((a) => a.metadata.name === index0);
    await eventually(async () => expect(await present()).toBe(false), 30_000);

    // Missing while the pass is still ahead: other events (the DesiredLRP's status, index 1) do not bring it back.
    const quietUntil = Math.min(Date.now() + 5000, passedAt + CONVERGE_INTERVAL_MS / 2);
    while (Date.now() < quietUntil) {
      expect(await present()).toBe(false);
      await sleep(250);
    }

    // The next pass re-creates it, and it runs again as a new instance.
    const back = await eventually(
      async () => {
        const a = (await actuals(guid)).find((x) => x.actualLrpKey?.index === 0);
        expect(a).toBeDefined();
        return { a: a!, passes: await convergencePasses() };
      },
      2 * CONVERGE_INTERVAL_MS + 30_000,
      250,
    );
    expect(back.passes).toBeGreaterThan(before);
    await eventually(
      async () => expect((await actuals(guid)).map((a) => a.state)).toEqual(['RUNNING', 'RUNNING']),
      60_000,
    );
  });
});
