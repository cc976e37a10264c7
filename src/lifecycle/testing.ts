// Records for the lifecycle tests (pure and integration): an ActualLRP or a Task in a given state.
import { API_VERSION } from '../crds/kinds.ts';
import type { IActualLRP, ITask } from '../crds/models.ts';
import type { ActualLRPState, Presence } from './actual-lrp.ts';
import type { TaskState } from './task.ts';

export function lrp(
  state: ActualLRPState,
  opts: { presence?: Presence; instanceGuid?: string; cellId?: string; placedOn?: string; index?: number } = {},
): IActualLRP {
  const presence = opts.presence ?? 'ORDINARY';
  const index = opts.index ?? 0;
  return {
    apiVersion: API_VERSION,
    kind: 'ActualLRP',
    metadata: {
      name: presence === 'ORDINARY' ? `web-${index}` : `web-${index}-${presence.toLowerCase()}`,
      namespace: 'ns',
      resourceVersion: '1',
    },
    spec: { processGuid: 'web', index, domain: 'cf-apps', ...(opts.placedOn ? { cellId: opts.placedOn } : {}) },
    status: { state, presence, instanceGuid: opts.instanceGuid, cellId: opts.cellId },
  };
}

export function task(state: TaskState, opts: { placedOn?: string; cellId?: string; cancelled?: boolean } = {}): ITask {
  return {
    apiVersion: API_VERSION,
    kind: 'Task',
    metadata: { name: 't', namespace: 'ns', resourceVersion: '1', uid: 'uid-t' },
    spec: {
      taskGuid: 't-guid',
      domain: 'cf-tasks',
      rootFs: 'preloaded:busybox',
      action: { run: { path: 'true', user: 'root' } },
      ...(opts.placedOn ? { cellId: opts.placedOn } : {}),
      ...(opts.cancelled ? { cancelled: true } : {}),
    },
    status: { state, ...(opts.cellId ? { cellId: opts.cellId } : {}) },
  };
}
