import { describe, expect, it } from 'vitest';
import { API_VERSION } from '../crds/kinds.ts';
import type { IActualLRP } from '../crds/models.ts';
import { tally } from './converger.ts';
import { decideRunning, evacuatingName } from './evacuation.ts';

const me = { instanceGuid: 'g-old', cellId: 'draining' };

function lrp(
  state: 'UNCLAIMED' | 'CLAIMED' | 'RUNNING' | 'CRASHED',
  presence: 'ORDINARY' | 'EVACUATING' = 'ORDINARY',
  instanceGuid?: string,
  cellId?: string,
  index = 0,
): IActualLRP {
  return {
    apiVersion: API_VERSION,
    kind: 'ActualLRP',
    metadata: { name: presence === 'ORDINARY' ? `web-${index}` : `web-${index}-evacuating`, namespace: 'ns' },
    spec: { processGuid: 'web', index, domain: 'cf-apps' },
    status: { state, presence, instanceGuid, cellId },
  };
}

describe("EvacuateRunningActualLRP's decision", () => {
  it('evacuates the running ORDINARY instance of this container: copy, unclaim, keep the container', () => {
    expect(decideRunning(lrp('RUNNING', 'ORDINARY', 'g-old', 'draining'), undefined, me)).toEqual({
      keepContainer: true,
      evacuate: true,
    });
  });

  it('keeps the container while its EVACUATING copy waits for the replacement', () => {
    const copy = lrp('RUNNING', 'EVACUATING', 'g-old', 'draining');
    expect(decideRunning(lrp('UNCLAIMED'), copy, me)).toEqual({ keepContainer: true });
    expect(decideRunning(lrp('CLAIMED', 'ORDINARY', 'g-new', 'other'), copy, me)).toEqual({ keepContainer: true });
  });

  it('removes the copy and stops the container once the replacement runs or crashed', () => {
    const copy = lrp('RUNNING', 'EVACUATING', 'g-old', 'draining');
    for (const state of ['RUNNING', 'CRASHED'] as const)
      expect(decideRunning(lrp(state, 'ORDINARY', 'g-new', 'other'), copy, me)).toEqual({
        keepContainer: false,
        removeCopy: true,
      });
  });

  it('stops the container when the DesiredLRP is gone', () => {
    const copy = lrp('RUNNING', 'EVACUATING', 'g-old', 'draining');
    expect(decideRunning(undefined, copy, me)).toEqual({ keepContainer: false, removeCopy: true });
    expect(decideRunning(undefined, undefined, me)).toEqual({ keepContainer: false, removeCopy: false });
  });

  it('allows one EVACUATING copy per index: another cell already holds it', () => {
    const theirs = lrp('RUNNING', 'EVACUATING', 'g-other', 'elsewhere');
    expect(decideRunning(lrp('UNCLAIMED'), theirs, me)).toEqual({ keepContainer: false });
  });

  it('RECREATE: unclaims without a copy when all instances run, else keeps the container for now', () => {
    const mine = lrp('RUNNING', 'ORDINARY', 'g-old', 'draining');
    expect(decideRunning(mine, undefined, me, 'RECREATE', true)).toEqual({ keepContainer: false, unclaim: true });
    expect(decideRunning(mine, undefined, me, 'RECREATE', false)).toEqual({ keepContainer: true });
  });

  it('names the copy <desiredlrp>-<index>-evacuating', () => {
    expect(evacuatingName('web-3')).toBe('web-3-evacuating');
  });
});

describe('instance counts during evacuation', () => {
  it('counts an index served by its EVACUATING copy as running until the replacement runs, and never twice', () => {
    const copy = lrp('RUNNING', 'EVACUATING', 'g-old', 'draining');
    expect(tally(1, [lrp('UNCLAIMED'), copy])).toMatchObject({ RUNNING: 1, UNCLAIMED: 0, missing: 0, extra: 0 });
    expect(tally(1, [lrp('RUNNING', 'ORDINARY', 'g-new', 'other'), copy])).toMatchObject({ RUNNING: 1 });
    expect(tally(1, [lrp('CRASHED'), copy])).toMatchObject({ RUNNING: 0, CRASHED: 1 });
    expect(tally(2, [lrp('UNCLAIMED'), copy])).toMatchObject({ RUNNING: 1, missing: 1 });
  });
});
