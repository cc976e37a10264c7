// Diego's rep `GET /state` (rep.CellState), the answer `cfdot cell-states` and Diego's own rep client expect: what
// this cell offers, what it holds and what runs on it, in the rep's JSON (Go field names; rep/resources.go). The
// answer is computed purely (repCellState) from what the agent gathers (rep.ts cellState()); the ops server serves it.
import type { FastifyInstance } from 'fastify';
import type { IActualLRP, ITask } from '../crds/models.ts';
import { allowed, type OpsAuth } from '../lib/ops-auth.ts';

export interface Resources {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface CellStateInput {
  cellId: string;
  /** The URL the state is served at (the Cell's spec.repAddress). */
  repUrl: string;
  zone: string;
  total: Resources;
  available: Resources;
  stacks: readonly string[];
  /** Arbitrary providers besides preloaded (docker, ...). */
  rootfsProviders: readonly string[];
  placementTags: readonly string[];
  optionalPlacementTags: readonly string[];
  volumeDrivers: readonly string[];
  evacuating: boolean;
  /** The ORDINARY and EVACUATING records of the instances whose containers run here, with what each holds. */
  lrps: readonly { record: IActualLRP; held?: { memoryMb: number; diskMb: number } }[];
  tasks: readonly { task: ITask; held?: { memoryMb: number; diskMb: number } }[];
}

/** Go's encoding of rep.StringSet: an object whose keys are the members. */
const stringSet = (items: readonly string[]) => Object.fromEntries(items.map((s) => [s, {}]));

/** Diego's models.Task_State numbers (bbs models/task.proto). */
const TASK_STATE: Record<string, number> = { Pending: 1, Running: 2, Completed: 3, Resolving: 4 };

export function repCellState(input: CellStateInput): Record<string, unknown> {
  const fixed = { type: 'fixed_set', set: stringSet(input.stacks) };
  const rootfs: Record<string, unknown> = { preloaded: fixed, 'preloaded+layer': fixed };
  for (const name of input.rootfsProviders) rootfs[name] = { type: 'arbitrary' };
  const starting = input.lrps.filter((l) => l.record.status?.state === 'CLAIMED').length;
  return {
    rep_url: input.repUrl,
    cell_id: input.cellId,
    cell_index: 0,
    RootFSProviders: rootfs,
    AvailableResources: goResources(input.available),
    TotalResources: goResources(input.total),
    LRPs: input.lrps.map(({ record, held }) => ({
      instance_guid: record.status?.instanceGuid ?? '',
      process_guid: record.spec.processGuid,
      index: record.spec.index,
      domain: record.spec.domain ?? '',
      PlacementTags: null,
      VolumeDrivers: null,
      RootFs: '',
      MemoryMB: held?.memoryMb ?? 0,
      DiskMB: held?.diskMb ?? 0,
      MaxPids: 0,
      state: record.status?.state ?? '',
    })),
    Tasks: input.tasks.map(({ task, held }) => ({
      TaskGuid: task.spec.taskGuid,
      Domain: task.spec.domain,
      PlacementTags: task.spec.placementTags ?? null,
      VolumeDrivers: null,
      RootFs: task.spec.rootFs,
      MemoryMB: held?.memoryMb ?? 0,
      DiskMB: held?.diskMb ?? 0,
      MaxPids: task.spec.maxPids ?? 0,
      state: TASK_STATE[task.status?.state ?? ''] ?? 0,
      failed: task.status?.failed ?? false,
    })),
    StartingContainerCount: starting,
    Zone: input.zone,
    Evacuating: input.evacuating,
    VolumeDrivers: [...input.volumeDrivers],
    PlacementTags: [...input.placementTags],
    OptionalPlacementTags: [...input.optionalPlacementTags],
    ProxyMemoryAllocationMB: 0,
  };
}

function goResources(r: Resources) {
  return { MemoryMB: r.memoryMb, DiskMB: r.diskMb, Containers: r.containers };
}

/**
 * `GET /state` on the cell's ops server, as Diego's rep serves it to the auctioneer and cfdot. With authentication
 * (off loopback) the caller's token must allow `get cells.diego.dev`.
 */
export function registerStateRoute(app: FastifyInstance, state: () => Record<string, unknown>, auth?: OpsAuth): void {
  app.get('/state', async (req, reply) => {
    if (auth) {
      const attrs = { resource: { group: 'diego.dev', resource: 'cells', verb: 'get' } };
      if (!(await allowed(auth, req, reply, attrs))) return reply;
    }
    return reply.send(state());
  });
}
