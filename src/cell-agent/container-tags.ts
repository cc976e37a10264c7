// The properties the rep stores on each container it creates (Garden properties), so that bulk sync and a
// restarted agent can tell whose container it is without any other state: the ActualLRP or Task it runs.
import type { IActualLRP, ITask } from '../crds/models.ts';
import { keyOf } from '../lib/informer.ts';

const PROP_KIND = 'diego.kind';
const PROP_NAMESPACE = 'diego.namespace';
const PROP_NAME = 'diego.name';
const PROP_PROCESS_GUID = 'diego.process-guid';
const PROP_INSTANCE_GUID = 'diego.instance-guid';
const PROP_INDEX = 'diego.index';
const PROP_TASK_GUID = 'diego.task-guid';

/**
 * The rep's key for a piece of work (its runs, reservations and bulk sync's busy set): an instance and a task may
 * share a namespace/name, so the kind is part of the key.
 */
export const lrpKey = (a: IActualLRP): string => `lrp:${keyOf(a)}`;
export const taskKey = (t: ITask): string => `task:${keyOf(t)}`;

/** Processes started by the long-running action (not setup, not checks): what a restarted agent re-attaches to. */
export const TAG_ACTION = 'action';

export type Owner =
  | { kind: 'lrp'; namespace: string; name: string; instanceGuid: string }
  | { kind: 'task'; namespace: string; name: string; taskGuid: string };

export function lrpProperties(a: IActualLRP, instanceGuid: string): Record<string, string> {
  return {
    [PROP_KIND]: 'lrp',
    [PROP_NAMESPACE]: a.metadata.namespace ?? '',
    [PROP_NAME]: a.metadata.name ?? '',
    [PROP_PROCESS_GUID]: a.spec.processGuid,
    [PROP_INSTANCE_GUID]: instanceGuid,
    [PROP_INDEX]: String(a.spec.index),
  };
}

export function taskProperties(t: ITask): Record<string, string> {
  return {
    [PROP_KIND]: 'task',
    [PROP_NAMESPACE]: t.metadata.namespace ?? '',
    [PROP_NAME]: t.metadata.name ?? '',
    [PROP_TASK_GUID]: t.spec.taskGuid,
  };
}

/** Whose container this is, or undefined for a container the rep did not label (an orphan). */
export function ownerOf(props: Readonly<Record<string, string>>): Owner | undefined {
  const namespace = props[PROP_NAMESPACE];
  const name = props[PROP_NAME];
  if (!namespace || !name) return undefined;
  if (props[PROP_KIND] === 'lrp' && props[PROP_INSTANCE_GUID]) {
    return { kind: 'lrp', namespace, name, instanceGuid: props[PROP_INSTANCE_GUID] };
  }
  if (props[PROP_KIND] === 'task' && props[PROP_TASK_GUID]) {
    return { kind: 'task', namespace, name, taskGuid: props[PROP_TASK_GUID] };
  }
  return undefined;
}
