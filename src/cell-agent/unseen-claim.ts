// Whether a claim whose answer was lost landed: the rep sent a claim (an instance's CLAIMED, a task's start) and heard
// a network error, and the read-back failed too. Each such write carries something only it puts on the record — the
// instance guid the claim named, the task start's updatedAt to the millisecond — so a later version tells whether it
// was this write that landed, and not another claim of the same cell (e.g. one made earlier, whose work already ran).
import type { IActualLRP, ITask } from '../crds/models.ts';

/** A claim sent without an answer: the record's uid and what only that write put there. */
export interface SentClaim {
  uid: string;
  /** An instance's claim: the instance guid it named. */
  instanceGuid?: string;
  /** A task's start: the updatedAt it wrote. */
  startedAt?: string;
}

/**
 * `landed`: `work` is the version that claim made (the work is this cell's to run now); `unknown`: still waiting for
 * a claim (UNCLAIMED / Pending) — the claim did not land, or the view is older than it; `other`: anything else.
 */
export function unseenClaim(sent: SentClaim, work: IActualLRP | ITask, cellId: string): 'landed' | 'unknown' | 'other' {
  if (work.metadata.uid !== sent.uid) return 'other';
  const state = work.status?.state;
  if (state === 'UNCLAIMED' || state === 'Pending') return 'unknown';
  if (work.status?.cellId !== cellId) return 'other';
  const isTask = 'taskGuid' in work.spec;
  const landed = isTask
    ? state === 'Running' && sent.startedAt !== undefined && (work as ITask).status?.updatedAt === sent.startedAt
    : state === 'CLAIMED' && sent.instanceGuid !== undefined && work.status?.instanceGuid === sent.instanceGuid;
  return landed ? 'landed' : 'other';
}
