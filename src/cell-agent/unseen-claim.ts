// Whether a claim whose answer was lost landed: the rep sent a claim (an instance's CLAIMED, a task's start) and heard
// a network error, and the read-back failed too. Each such write carries something only it puts on the record — the
// instance guid the claim named, the task start's updatedAt to the millisecond — so a later version tells whether it
// was this write that landed, and not another claim of the same cell (e.g. one made earlier, whose work already ran).
import type { IActualLRP, ITask } from '../crds/models.ts';

/**
 * Claims of one record sent without an answer (a retry may send another before the first is known): the record's uid
 * and what only each write put there.
 */
export interface SentClaim {
  uid: string;
  /** An instance's claims: the instance guids they named. */
  instanceGuids?: string[];
  /** A task's starts: the updatedAt each wrote. */
  startedAts?: string[];
}

/** At most this many unanswered claims of one record are remembered (retries back off to 30 s). */
export const MAX_SENT_CLAIMS = 32;

/** `sent` with one more unanswered claim of the record `uid` (a claim of another object of that name starts over). */
export function withSent(
  sent: SentClaim | undefined,
  uid: string,
  write: { instanceGuid?: string; startedAt?: string },
): SentClaim {
  const base: SentClaim = sent?.uid === uid ? sent : { uid };
  const add = (list: string[] | undefined, v: string | undefined) =>
    v === undefined ? list : [...(list ?? []), v].slice(-MAX_SENT_CLAIMS);
  return {
    uid,
    instanceGuids: add(base.instanceGuids, write.instanceGuid),
    startedAts: add(base.startedAts, write.startedAt),
  };
}

/**
 * `landed`: `work` is the version that claim made (the work is this cell's to run now); `unknown`: still waiting for
 * a claim (UNCLAIMED / Pending) — the claim did not land, or the view is older than it; `other`: anything else.
 */
export function unseenClaim(sent: SentClaim, work: IActualLRP | ITask, cellId: string): 'landed' | 'unknown' | 'other' {
  if (work.metadata.uid !== sent.uid) return 'other';
  const isTask = 'taskGuid' in work.spec;
  const state = work.status?.state ?? (isTask ? 'Pending' : 'UNCLAIMED'); // a new record has no status yet
  if (state === 'UNCLAIMED' || state === 'Pending') return 'unknown';
  if (work.status?.cellId !== cellId) return 'other';
  const updatedAt = (work as ITask).status?.updatedAt;
  const guid = (work as IActualLRP).status?.instanceGuid;
  const landed = isTask
    ? state === 'Running' && updatedAt !== undefined && (sent.startedAts ?? []).includes(updatedAt)
    : state === 'CLAIMED' && guid !== undefined && (sent.instanceGuids ?? []).includes(guid);
  return landed ? 'landed' : 'other';
}
