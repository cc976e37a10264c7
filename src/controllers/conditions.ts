// metav1.Condition helpers: lastTransitionTime moves only when status changes.
export interface Condition {
  type: string;
  status: 'True' | 'False' | 'Unknown';
  reason: string;
  message?: string;
  observedGeneration?: number;
  lastTransitionTime: string;
}

export function setCondition(
  existing: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
  now = new Date(),
): Condition[] {
  const list = existing ?? [];
  const old = list.find((c) => c.type === next.type);
  const lastTransitionTime = old && old.status === next.status ? old.lastTransitionTime : now.toISOString();
  const updated: Condition = { ...next, lastTransitionTime };
  return [...list.filter((c) => c.type !== next.type), updated];
}

/** True when setCondition would change nothing but timestamps. */
export function conditionUnchanged(
  existing: Condition[] | undefined,
  next: Omit<Condition, 'lastTransitionTime'>,
): boolean {
  const old = existing?.find((c) => c.type === next.type);
  return (
    !!old &&
    old.status === next.status &&
    old.reason === next.reason &&
    old.message === next.message &&
    old.observedGeneration === next.observedGeneration
  );
}
