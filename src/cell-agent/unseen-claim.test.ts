import { describe, expect, it } from 'vitest';
import type { IActualLRP, ITask } from '../crds/models.ts';
import { MAX_SENT_CLAIMS, unseenClaim, withSent } from './unseen-claim.ts';

const task = (status: NonNullable<ITask['status']>, uid = 'u1'): ITask =>
  ({
    metadata: { uid, name: 't', namespace: 'ns' },
    spec: { taskGuid: 't', domain: 'd', rootFs: 'preloaded:busybox', action: {} },
    status,
  }) as unknown as ITask;
const lrp = (status: NonNullable<IActualLRP['status']>, uid = 'u1'): IActualLRP =>
  ({
    metadata: { uid, name: 'a-0', namespace: 'ns' },
    spec: { processGuid: 'a', index: 0, domain: 'd' },
    status,
  }) as IActualLRP;

describe('unseenClaim', () => {
  const at = '2026-12-05T21:00:00.123Z';
  it('a task Running on this cell with the updatedAt the start wrote: that start landed', () => {
    expect(
      unseenClaim({ uid: 'u1', startedAts: [at] }, task({ state: 'Running', cellId: 'c', updatedAt: at }), 'c'),
    ).toBe('landed');
  });
  it('a task Running on this cell from another start (a stale view led to a second start that failed): not this one', () => {
    const other = task({ state: 'Running', cellId: 'c', updatedAt: '2026-12-05T20:59:58.001Z' });
    expect(unseenClaim({ uid: 'u1', startedAts: [at] }, other, 'c')).toBe('other');
  });
  it('still Pending: unknown (the start did not land, or this view is older)', () => {
    expect(unseenClaim({ uid: 'u1', startedAts: [at] }, task({ state: 'Pending' }), 'c')).toBe('unknown');
  });
  it('another cell, another object of the same name, or completed: other', () => {
    const sent = { uid: 'u1', startedAts: [at] };
    expect(unseenClaim(sent, task({ state: 'Running', cellId: 'd', updatedAt: at }), 'c')).toBe('other');
    expect(unseenClaim(sent, task({ state: 'Running', cellId: 'c', updatedAt: at }, 'u2'), 'c')).toBe('other');
    expect(unseenClaim(sent, task({ state: 'Completed', updatedAt: at }), 'c')).toBe('other');
  });
  it('an instance CLAIMED by this cell with the guid the claim named: landed; with another guid: other', () => {
    const sent = { uid: 'u1', instanceGuids: ['g1'] };
    expect(unseenClaim(sent, lrp({ state: 'CLAIMED', cellId: 'c', instanceGuid: 'g1' } as never), 'c')).toBe('landed');
    expect(unseenClaim(sent, lrp({ state: 'CLAIMED', cellId: 'c', instanceGuid: 'g0' } as never), 'c')).toBe('other');
    expect(unseenClaim(sent, lrp({ state: 'RUNNING', cellId: 'c', instanceGuid: 'g1' } as never), 'c')).toBe('other');
    expect(unseenClaim(sent, lrp({ state: 'UNCLAIMED' } as never), 'c')).toBe('unknown');
  });
  it('remembers every unanswered start of the record: a retry that failed does not hide the first one that landed', () => {
    let sent = withSent(undefined, 'u1', { startedAt: at });
    sent = withSent(sent, 'u1', { startedAt: '2026-12-05T21:00:01.500Z' });
    sent = withSent(sent, 'u1', { startedAt: '2026-12-05T21:00:03.500Z' });
    expect(unseenClaim(sent, task({ state: 'Running', cellId: 'c', updatedAt: at }), 'c')).toBe('landed');
    // Another object of the same name starts over; the list is bounded.
    expect(withSent(sent, 'u2', { startedAt: at })).toEqual({ uid: 'u2', startedAts: [at], instanceGuids: undefined });
    for (let i = 0; i < 100; i++) sent = withSent(sent, 'u1', { instanceGuid: `g${i}` });
    expect(sent.instanceGuids).toHaveLength(MAX_SENT_CLAIMS);
    expect(sent.instanceGuids?.at(-1)).toBe('g99');
  });
});
