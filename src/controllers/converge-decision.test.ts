import { describe, expect, it } from 'vitest';
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { lrp } from '../lifecycle/testing.ts';
import { decide, decideInstance } from './converge-decision.ts';

const T = Date.UTC(2026, 11, 5, 12);
const iso = (ms: number) => new Date(ms).toISOString();
const desired = (instances: number, spec: Partial<IDesiredLRP['spec']> = {}) =>
  ({ metadata: { name: 'web', namespace: 'ns', uid: 'u' }, spec: { instances, ...spec } }) as IDesiredLRP;
const present =
  (...cells: string[]) =>
  (c: string) =>
    cells.includes(c);
const at = (index: number, a: IActualLRP): IActualLRP => ({
  ...a,
  metadata: { ...a.metadata, name: `web-${index}` },
  spec: { ...a.spec, index },
});
const fresh = (): IActualLRP => {
  const { status: _status, ...rest } = lrp('UNCLAIMED');
  return rest;
};
const crashedAgo = (count: number, agoMs: number, placedOn?: string): IActualLRP => {
  const a = lrp('CRASHED', placedOn ? { placedOn } : {});
  return { ...a, status: { ...a.status, crashCount: count, since: iso(T - agoMs) } };
};

describe('decideInstance (one ORDINARY instance: state and cells in, action out)', () => {
  it('leaves an instance where it should be alone', () => {
    const d = desired(1);
    expect(decideInstance(d, lrp('RUNNING', { instanceGuid: 'g', cellId: 'c1' }), present('c1'), T)).toBeUndefined();
    expect(decideInstance(d, lrp('CLAIMED', { instanceGuid: 'g', cellId: 'c1' }), present('c1'), T)).toBeUndefined();
    expect(decideInstance(d, lrp('UNCLAIMED', { placedOn: 'c1' }), present('c1'), T)).toBeUndefined();
  });

  it('asks for an auction for a record waiting for a cell, with or without its status', () => {
    expect(decideInstance(desired(1), fresh(), present(), T)).toEqual({ do: 'auction' });
    expect(decideInstance(desired(1), lrp('UNCLAIMED'), present(), T)).toEqual({ do: 'auction' });
  });

  it('takes an unclaimed instance off a cell that went away, and re-places the work of a lost cell', () => {
    const d = desired(1);
    expect(decideInstance(d, lrp('UNCLAIMED', { placedOn: 'gone' }), present('c1'), T)).toEqual({
      do: 'unplace',
      why: 'cell-gone',
    });
    const running = lrp('RUNNING', { instanceGuid: 'g', cellId: 'gone', placedOn: 'gone' });
    expect(decideInstance(d, running, present('c1'), T)).toEqual({ do: 'cell-lost', cellId: 'gone' });
    const claimed = lrp('CLAIMED', { instanceGuid: 'g', cellId: 'gone', placedOn: 'gone' });
    expect(decideInstance(d, claimed, present('c1'), T)).toEqual({ do: 'cell-lost', cellId: 'gone' });
  });

  it("restarts a crashed instance by Diego's policy: at once, later, never; and unplaces it first", () => {
    const d = desired(1);
    expect(decideInstance(d, crashedAgo(1, 0, 'c1'), present('c1'), T)).toEqual({ do: 'unplace', why: 'crashed' });
    expect(decideInstance(d, crashedAgo(2, 0), present(), T)).toEqual({ do: 'restart' });
    expect(decideInstance(d, crashedAgo(3, 10_000), present(), T)).toEqual({ do: 'wait', afterMs: 20_000 });
    expect(decideInstance(d, crashedAgo(3, 30_000), present(), T)).toEqual({ do: 'restart' });
    expect(decideInstance(d, crashedAgo(200, 60 * 60_000), present(), T)).toBeUndefined();
    // The DesiredLRP's own policy wins.
    const patient = desired(1, { crashRestartPolicy: { immediateRestarts: 0, minBackoffMs: 5_000 } });
    expect(decideInstance(patient, crashedAgo(1, 1_000), present(), T)).toEqual({ do: 'wait', afterMs: 9_000 }); // 5 s doubled once: 10 s after the crash
  });

  it('sees a deleting record through, and forgets who evacuated an instance once its replacement runs', () => {
    const deleting = { ...lrp('RUNNING'), metadata: { ...lrp('RUNNING').metadata, deletionTimestamp: iso(T) } };
    expect(decideInstance(desired(1), deleting, present(), T)).toEqual({ do: 'remove', why: 'deleting' });
    const replaced = lrp('RUNNING', { instanceGuid: 'new', cellId: 'c2', placedOn: 'c2' });
    replaced.status = { ...replaced.status, evacuatedBy: { cellId: 'c1', instanceGuid: 'old' } };
    expect(decideInstance(desired(1), replaced, present('c2'), T)).toEqual({ do: 'forget-evacuation' });
  });
});

describe('decide (a DesiredLRP: what to create, retire, and move along)', () => {
  it('creates missing indices except those removed since the last pass, and retires the highest on scale-down', () => {
    const ordinary = new Map([
      [0, at(0, lrp('RUNNING', { instanceGuid: 'a', cellId: 'c1' }))],
      [3, at(3, lrp('RUNNING', { instanceGuid: 'b', cellId: 'c1' }))],
      [5, at(5, lrp('UNCLAIMED'))],
    ]);
    const up = decide({ desired: desired(5), ordinary, waiting: new Set([1]), isPresent: present('c1'), now: T });
    expect(up.create).toEqual([2, 4]);
    expect(up.retire.map((a) => a.spec.index)).toEqual([5]);
    expect(up.act).toEqual([]);
    const down = decide({ desired: desired(1), ordinary, waiting: new Set(), isPresent: present('c1'), now: T });
    expect(down.create).toEqual([]);
    expect(down.retire.map((a) => a.spec.index).sort()).toEqual([3, 5]);
  });

  it('at zero instances retires everything and creates nothing; a lost cell is acted on per instance', () => {
    const ordinary = new Map([
      [0, at(0, lrp('RUNNING', { instanceGuid: 'a', cellId: 'gone', placedOn: 'gone' }))],
      [1, at(1, lrp('RUNNING', { instanceGuid: 'b', cellId: 'c1', placedOn: 'c1' }))],
    ]);
    expect(decide({ desired: desired(0), ordinary, waiting: new Set(), isPresent: present('c1'), now: T })).toEqual({
      create: [],
      retire: [...ordinary.values()],
      act: [],
    });
    const d = decide({ desired: desired(2), ordinary, waiting: new Set(), isPresent: present('c1'), now: T });
    expect(d.act).toEqual([{ record: ordinary.get(0), action: { do: 'cell-lost', cellId: 'gone' } }]);
  });
});
