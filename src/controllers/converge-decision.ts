// The converger's decision for one DesiredLRP, pure (Diego's ConvergenceResult): the DesiredLRP, its ORDINARY
// instances, which cells are present and the time in; what to do out — indices to create, instances to retire, and
// one action per instance that needs one. converger.ts applies it (the writes, their compare-and-swaps, waves and
// fan-out bounds) and handles the copies (SUSPECT, EVACUATING), whose judgement needs fresh reads.
import type { IActualLRP, IDesiredLRP } from '../crds/models.ts';
import { evacuationDone, stateOf } from '../lifecycle/actual-lrp.ts';
import { crashPolicyFor, shouldRestart } from '../lifecycle/crash-policy.ts';

/** What one ORDINARY instance needs (none: it is where it should be, or waits for an event). */
export type InstanceAction =
  /** Being deleted: see it through (container stopped by its cell, or finalizer released). */
  | { do: 'remove'; why: 'deleting' }
  /** Placed, never claimed, and its cell went away (or crashed while still placed): off the cell. */
  | { do: 'unplace'; why: 'cell-gone' | 'crashed' }
  /** Waiting for a cell: the auctioneer should look. */
  | { do: 'auction' }
  /** Its replacement runs: who evacuated it no longer vouches for an EVACUATING copy. */
  | { do: 'forget-evacuation' }
  /** CLAIMED or RUNNING on a cell that went away: a SUSPECT copy if RUNNING, then re-placed. */
  | { do: 'cell-lost'; cellId: string }
  /** CRASHED, and the restart policy says now. */
  | { do: 'restart' }
  /** CRASHED, and the restart policy says later: look again after this long. */
  | { do: 'wait'; afterMs: number };

export interface DecisionInput {
  desired: IDesiredLRP;
  /** ORDINARY records by index (copies are not part of this decision). */
  ordinary: ReadonlyMap<number, IActualLRP>;
  /** Indices removed since the last full pass: Diego re-creates them in its next pass, not at once. */
  waiting: ReadonlySet<number>;
  isPresent: (cellId: string) => boolean;
  now: number;
}

export interface Decision {
  /** Indices with no record, to create (lowest first). */
  create: number[];
  /** Records of indices past the desired count: a scale-down retires the highest indices. */
  retire: IActualLRP[];
  /** Records that need something, with what. */
  act: { record: IActualLRP; action: InstanceAction }[];
}

/** One ORDINARY instance. */
export function decideInstance(
  d: IDesiredLRP,
  a: IActualLRP,
  isPresent: (cellId: string) => boolean,
  now: number,
): InstanceAction | undefined {
  if (a.metadata.deletionTimestamp) return { do: 'remove', why: 'deleting' };
  const state = stateOf(a); // no status yet: UNCLAIMED, as created
  const placedOn = a.spec.cellId;
  if (state === 'UNCLAIMED') {
    if (placedOn && !isPresent(placedOn)) return { do: 'unplace', why: 'cell-gone' };
    return placedOn ? undefined : { do: 'auction' };
  }
  if (evacuationDone(a)) return { do: 'forget-evacuation' };
  if (state === 'CLAIMED' || state === 'RUNNING') {
    const cell = a.status?.cellId ?? placedOn;
    return cell && !isPresent(cell) ? { do: 'cell-lost', cellId: cell } : undefined;
  }
  // CRASHED: the instance is off its cell; restart it per the policy.
  if (placedOn) return { do: 'unplace', why: 'crashed' };
  const since = a.status?.since ? Date.parse(a.status.since) : now;
  const decision = shouldRestart(a.status?.crashCount ?? 0, since, now, crashPolicyFor(d.spec));
  if (decision.restart === 'later') return { do: 'wait', afterMs: decision.afterMs };
  return decision.restart === 'now' ? { do: 'restart' } : undefined;
}

/** The whole DesiredLRP's ORDINARY instances. */
export function decide(input: DecisionInput): Decision {
  const { desired, ordinary, waiting, isPresent, now } = input;
  const instances = desired.spec.instances ?? 1;
  const create: number[] = [];
  for (let i = 0; i < instances; i++) if (!ordinary.has(i) && !waiting.has(i)) create.push(i);
  const retire: IActualLRP[] = [];
  const act: Decision['act'] = [];
  for (const [index, a] of ordinary) {
    if (index >= instances) {
      retire.push(a);
      continue;
    }
    const action = decideInstance(desired, a, isPresent, now);
    if (action) act.push({ record: a, action });
  }
  return { create, retire, act };
}
