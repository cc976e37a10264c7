// How ActualLRPs and their copies are named, labelled, placed and found, and the limits Diego puts on the reasons
// and results a writer stores (docs/adr/0002-how-work-flows.md). Every writer takes these from here.
import type { Presence } from '../crds/actual-lrp.ts';
import { REASON_MAX_LENGTH, RESULT_MAX_BYTES } from '../crds/common.ts';

export { REASON_MAX_LENGTH, RESULT_MAX_BYTES };

export const LABEL_DESIRED_LRP_UID = 'diego.dev/desired-lrp-uid';
export const LABEL_INDEX = 'diego.dev/index';
export const LABEL_PROCESS_GUID = 'diego.dev/process-guid';
/** The cell an instance or task is placed on, for `kubectl get alrp -l diego.dev/cell-id=...`. */
export const LABEL_CELL_ID = 'diego.dev/cell-id';
/** On cell presence Leases, so the controller watches those and not the other Leases of the namespace. */
export const LABEL_CELL_PRESENCE = 'diego.dev/cell-presence';
/** On BBS domain Leases (the Lease name is a hash; the domain itself is the annotation of the same name). */
export const LABEL_BBS_DOMAIN = 'diego.dev/bbs-domain';
export const ANNOTATION_BBS_DOMAIN = 'diego.dev/bbs-domain';
/** On Locket locks (Leases locket-<hash of the key>, src/bbs/locket.ts); the key and value are annotations. */
export const LABEL_LOCKET = 'diego.dev/locket';
export const ANNOTATION_LOCKET_KEY = 'diego.dev/locket-key';
export const ANNOTATION_LOCKET_VALUE = 'diego.dev/locket-value';
/** Diego's presence TTL (Locket: 15 s): a cell whose Lease is not renewed within it is gone. */
export const DEFAULT_PRESENCE_TTL_S = 15;
/** Finalizer a cell-agent holds on work it runs, so the record outlives the container ("stop, then remove"). */
export const FINALIZER_CONTAINER = 'diego.dev/container';
/** Why the auction placed work where it did (score, cells filtered out): `kubectl describe` shows it. */
export const ANNOTATION_PLACEMENT = 'diego.dev/placement';

/** The name suffix of each copy presence (the ORDINARY record has none). */
const COPY_SUFFIX = { EVACUATING: '-evacuating', SUSPECT: '-suspect' } as const;
export type CopyPresence = keyof typeof COPY_SUFFIX;

/**
 * ORDINARY instances are `<desiredlrp>-<index>`: a deterministic name makes creating a missing index
 * idempotent. The SUSPECT or EVACUATING copy of an index (Diego allows one) gets a suffix.
 */
export function actualLRPName(desiredName: string, index: number, presence: Presence = 'ORDINARY'): string {
  const base = `${desiredName}-${index}`;
  return presence === 'ORDINARY' ? base : copyName(base, presence);
}

/** The name of the SUSPECT or EVACUATING copy of the ORDINARY record `ordinaryName`. */
export function copyName(ordinaryName: string, presence: CopyPresence): string {
  return `${ordinaryName}${COPY_SUFFIX[presence]}`;
}

/** `<desiredlrp>-<index>-evacuating` (ADR 0002). */
export const evacuatingName = (ordinaryName: string): string => copyName(ordinaryName, 'EVACUATING');
/** `<desiredlrp>-<index>-suspect`. */
export const suspectName = (ordinaryName: string): string => copyName(ordinaryName, 'SUSPECT');

/** The copy presence a record's name says it is, or undefined for an ORDINARY name. */
export function copyPresenceOfName(name: string): CopyPresence | undefined {
  return (Object.keys(COPY_SUFFIX) as CopyPresence[]).find((p) => name.endsWith(COPY_SUFFIX[p]));
}

/** The ORDINARY record's name for any record of an index (a copy's name without its suffix). */
export function ordinaryNameOf(name: string): string {
  const presence = copyPresenceOfName(name);
  return presence ? name.slice(0, name.length - COPY_SUFFIX[presence].length) : name;
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

/** The label selector of every record (ORDINARY and copies) of one DesiredLRP. */
export function selectorFor(desiredUid: string): string {
  return `${LABEL_DESIRED_LRP_UID}=${desiredUid}`;
}

/** A crash reason, failure reason or placement error as stored: Diego keeps at most 1024 characters. */
export function truncateReason(reason: string): string {
  return reason.slice(0, REASON_MAX_LENGTH);
}
