// Moved to src/lifecycle/evacuation.ts (the operations) and src/lifecycle/actual-lrp.ts (the crashed status). This
// re-export stays only for callers outside the lifecycle refactor that still import from here
// (test/integration/cell-confinement.test.ts); import from src/lifecycle instead, and drop it once they do.
import type { IActualLRP } from '../crds/models.ts';
import { crashCountAfter, crashed, type StatusPatch } from '../lifecycle/actual-lrp.ts';

export * from '../lifecycle/evacuation.ts';
export { type InstanceKey } from '../lifecycle/actual-lrp.ts';
export { evacuatingName } from '../lifecycle/names.ts';
export { releaseContainer } from '../lifecycle/ops.ts';

/** lifecycle's crashed() with Diego's crash count for `a`. */
export function crashedStatus(a: IActualLRP, reason: string, now = Date.now()): StatusPatch {
  return crashed(reason, crashCountAfter(a, now), now);
}
