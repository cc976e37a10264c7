import { describe, expect, it } from 'vitest';
import {
  ACTUAL_LRP_STATES,
  allowsTransition,
  type ActualLRPState,
  claimed,
  crashCountAfter,
  crashed,
  evacuatingCopy,
  holds,
  isUnclaimedOrdinary,
  presenceOf,
  stateOf,
  isEmptyKey,
  type InstanceKey,
  NO_INSTANCE,
  newActualLRP,
  placementFailed,
  promoted,
  running,
  sameKey,
  sameAsRunning,
  suspectCopy,
  unclaimed,
} from './actual-lrp.ts';
import type { IDesiredLRP } from '../crds/models.ts';
import { LABEL_CELL_ID, suspectName } from './names.ts';
import { lrp } from './testing.ts';

const T0 = Date.UTC(2026, 0, 2, 3, 4, 5);
const AT = '2026-01-02T03:04:05.000Z';
const held: InstanceKey = { instanceGuid: 'g1', cellId: 'cell-a' };
const other: InstanceKey = { instanceGuid: 'g2', cellId: 'cell-b' };

/**
 * Diego's AllowsTransitionTo (bbs models/actual_lrp.go), written out as a table: for each (from, to), which writer
 * keys may make the move — 'empty' (an unclaim), 'same' (the key the record holds), 'other' (any other key).
 */
const DIEGO: Record<ActualLRPState, Record<ActualLRPState, ('empty' | 'same' | 'other')[]>> = {
  UNCLAIMED: {
    UNCLAIMED: ['empty', 'same', 'other'],
    CLAIMED: ['empty', 'same', 'other'],
    RUNNING: ['empty', 'same', 'other'],
    CRASHED: [],
  },
  CLAIMED: { UNCLAIMED: ['empty'], CLAIMED: ['same'], RUNNING: ['empty', 'same', 'other'], CRASHED: ['same'] },
  RUNNING: { UNCLAIMED: ['empty'], CLAIMED: ['same'], RUNNING: ['same'], CRASHED: ['same'] },
  CRASHED: { UNCLAIMED: ['empty'], CLAIMED: ['same'], RUNNING: ['same'], CRASHED: [] },
};

describe('the ActualLRP transition table', () => {
  for (const from of ACTUAL_LRP_STATES)
    for (const to of ACTUAL_LRP_STATES)
      it(`${from} → ${to} is allowed for ${DIEGO[from][to].join(', ') || 'nobody'}`, () => {
        // A record that holds no key (UNCLAIMED, CRASHED) holds the empty one: for it, "same" is the empty key.
        const fromKey = from === 'UNCLAIMED' || from === 'CRASHED' ? NO_INSTANCE : held;
        const kinds = (key: InstanceKey) => [
          ...(isEmptyKey(key) ? ['empty' as const] : []),
          ...(sameKey(key, fromKey) ? ['same' as const] : []),
          ...(!isEmptyKey(key) && !sameKey(key, fromKey) ? ['other' as const] : []),
        ];
        for (const key of [NO_INSTANCE, held, other]) {
          const expected = kinds(key).some((k) => DIEGO[from][to].includes(k));
          expect(allowsTransition(from, fromKey, to, key), JSON.stringify(key)).toBe(expected);
        }
      });

  it('a claim belongs to its key: a stale instance guid cannot crash or re-claim it, nor can the same guid on another cell', () => {
    expect(allowsTransition('RUNNING', held, 'CRASHED', { instanceGuid: 'g0', cellId: 'cell-a' })).toBe(false);
    expect(allowsTransition('CLAIMED', held, 'CLAIMED', { instanceGuid: 'g1', cellId: 'cell-z' })).toBe(false);
    expect(holds(lrp('RUNNING', { instanceGuid: 'g1', cellId: 'cell-a' }), held)).toBe(true);
    expect(holds(lrp('RUNNING', { instanceGuid: 'g1', cellId: 'cell-z' }), held)).toBe(false);
    expect(holds(lrp('UNCLAIMED'), NO_INSTANCE)).toBe(false);
  });
});

describe('status builders', () => {
  it('a new record has no status and is UNCLAIMED and ORDINARY; a copy without status is known by its name', () => {
    const d = {
      metadata: { name: 'web', namespace: 'ns', uid: 'u1' },
      spec: { processGuid: 'pg', domain: 'cf-apps' },
    } as IDesiredLRP;
    const fresh = newActualLRP(d, 3);
    expect(fresh.status).toBeUndefined();
    expect(fresh.spec.cellId).toBeUndefined();
    expect([stateOf(fresh), presenceOf(fresh), isUnclaimedOrdinary(fresh)]).toEqual(['UNCLAIMED', 'ORDINARY', true]);
    const placed = newActualLRP(d, 3, { cellId: 'cell-1', annotations: { why: 'best score' } });
    expect(placed.spec.cellId).toBe('cell-1');
    expect(placed.metadata.labels?.[LABEL_CELL_ID]).toBe('cell-1');
    expect(placed.metadata.annotations).toEqual({ why: 'best score' });
    const copy = { ...fresh, metadata: { ...fresh.metadata, name: suspectName(fresh.metadata.name ?? '') } };
    expect([presenceOf(copy), isUnclaimedOrdinary(copy)]).toEqual(['SUSPECT', false]);
  });

  it('every unclaim writes one field set: no instance, no net info, no readiness, no old placement error', () => {
    expect(unclaimed(T0)).toEqual({
      state: 'UNCLAIMED',
      instanceGuid: null,
      cellId: null,
      netInfo: null,
      placementError: null,
      routable: null,
      since: AT,
    });
  });

  it('a claim records the key and clears what the previous placement left', () => {
    expect(claimed(held, T0)).toEqual({
      state: 'CLAIMED',
      cellId: 'cell-a',
      instanceGuid: 'g1',
      since: AT,
      placementError: null,
      netInfo: null,
    });
  });

  it('RUNNING carries the net info and readiness, and replaces the metric tags', () => {
    const netInfo = { address: '10.0.0.1', ports: [{ containerPort: 8080, hostPort: 61000 }] };
    const before = lrp('CLAIMED', { ...held });
    before.status!.metricTags = { old: 'x', kept: 'y' };
    expect(
      running(held, { netInfo, routable: true, availabilityZone: 'z1', metricTags: { kept: 'z' } }, T0, before),
    ).toEqual({
      state: 'RUNNING',
      cellId: 'cell-a',
      instanceGuid: 'g1',
      netInfo,
      routable: true,
      availabilityZone: 'z1',
      placementError: null,
      since: AT,
      metricTags: { old: null, kept: 'z' },
    });
    expect(running(held, { netInfo, routable: false, availabilityZone: '' }, T0)).not.toHaveProperty('metricTags');
  });

  it('a heartbeat with nothing new is the same RUNNING record', () => {
    const netInfo = { address: '10.0.0.1', ports: [] };
    const r = lrp('RUNNING', { ...held });
    Object.assign(r.status!, { netInfo: { address: '10.0.0.1' }, routable: true, availabilityZone: 'z1' });
    expect(sameAsRunning(r, held, { netInfo, routable: true, availabilityZone: 'z1' })).toBe(true);
    expect(sameAsRunning(r, held, { netInfo, routable: false, availabilityZone: 'z1' })).toBe(false);
    expect(sameAsRunning(r, other, { netInfo, routable: true, availabilityZone: 'z1' })).toBe(false);
  });

  it("a crash clears the key and keeps Diego's 1024 characters of the reason", () => {
    expect(crashed('x'.repeat(1500), 3, T0)).toEqual({
      state: 'CRASHED',
      crashCount: 3,
      crashReason: 'x'.repeat(1024),
      since: AT,
      instanceGuid: null,
      cellId: null,
      netInfo: null,
    });
  });

  it('counts crashes as Diego does: +1, or 1 after five minutes of running', () => {
    const r = lrp('RUNNING', { ...held });
    r.status!.crashCount = 4;
    r.status!.since = new Date(T0).toISOString();
    expect(crashCountAfter(r, T0 + 60_000)).toBe(5);
    expect(crashCountAfter(r, T0 + 6 * 60_000)).toBe(1);
    expect(crashCountAfter(r, T0 + 6 * 60_000, undefined)).toBe(5); // its cell says it never became healthy
    const c = lrp('CLAIMED', { ...held });
    c.status!.crashCount = 2;
    expect(crashCountAfter(c, T0)).toBe(3);
  });

  it('a placement error is truncated and dated', () => {
    expect(placementFailed('y'.repeat(2000), T0)).toEqual({ placementError: 'y'.repeat(1024), since: AT });
  });

  it('copies: SUSPECT keeps the instance as it was; EVACUATING runs as the draining container; promotion restores ORDINARY', () => {
    const r = lrp('RUNNING', { ...held });
    r.status!.conditions = [
      { type: 'Scheduled', status: 'True', reason: 'Placed', message: '', lastTransitionTime: AT },
    ];
    expect(suspectCopy(r)).toMatchObject({
      state: 'RUNNING',
      presence: 'SUSPECT',
      instanceGuid: 'g1',
      cellId: 'cell-a',
    });
    const e = evacuatingCopy(lrp('CLAIMED', { ...held }), held);
    expect(e).toMatchObject({ state: 'RUNNING', presence: 'EVACUATING', instanceGuid: 'g1', cellId: 'cell-a' });
    expect(evacuatingCopy(r, held)).not.toHaveProperty('conditions');
    expect(promoted(lrp('RUNNING', { presence: 'SUSPECT', ...held }))).toMatchObject({
      presence: 'ORDINARY',
      state: 'RUNNING',
      instanceGuid: 'g1',
    });
  });

  it('the new record of an index is named by index, labelled, owned by its DesiredLRP and held by the container finalizer', () => {
    const desired = {
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'DesiredLRP',
      metadata: { name: 'web', namespace: 'apps', uid: 'uid-1' },
      spec: { processGuid: 'web-guid', domain: 'cf-apps', instances: 3 },
    } as unknown as IDesiredLRP;
    expect(newActualLRP(desired, 2)).toEqual({
      apiVersion: 'diego.dev/v1alpha1',
      kind: 'ActualLRP',
      metadata: {
        name: 'web-2',
        namespace: 'apps',
        labels: { 'diego.dev/desired-lrp-uid': 'uid-1', 'diego.dev/index': '2', 'diego.dev/process-guid': 'web-guid' },
        finalizers: ['diego.dev/container'],
        ownerReferences: [
          {
            apiVersion: 'diego.dev/v1alpha1',
            kind: 'DesiredLRP',
            name: 'web',
            uid: 'uid-1',
            controller: true,
            blockOwnerDeletion: true,
          },
        ],
      },
      spec: { processGuid: 'web-guid', index: 2, domain: 'cf-apps' },
    });
  });
});
