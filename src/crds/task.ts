// Task: work run at most once on some cell (bbs models/task.proto; TaskDefinition fields are flattened into
// spec, as Diego's JSON embeds them).
import { z } from 'zod';
import { Action } from './actions.ts';
import {
  annotation,
  cachedDependencies,
  CertificateProperties,
  type CelRule,
  conditions,
  doc,
  egressRules,
  environmentVariables,
  guid,
  imageCredentials,
  imageLayers,
  immutable,
  LogRateLimit,
  metricTags,
  Network,
  nonNegativeInt,
  observedGeneration,
  placementTags,
  REASON_MAX_LENGTH,
  RESULT_MAX_BYTES,
  rootFs,
  timestamp,
  volumeMountedFiles,
  volumeMounts,
} from './common.ts';

// Everything but the placement (cellId) and the cancel request is fixed once the task is desired.
const TASK_DEFINITION_FIELDS = [
  'taskGuid',
  'domain',
  'rootFs',
  'environmentVariables',
  'action',
  'diskMb',
  'memoryMb',
  'cpuWeight',
  'privileged',
  'logSource',
  'logGuid',
  'metricsGuid',
  'resultFile',
  'completionCallbackUrl',
  'annotation',
  'egressRules',
  'cachedDependencies',
  'legacyDownloadUser',
  'trustedSystemCertificatesPath',
  'volumeMounts',
  'network',
  'placementTags',
  'maxPids',
  'certificateProperties',
  'imageCredentialsSecret',
  'imageUsername',
  'imagePassword',
  'imageLayers',
  'logRateLimit',
  'metricTags',
  'volumeMountedFiles',
] as const;

const frozen = (field: string): CelRule => ({
  ...immutable(field),
  message: `${field} cannot be changed once the task is desired; create a new Task instead`,
});

const cancelOnce: CelRule = {
  rule: '!has(oldSelf.cancelled) || !oldSelf.cancelled || (has(self.cancelled) && self.cancelled)',
  message: 'a cancelled task cannot be un-cancelled',
  fieldPath: '.cancelled',
};

export const TASK_STATES = ['Pending', 'Running', 'Completed', 'Resolving'] as const;

export const TaskSpec = doc(
  z.object({
    taskGuid: guid('The task guid: its identity in Diego'),
    domain: doc(z.string().min(1).max(256), "The domain the task belongs to (Cloud Controller uses 'cf-tasks')."),
    rootFs,
    environmentVariables,
    action: Action.meta({ description: 'What the task runs. Required.' }),
    diskMb: nonNegativeInt('Disk limit in MB (0: no limit).').optional(),
    memoryMb: nonNegativeInt('Memory limit in MB (0: no limit).').optional(),
    cpuWeight: doc(z.int().min(0).max(100).optional(), 'Relative CPU weight, 1 to 100.'),
    privileged: doc(
      z.boolean().optional(),
      "Give the container's processes every capability (Garden's privileged containers); unprivileged ones keep a small set.",
    ),
    logSource: doc(z.string().max(256).optional(), 'Default log source type.'),
    logGuid: doc(z.string().max(256).optional(), 'The log stream the task writes to.'),
    metricsGuid: doc(z.string().max(256).optional(), 'Deprecated: use metricTags.source_id.'),
    resultFile: doc(
      z.string().max(4096).optional(),
      'File read after the action succeeds; its first 10 KB become status.result.',
    ),
    completionCallbackUrl: doc(
      z.string().max(4096).url().optional(),
      'URL that gets a JSON POST (task_guid, failed, failure_reason, result, annotation, created_at) when the task completes.',
    ),
    annotation,
    egressRules,
    cachedDependencies,
    legacyDownloadUser: doc(
      z.string().max(256).optional(),
      'User the EXCLUSIVE imageLayers are downloaded as (required with exclusive layers, as in Diego).',
    ),
    trustedSystemCertificatesPath: doc(
      z.string().max(4096).optional(),
      'Where the cell mounts its trusted CA certificates (read-only) in the container, exported as CF_SYSTEM_CERT_PATH; nothing is mounted on a cell started without --trusted-certs-dir.',
    ),
    volumeMounts,
    network: Network.optional(),
    placementTags,
    maxPids: nonNegativeInt('Process limit for the container (0: no limit).').optional(),
    certificateProperties: CertificateProperties.optional(),
    ...imageCredentials,
    imageLayers,
    logRateLimit: LogRateLimit.optional(),
    metricTags,
    volumeMountedFiles,
    cellId: doc(
      z.string().max(256).optional(),
      "The cell the auction placed the task on (like a Pod's nodeName); set by diego-operator, not by users.",
    ),
    cancelled: doc(
      z.boolean().optional(),
      "Set to true to cancel the task (Diego's CancelTask): a Pending or Running task completes as failed with 'task was cancelled'.",
    ),
  }),
  "The task's definition (Diego TaskDefinition plus guid and domain). A task cannot be changed once desired.",
  [...TASK_DEFINITION_FIELDS.map(frozen), cancelOnce],
);

export const TaskStatus = doc(
  z.object({
    observedGeneration,
    conditions,
    state: doc(
      z.enum(TASK_STATES).optional(),
      'Pending (waiting for a cell), Running, Completed (result or failure known) or Resolving (a client is handling the result).',
    ),
    cellId: doc(z.string().max(256).optional(), 'The cell running the task (while Running).'),
    result: doc(z.string().max(RESULT_MAX_BYTES).optional(), 'First 10 KB of resultFile after success.'),
    failed: doc(z.boolean().optional(), 'Whether the task failed.'),
    failureReason: doc(z.string().max(REASON_MAX_LENGTH).optional(), 'Why it failed.'),
    rejectionCount: doc(z.int().min(0).optional(), 'How often placement was rejected.'),
    rejectionReason: doc(z.string().max(REASON_MAX_LENGTH).optional(), 'Why placement was last rejected.'),
    updatedAt: timestamp('When the task last changed.'),
    firstCompletedAt: timestamp('When the task first completed; unresolved tasks are deleted 2 min after it.'),
  }),
  'The observed state of the task.',
);

export type TaskSpec = z.infer<typeof TaskSpec>;
export type TaskStatus = z.infer<typeof TaskStatus>;
export type TaskState = (typeof TASK_STATES)[number];
