import { describe, expect, it } from 'vitest';
import type { IActualLRP } from '../crds/models.ts';
import { runVerdict, type RunningInstance } from './run-verdict.ts';

const run: RunningInstance = { namespace: 'ns', name: 'web-0', index: 0, instanceGuid: 'mine' };
const record = (status: Partial<NonNullable<IActualLRP['status']>>, extra: Partial<IActualLRP> = {}): IActualLRP =>
  ({
    metadata: { namespace: 'ns', name: 'web-0' },
    spec: { processGuid: 'web', index: 0, domain: 'd', cellId: 'c1' },
    status: { presence: 'ORDINARY', ...status },
    ...extra,
  }) as IActualLRP;

describe('runVerdict', () => {
  it('keeps a container its record names', () => {
    expect(
      runVerdict(run, 'c1', record({ state: 'RUNNING', instanceGuid: 'mine', cellId: 'c1' }), [], false),
    ).toMatchObject({
      verdict: 'keep',
    });
  });

  it('keeps the container of a SUSPECT or EVACUATING copy (the converger or the evacuator decides)', () => {
    const other = record({ state: 'CLAIMED', instanceGuid: 'theirs', cellId: 'c2' });
    for (const presence of ['SUSPECT', 'EVACUATING'] as const) {
      const copy = record({ presence, state: 'RUNNING', instanceGuid: 'mine', cellId: 'c1' });
      expect(runVerdict(run, 'c1', other, [copy], true)).toMatchObject({ verdict: 'keep' });
    }
  });

  it('confirms with a fresh read before stopping on what the watch says', () => {
    expect(runVerdict(run, 'c1', undefined, [], false)).toEqual({ verdict: 'confirm' });
    expect(
      runVerdict(run, 'c1', record({ state: 'CLAIMED', instanceGuid: 'theirs', cellId: 'c2' }), [], false),
    ).toEqual({
      verdict: 'confirm',
    });
    // Our claim, not yet in the cache.
    expect(runVerdict(run, 'c1', record({ state: 'UNCLAIMED' }), [], false)).toEqual({ verdict: 'confirm' });
  });

  it('stops a container whose index another instance owns, or whose records are gone', () => {
    expect(
      runVerdict(run, 'c1', record({ state: 'CLAIMED', instanceGuid: 'theirs', cellId: 'c2' }), [], true),
    ).toMatchObject({
      verdict: 'stop',
      why: 'the index now runs as theirs on c2',
    });
    expect(runVerdict(run, 'c1', undefined, [], true)).toMatchObject({ verdict: 'stop', why: 'its record is gone' });
    expect(runVerdict(run, 'c1', record({ state: 'UNCLAIMED' }), [], true)).toMatchObject({ verdict: 'stop' });
    const retired = record(
      { presence: 'SUSPECT', state: 'RUNNING', instanceGuid: 'mine' },
      {
        metadata: { namespace: 'ns', name: 'web-0-suspect', deletionTimestamp: new Date().toISOString() },
      },
    );
    expect(runVerdict(run, 'c1', undefined, [retired], true)).toMatchObject({ verdict: 'stop' });
  });
});
