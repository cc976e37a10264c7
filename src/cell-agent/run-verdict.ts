// Whether a container the rep runs for an ActualLRP may go on running (Diego's rep bulk sync looks at every
// container against the BBS: a container whose instance the BBS no longer assigns to this cell is stopped). Pure:
// the rep feeds it what its watch (work placed on this cell) and, when in doubt, a fresh read say.
import type { IActualLRP } from '../crds/models.ts';

export interface RunningInstance {
  namespace: string;
  /** The ORDINARY record's name (<dlrp>-<index>). */
  name: string;
  index: number;
  instanceGuid: string;
}

export type RunVerdict =
  /** A record of this cell names this container: go on. */
  | { verdict: 'keep'; why: string }
  /** Nothing names it here, but the cache may be behind: read the ORDINARY record again before deciding. */
  | { verdict: 'confirm' }
  /** Another instance owns the index, or its records are gone: stop the container (no crash, no report). */
  | { verdict: 'stop'; why: string };

/**
 * `ordinary`: the ORDINARY record as known (the watch holds only records placed on this cell: a record moved to
 * another cell is absent); `copies`: SUSPECT/EVACUATING records of the same index on this cell; `fresh`: true when
 * `ordinary` comes from a read just now (absent then means deleted, or placed on another cell).
 */
export function runVerdict(
  run: RunningInstance,
  cellId: string,
  ordinary: IActualLRP | undefined,
  copies: readonly IActualLRP[],
  fresh: boolean,
): RunVerdict {
  for (const c of copies) {
    if (c.metadata.deletionTimestamp || c.status?.instanceGuid !== run.instanceGuid) continue;
    // The converger decides whether a SUSPECT copy is promoted back or retired; an EVACUATING one is the evacuator's.
    if (c.status.presence === 'SUSPECT' || c.status.presence === 'EVACUATING')
      return { verdict: 'keep', why: `${c.status.presence} copy` };
  }
  const s = ordinary?.status;
  if (ordinary && !ordinary.metadata.deletionTimestamp) {
    if (s?.instanceGuid === run.instanceGuid && s.cellId === cellId) return { verdict: 'keep', why: 'its record' };
    // A claim of ours the cache has not seen yet (placed here, still UNCLAIMED without an instance guid).
    if (!fresh && !s?.instanceGuid && ordinary.spec.cellId === cellId) return { verdict: 'confirm' };
    if (s?.instanceGuid && s.instanceGuid !== run.instanceGuid)
      return fresh
        ? {
            verdict: 'stop',
            why: `the index now runs as ${s.instanceGuid} on ${s.cellId ?? ordinary.spec.cellId ?? '?'}`,
          }
        : { verdict: 'confirm' };
    if (fresh)
      return {
        verdict: 'stop',
        why: `the record is ${s?.state ?? 'without status'} and names no instance of this cell`,
      };
    return { verdict: 'confirm' };
  }
  return fresh ? { verdict: 'stop', why: 'its record is gone' } : { verdict: 'confirm' };
}
