import { describe, expect, it } from 'vitest';
import { decideRunning } from './evacuation.ts';
import { evacuatingName } from './names.ts';
import { lrp } from './testing.ts';

const me = { instanceGuid: 'g-old', cellId: 'draining' };
const mine = (state: 'CLAIMED' | 'RUNNING' = 'RUNNING') => lrp(state, { instanceGuid: 'g-old', cellId: 'draining' });
const myCopy = () => lrp('RUNNING', { presence: 'EVACUATING', instanceGuid: 'g-old', cellId: 'draining' });
const replacement = (state: 'CLAIMED' | 'RUNNING' | 'CRASHED') =>
  lrp(state, state === 'CRASHED' ? {} : { instanceGuid: 'g-new', cellId: 'other' });

describe("EvacuateRunningActualLRP's decision", () => {
  it('evacuates the running ORDINARY instance of this container: copy, unclaim, keep the container', () => {
    expect(decideRunning(mine(), undefined, me)).toEqual({ keepContainer: true, evacuate: true });
  });

  it('keeps the container while its EVACUATING copy waits for the replacement', () => {
    expect(decideRunning(lrp('UNCLAIMED'), myCopy(), me)).toEqual({ keepContainer: true });
    expect(decideRunning(replacement('CLAIMED'), myCopy(), me)).toEqual({ keepContainer: true });
  });

  it('removes the copy and stops the container once the replacement runs or crashed', () => {
    for (const state of ['RUNNING', 'CRASHED'] as const)
      expect(decideRunning(replacement(state), myCopy(), me)).toEqual({ keepContainer: false, removeCopy: true });
  });

  it('stops the container when the DesiredLRP is gone', () => {
    expect(decideRunning(undefined, myCopy(), me)).toEqual({ keepContainer: false, removeCopy: true });
    expect(decideRunning(undefined, undefined, me)).toEqual({ keepContainer: false, removeCopy: false });
  });

  it('allows one EVACUATING copy per index: another cell already holds it', () => {
    const theirs = lrp('RUNNING', { presence: 'EVACUATING', instanceGuid: 'g-other', cellId: 'elsewhere' });
    expect(decideRunning(lrp('UNCLAIMED'), theirs, me)).toEqual({ keepContainer: false });
  });

  it('a record that names this guid on another cell is not this container', () => {
    const sameGuidElsewhere = lrp('RUNNING', { instanceGuid: 'g-old', cellId: 'other' });
    expect(decideRunning(sameGuidElsewhere, undefined, me)).toEqual({ keepContainer: false, removeCopy: false });
  });

  it('RECREATE: unclaims without a copy when all instances run, else keeps the container for now', () => {
    expect(decideRunning(mine(), undefined, me, 'RECREATE', true)).toEqual({ keepContainer: false, unclaim: true });
    expect(decideRunning(mine(), undefined, me, 'RECREATE', false)).toEqual({ keepContainer: true });
  });

  it('names the copy <desiredlrp>-<index>-evacuating', () => {
    expect(evacuatingName('web-3')).toBe('web-3-evacuating');
  });
});
