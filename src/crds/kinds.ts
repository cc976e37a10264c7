// The four Diego kinds: everything the CRD generator and the clients need to know about each.
import type { z } from 'zod';
import { ActualLRPSpec, ActualLRPStatus } from './actual-lrp.ts';
import { CellSpec, CellStatus } from './cell.ts';
import { DesiredLRPSpec, DesiredLRPStatus } from './desired-lrp.ts';
import { TaskSpec, TaskStatus } from './task.ts';

export const GROUP = 'diego.dev';
export const VERSION = 'v1alpha1';
export const API_VERSION = `${GROUP}/${VERSION}`;
export const CATEGORY = 'diego';

export interface PrinterColumn {
  name: string;
  type: 'integer' | 'number' | 'string' | 'boolean' | 'date';
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindInfo {
  kind: 'DesiredLRP' | 'ActualLRP' | 'Task' | 'Cell';
  plural: string;
  singular: string;
  shortNames: string[];
  scope: 'Namespaced' | 'Cluster';
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath?: string };
  selectableFields?: string[];
}

const age: PrinterColumn = { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' };
const ready = (what: string): PrinterColumn => ({
  name: 'Ready',
  type: 'string',
  jsonPath: '.status.conditions[?(@.type=="Ready")].status',
  description: `Whether the ${what} is ready`,
});

export const DESIRED_LRP: KindInfo = {
  kind: 'DesiredLRP',
  plural: 'desiredlrps',
  singular: 'desiredlrp',
  shortNames: ['dlrp'],
  scope: 'Namespaced',
  description:
    'A long-running process: Diego keeps spec.instances ActualLRPs of it running, restarting them when they crash and moving them when cells go away.',
  spec: DesiredLRPSpec,
  status: DesiredLRPStatus,
  printerColumns: [
    { name: 'Process', type: 'string', jsonPath: '.spec.processGuid', priority: 1 },
    { name: 'Domain', type: 'string', jsonPath: '.spec.domain', priority: 1 },
    { name: 'Instances', type: 'integer', jsonPath: '.spec.instances', description: 'Desired instances' },
    { name: 'Running', type: 'integer', jsonPath: '.status.runningInstances', description: 'Instances RUNNING' },
    { name: 'Crashed', type: 'integer', jsonPath: '.status.crashedInstances', priority: 1 },
    ready('LRP'),
    age,
  ],
  scale: {
    specReplicasPath: '.spec.instances',
    statusReplicasPath: '.status.runningInstances',
    labelSelectorPath: '.status.selector',
  },
  selectableFields: ['.spec.processGuid', '.spec.domain'],
};

export const ACTUAL_LRP: KindInfo = {
  kind: 'ActualLRP',
  plural: 'actuallrps',
  singular: 'actuallrp',
  shortNames: ['alrp'],
  scope: 'Namespaced',
  description: 'One instance of a DesiredLRP and where it runs (Diego ActualLRP). Managed by diego-operator.',
  spec: ActualLRPSpec,
  status: ActualLRPStatus,
  printerColumns: [
    { name: 'Process', type: 'string', jsonPath: '.spec.processGuid' },
    { name: 'Index', type: 'integer', jsonPath: '.spec.index' },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    { name: 'Presence', type: 'string', jsonPath: '.status.presence', priority: 1 },
    { name: 'Cell', type: 'string', jsonPath: '.spec.cellId' },
    { name: 'Zone', type: 'string', jsonPath: '.status.availabilityZone', priority: 1 },
    { name: 'Crashes', type: 'integer', jsonPath: '.status.crashCount', priority: 1 },
    { name: 'Error', type: 'string', jsonPath: '.status.placementError', priority: 1 },
    age,
  ],
  selectableFields: ['.spec.processGuid', '.spec.domain', '.spec.cellId'],
};

export const TASK: KindInfo = {
  kind: 'Task',
  plural: 'tasks',
  singular: 'task',
  shortNames: ['dtask'],
  scope: 'Namespaced',
  description: 'Work that runs at most once on some cell and reports a result (Diego Task).',
  spec: TaskSpec,
  status: TaskStatus,
  printerColumns: [
    { name: 'Guid', type: 'string', jsonPath: '.spec.taskGuid', priority: 1 },
    { name: 'Domain', type: 'string', jsonPath: '.spec.domain', priority: 1 },
    { name: 'State', type: 'string', jsonPath: '.status.state' },
    { name: 'Cell', type: 'string', jsonPath: '.spec.cellId' },
    { name: 'Failed', type: 'boolean', jsonPath: '.status.failed' },
    { name: 'Reason', type: 'string', jsonPath: '.status.failureReason', priority: 1 },
    age,
  ],
  selectableFields: ['.spec.taskGuid', '.spec.domain', '.spec.cellId'],
};

export const CELL: KindInfo = {
  kind: 'Cell',
  plural: 'cells',
  singular: 'cell',
  shortNames: ['dcell'],
  scope: 'Cluster',
  description: 'A node that runs Diego work, registered and kept current by its cell-agent (Diego cell / rep).',
  spec: CellSpec,
  status: CellStatus,
  printerColumns: [
    { name: 'Cell', type: 'string', jsonPath: '.spec.cellId', priority: 1 },
    { name: 'Zone', type: 'string', jsonPath: '.spec.zone' },
    { name: 'Memory', type: 'integer', jsonPath: '.spec.capacity.memoryMb', description: 'Total memory (MB)' },
    { name: 'Free', type: 'integer', jsonPath: '.status.available.memoryMb', description: 'Unallocated memory (MB)' },
    { name: 'Containers', type: 'integer', jsonPath: '.spec.capacity.containers', priority: 1 },
    { name: 'Evacuating', type: 'boolean', jsonPath: '.status.evacuating', priority: 1 },
    ready('cell'),
    age,
  ],
  selectableFields: ['.spec.zone'],
};

export const KINDS: readonly KindInfo[] = [DESIRED_LRP, ACTUAL_LRP, TASK, CELL];
