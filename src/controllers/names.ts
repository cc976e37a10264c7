// How ActualLRPs are named and found (docs/adr/0002-how-work-flows.md).
import type { Presence } from '../crds/actual-lrp.ts';

export const LABEL_DESIRED_LRP_UID = 'diego.dev/desired-lrp-uid';
export const LABEL_INDEX = 'diego.dev/index';
/** Finalizer a cell-agent holds on work it runs, so the record outlives the container ("stop, then remove"). */
export const FINALIZER_CONTAINER = 'diego.dev/container';

/**
 * ORDINARY instances are `<desiredlrp>-<index>`: a deterministic name makes creating a missing index
 * idempotent. The SUSPECT or EVACUATING copy of an index (Diego allows one) gets a suffix.
 */
export function actualLRPName(desiredName: string, index: number, presence: Presence = 'ORDINARY'): string {
  const base = `${desiredName}-${index}`;
  return presence === 'ORDINARY' ? base : `${base}-${presence.toLowerCase()}`;
}

export function instanceLabels(desiredUid: string, index: number): Record<string, string> {
  return { [LABEL_DESIRED_LRP_UID]: desiredUid, [LABEL_INDEX]: String(index) };
}

export function selectorFor(desiredUid: string): string {
  return `${LABEL_DESIRED_LRP_UID}=${desiredUid}`;
}
