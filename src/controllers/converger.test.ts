import { describe, expect, it } from 'vitest';
import { lrp } from '../lifecycle/testing.ts';
import { RemovedIndices, tally } from './converger.ts';

describe('RemovedIndices (removed instances wait for the next convergence pass)', () => {
  it('keeps removed indices per DesiredLRP until the pass clears them', () => {
    const r = new RemovedIndices();
    r.add('uid-a', 0);
    r.add('uid-a', 2);
    r.add('uid-b', 1);
    expect([...r.waiting('uid-a', 3)]).toEqual([0, 2]);
    expect([...r.waiting('uid-b', 3)]).toEqual([1]);
    expect([...r.waiting('uid-c', 3)]).toEqual([]);
    r.clear();
    expect([...r.waiting('uid-a', 3)]).toEqual([]);
  });

  it('forgets indices the LRP was scaled down past, so a scale-up creates them at once', () => {
    const r = new RemovedIndices();
    r.add('uid-a', 1);
    r.add('uid-a', 4);
    expect([...r.waiting('uid-a', 2)]).toEqual([1]);
    expect([...r.waiting('uid-a', 5)]).toEqual([1]);
    expect([...r.waiting('uid-a', 1)]).toEqual([]);
    expect([...r.waiting('uid-a', 5)]).toEqual([]);
  });
});

describe('instance counts during evacuation', () => {
  it('counts an index served by its EVACUATING copy as running until the replacement runs, and never twice', () => {
    const copy = lrp('RUNNING', { presence: 'EVACUATING', instanceGuid: 'g-old', cellId: 'draining' });
    const replacement = lrp('RUNNING', { instanceGuid: 'g-new', cellId: 'other' });
    expect(tally(1, [lrp('UNCLAIMED'), copy])).toMatchObject({ RUNNING: 1, UNCLAIMED: 0, missing: 0, extra: 0 });
    expect(tally(1, [replacement, copy])).toMatchObject({ RUNNING: 1 });
    expect(tally(1, [lrp('CRASHED'), copy])).toMatchObject({ RUNNING: 0, CRASHED: 1 });
    expect(tally(2, [lrp('UNCLAIMED'), copy])).toMatchObject({ RUNNING: 1, missing: 1 });
  });
});
