import { describe, expect, it } from 'vitest';
import type { IActualLRP } from '../crds/models.ts';
import { evacuated, evacuatingCopy, evacuationDone, suspectCopy } from './actual-lrp.ts';
import { decideRunning, judgeEvacuatingCopy } from './evacuation.ts';
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

describe('the converger judges an EVACUATING copy by its ORDINARY record (forged copies)', () => {
  const withEvacuatedBy = (a: IActualLRP, by = me): IActualLRP => ({
    ...a,
    status: { ...a.status, ...evacuated(by) },
  });

  it('keeps the copy while the ORDINARY record still names its container (copied, not yet unclaimed)', () => {
    expect(judgeEvacuatingCopy(myCopy(), mine())).toBe('keep');
    expect(judgeEvacuatingCopy(myCopy(), mine('CLAIMED'))).toBe('keep');
  });

  it('keeps the copy once unclaimed, while evacuatedBy names its container, through the replacement starting', () => {
    expect(judgeEvacuatingCopy(myCopy(), withEvacuatedBy(lrp('UNCLAIMED')))).toBe('keep');
    expect(judgeEvacuatingCopy(myCopy(), withEvacuatedBy(lrp('UNCLAIMED', { placedOn: 'other' })))).toBe('keep');
    expect(judgeEvacuatingCopy(myCopy(), withEvacuatedBy(replacement('CLAIMED')))).toBe('keep');
  });

  it('retires the copy once the replacement runs or crashed, or the record is gone, whoever made it', () => {
    expect(judgeEvacuatingCopy(myCopy(), withEvacuatedBy(replacement('RUNNING')))).toBe('retire');
    expect(judgeEvacuatingCopy(myCopy(), withEvacuatedBy(replacement('CRASHED')))).toBe('retire');
    expect(judgeEvacuatingCopy(myCopy(), replacement('RUNNING'))).toBe('retire');
    expect(judgeEvacuatingCopy(myCopy(), undefined)).toBe('retire');
    const deleting = { ...mine(), metadata: { ...mine().metadata, deletionTimestamp: new Date().toISOString() } };
    expect(judgeEvacuatingCopy(myCopy(), deleting)).toBe('retire');
  });

  it("judges forged a node's copy of another cell's instance, even with that instance's guid", () => {
    const forger = { instanceGuid: 'g-victim', cellId: 'attacker' };
    const forged = lrp('RUNNING', { presence: 'EVACUATING', ...forger });
    const victim = lrp('RUNNING', { instanceGuid: 'g-victim', cellId: 'victim' });
    expect(judgeEvacuatingCopy(forged, victim)).toBe('forged');
    expect(judgeEvacuatingCopy(forged, withEvacuatedBy(victim, { instanceGuid: 'g-earlier', cellId: 'x' }))).toBe(
      'forged',
    );
    // Another instance guid while the replacement runs: retired as any copy is (the old rule), forged or not.
    const other = lrp('RUNNING', { presence: 'EVACUATING', instanceGuid: 'g-made-up', cellId: 'attacker' });
    expect(judgeEvacuatingCopy(other, victim)).toBe('retire');
    expect(judgeEvacuatingCopy(forged, lrp('CLAIMED', { instanceGuid: 'g-victim', cellId: 'victim' }))).toBe('forged');
    expect(judgeEvacuatingCopy(forged, lrp('UNCLAIMED'))).toBe('forged');
    // Evacuated by another cell, or by this cell as another instance: not this copy's evacuation.
    expect(judgeEvacuatingCopy(forged, withEvacuatedBy(lrp('UNCLAIMED'), { ...forger, cellId: 'victim' }))).toBe(
      'forged',
    );
    expect(judgeEvacuatingCopy(forged, withEvacuatedBy(lrp('UNCLAIMED'), { ...forger, instanceGuid: 'g-x' }))).toBe(
      'forged',
    );
    // A copy naming no container at all is vouched for by nothing.
    expect(judgeEvacuatingCopy(lrp('RUNNING', { presence: 'EVACUATING' }), lrp('UNCLAIMED'))).toBe('forged');
  });

  it('forgets evacuatedBy once the replacement runs, not while it starts (nor when it crashed)', () => {
    expect(evacuationDone(withEvacuatedBy(replacement('RUNNING')))).toBe(true);
    expect(evacuationDone(withEvacuatedBy(replacement('CRASHED')))).toBe(false);
    expect(evacuationDone(withEvacuatedBy(mine()))).toBe(false);
    expect(evacuationDone(withEvacuatedBy(replacement('CLAIMED')))).toBe(false);
    expect(evacuationDone(withEvacuatedBy(lrp('UNCLAIMED')))).toBe(false);
    expect(evacuationDone(replacement('RUNNING'))).toBe(false);
  });

  it("never carries evacuatedBy into a copy (it is the ORDINARY record's)", () => {
    const ordinary = withEvacuatedBy(mine(), { instanceGuid: 'g-earlier', cellId: 'elsewhere' });
    expect(evacuatingCopy(ordinary, me)).not.toHaveProperty('evacuatedBy');
    expect(suspectCopy(ordinary)).not.toHaveProperty('evacuatedBy');
  });
});
