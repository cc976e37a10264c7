// Cell: a node that runs work (bbs models/cells.proto CellPresence plus the rep's live state). Cluster-scoped;
// written by the cell-agent. Liveness is its coordination.k8s.io Lease, not this object.
import { z } from 'zod';
import { conditions, doc, observedGeneration } from './common.ts';

export const Resources = z.object({
  memoryMb: doc(z.int().min(0), 'Memory in MB.'),
  diskMb: doc(z.int().min(0), 'Disk in MB.'),
  containers: doc(z.int().min(0), 'Containers.'),
});

export const Provider = doc(
  z.object({
    name: doc(z.string().min(1).max(256), "Rootfs scheme served: 'preloaded', 'preloaded+layer', 'docker', ..."),
    properties: doc(
      z.array(z.string().max(256)).max(64).optional(),
      "For 'preloaded': the stacks on the cell (e.g. cflinuxfs4).",
    ),
  }),
  'A kind of root filesystem the cell can run.',
);

export const CellSpec = doc(
  z.object({
    cellId: doc(
      z
        .string()
        .min(1)
        .max(256)
        .regex(/^[a-zA-Z0-9_.-]+$/),
      'The cell id (Diego cell_id). Letters, digits, _ . and -.',
    ),
    repAddress: doc(z.string().max(1024).optional(), "Address of the cell-agent's API."),
    repUrl: doc(z.string().max(1024).optional(), "URL of the cell-agent's API."),
    opsUrl: doc(
      z.string().max(1024).optional(),
      "URL of the cell-agent's ops server: /metrics, /healthz and the log stream /v1/namespaces/<ns>/logs/<logGuid> that `kubectl diego logs` reads (set by the agent once the server listens).",
    ),
    zone: doc(z.string().max(256).optional(), 'Availability zone (from the node label topology.kubernetes.io/zone).'),
    capacity: doc(Resources, 'Total resources the cell offers.'),
    rootfsProviders: doc(z.array(Provider).max(64).optional(), 'Root filesystems the cell can run.'),
    placementTags: doc(
      z.array(z.string().max(256)).max(64).optional(),
      'Tags a DesiredLRP or Task must all ask for to land here.',
    ),
    optionalPlacementTags: doc(
      z.array(z.string().max(256)).max(64).optional(),
      'Tags that may, but need not, be asked for.',
    ),
    volumeDrivers: doc(z.array(z.string().max(256)).max(64).optional(), 'Volume drivers available on the cell.'),
    annotations: doc(
      z.record(z.string(), z.string().max(4096)).optional(),
      'Free-form cell annotations (Diego CellPresence.annotations).',
    ),
  }),
  "What the cell presents to the auction (Diego's CellPresence).",
  [{ rule: 'self.cellId == oldSelf.cellId', message: 'cellId is immutable', fieldPath: '.cellId' }],
);

export const CellStatus = doc(
  z.object({
    observedGeneration,
    conditions,
    available: doc(Resources.optional(), 'Resources not yet allocated to containers.'),
    startingContainers: doc(
      z.int().min(0).optional(),
      'Containers being created or starting (weighs in the auction score).',
    ),
    lrpInstances: doc(z.int().min(0).optional(), 'LRP instances on the cell.'),
    tasks: doc(z.int().min(0).optional(), 'Tasks on the cell.'),
    evacuating: doc(z.boolean().optional(), 'The cell is draining: it takes no new work.'),
  }),
  'The live state of the cell.',
);

export type CellSpec = z.infer<typeof CellSpec>;
export type CellStatus = z.infer<typeof CellStatus>;
