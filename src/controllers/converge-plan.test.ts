import { describe, expect, it } from 'vitest';
import type { IDesiredLRP } from '../crds/models.ts';
import { Backoff, EXPECTATION_TTL_MS, Expectations, orphansForPass, stillToCreate } from './converge-plan.ts';

const desired = (uid: string, instances: number, deleting = false): IDesiredLRP =>
  ({
    metadata: { name: 'web', namespace: 'ns', uid, ...(deleting ? { deletionTimestamp: '2026-01-01T00:00:00Z' } : {}) },
    spec: { instances },
  }) as unknown as IDesiredLRP;

describe('stillToCreate (creation waves re-read the DesiredLRP)', () => {
  const pending = [64, 65, 66, 200, 399];

  it('keeps creating while the count is unchanged or grew', () => {
    expect(stillToCreate(pending, 'u1', desired('u1', 400))).toEqual(pending);
    expect(stillToCreate(pending, 'u1', desired('u1', 1000))).toEqual(pending);
  });

  it('drops the indices at or above a lowered count', () => {
    expect(stillToCreate(pending, 'u1', desired('u1', 66))).toEqual([64, 65]);
    expect(stillToCreate(pending, 'u1', desired('u1', 5))).toEqual([]);
    expect(stillToCreate(pending, 'u1', desired('u1', 0))).toEqual([]);
  });

  it('stops when the DesiredLRP is gone, being deleted or replaced by another of the same name', () => {
    expect(stillToCreate(pending, 'u1', undefined)).toEqual([]);
    expect(stillToCreate(pending, 'u1', desired('u1', 400, true))).toEqual([]);
    expect(stillToCreate(pending, 'u1', desired('u2', 400))).toEqual([]);
  });
});

describe('Backoff (failed removals wait, doubling)', () => {
  it('delays a key after each failure, doubling up to the cap, and forgets it on success', () => {
    const b = new Backoff({ baseMs: 1000, maxMs: 3000 });
    expect(b.due('a', 0)).toBe(true);
    b.failed('a', 0);
    expect(b.due('a', 999)).toBe(false);
    expect(b.due('a', 1000)).toBe(true);
    b.failed('a', 1000); // 2 s
    expect(b.due('a', 2999)).toBe(false);
    expect(b.due('a', 3000)).toBe(true);
    b.failed('a', 3000); // 4 s, capped at 3 s
    expect(b.due('a', 5999)).toBe(false);
    expect(b.due('a', 6000)).toBe(true);
    expect(b.due('b', 0)).toBe(true);
    b.succeeded('a');
    expect(b.due('a', 0)).toBe(true);
  });

  it('forgets keys that are no longer orphans', () => {
    const b = new Backoff({ baseMs: 1000, maxMs: 3000 });
    b.failed('a', 0);
    b.failed('b', 0);
    b.retain(new Set(['b']));
    expect(b.size).toBe(1);
    expect(b.due('a', 0)).toBe(true);
    expect(b.due('b', 0)).toBe(false);
  });
});

describe('orphansForPass (a bounded batch per pass)', () => {
  it('takes at most the limit, skipping those still backing off; the rest are left for later passes', () => {
    const b = new Backoff({ baseMs: 1000, maxMs: 1000 });
    const orphans = Array.from({ length: 10 }, (_, i) => `o${i}`);
    b.failed('o0', 0);
    b.failed('o2', 0);
    expect(orphansForPass(orphans, (o) => o, b, 0, 4)).toEqual(['o1', 'o3', 'o4', 'o5']);
    expect(orphansForPass(orphans, (o) => o, b, 1000, 4)).toEqual(['o0', 'o1', 'o2', 'o3']);
    expect(orphansForPass(orphans, (o) => o, b, 0, 100)).toHaveLength(8);
  });
});

describe('Expectations (created instances the cache has not shown yet are not created again)', () => {
  it('expects an index from its create until it is seen, or until the TTL passes', () => {
    const e = new Expectations();
    e.created('u', 0, 1000);
    e.created('u', 1, 1000);
    expect([...e.pending('u', 2000)]).toEqual([0, 1]);
    e.seen('u', 0);
    expect([...e.pending('u', 2000)]).toEqual([1]);
    expect([...e.pending('u', 1000 + EXPECTATION_TTL_MS)]).toEqual([]); // its event was lost: create it again
    e.created('v', 3, 0);
    e.forget('v');
    expect([...e.pending('v', 1)]).toEqual([]);
    expect([...e.pending('nobody', 1)]).toEqual([]);
  });
});
