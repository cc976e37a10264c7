// How ActualLRPs are named and found (docs/adr/0002-how-work-flows.md).
import type { Presence } from '../crds/actual-lrp.ts';

export const LABEL_DESIRED_LRP_UID = 'diego.dev/desired-lrp-uid';
export const LABEL_INDEX = 'diego.dev/index';
export const LABEL_PROCESS_GUID = 'diego.dev/process-guid';
/** The cell an instance or task is placed on, for `kubectl get alrp -l diego.dev/cell-id=...`. */
export const LABEL_CELL_ID = 'diego.dev/cell-id';
/** On cell presence Leases, so the controller watches those and not the other Leases of the namespace. */
export const LABEL_CELL_PRESENCE = 'diego.dev/cell-presence';
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

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;

/** A label value, or undefined when it cannot be one (over 63 characters, or bad first/last character). */
export function asLabelValue(value: string): string | undefined {
  return value.length <= 63 && LABEL_VALUE.test(value) ? value : undefined;
}

/**
 * Labels of an instance. The DesiredLRP's UID is the selector (always a valid label value); the process guid
 * is added when it can be a label value (Cloud Controller's 73-character guids cannot: use the selectable
 * field spec.processGuid for those).
 */
export function instanceLabels(desiredUid: string, index: number, processGuid: string): Record<string, string> {
  const guid = asLabelValue(processGuid);
  return {
    [LABEL_DESIRED_LRP_UID]: desiredUid,
    [LABEL_INDEX]: String(index),
    ...(guid ? { [LABEL_PROCESS_GUID]: guid } : {}),
  };
}

/** The patch that places work on a cell (or takes it off with null): spec.cellId plus the cell label. */
export function placementPatch(cellId: string | null, annotations?: Record<string, string>) {
  return {
    metadata: {
      labels: { [LABEL_CELL_ID]: cellId === null ? null : (asLabelValue(cellId) ?? null) },
      ...(annotations ? { annotations } : {}),
    },
    spec: { cellId },
  };
}

export function selectorFor(desiredUid: string): string {
  return `${LABEL_DESIRED_LRP_UID}=${desiredUid}`;
}
