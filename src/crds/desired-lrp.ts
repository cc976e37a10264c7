// DesiredLRP: an app that wants N instances (bbs models/desired_lrp.proto, field by field in camelCase).
import { z } from 'zod';
import { Action } from './actions.ts';
import { CheckDefinition } from './checks.ts';
import {
  annotation,
  cachedDependencies,
  CertificateProperties,
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
  rootFs,
  volumeMountedFiles,
  volumeMounts,
} from './common.ts';

export const Sidecar = doc(
  z.object({
    action: Action,
    diskMb: nonNegativeInt(
      "Disk the sidecar uses in MB, counted within the instance's diskMb (admission checks the sidecars fit in it).",
    ).optional(),
    memoryMb: nonNegativeInt(
      "Memory the sidecar uses in MB, counted within the instance's memoryMb as Cloud Controller sizes it (admission checks the sidecars' total is below it).",
    ).optional(),
  }),
  'A process run in the same container beside the main action for the life of the instance; when it exits, even with status 0, the instance crashes (Diego).',
);

export const CrashRestartPolicy = doc(
  z.object({
    immediateRestarts: doc(
      z.int().min(0).max(200).optional(),
      'Crashes restarted at once before backoff starts (Diego: 3, i.e. crashes 1 and 2 restart immediately).',
    ),
    minBackoffMs: doc(z.int().min(0).optional(), 'First backoff delay in ms (Diego: 30000), doubled per crash.'),
    maxBackoffMs: doc(z.int().min(0).optional(), 'Longest backoff delay in ms (Diego: 960000, 16 min).'),
    maxRestarts: doc(z.int().min(0).optional(), 'Stop restarting after this many crashes (Diego: 200).'),
    resetAfterMs: doc(
      z.int().min(0).optional(),
      'An instance that ran this long before crashing starts counting again (Diego: 300000, 5 min).',
    ),
  }),
  "Overrides Diego's crash restart policy for this LRP; unset fields keep Diego's values.",
);

// Run-info fields: Diego's DesiredLRPUpdate cannot change them.
const IMMUTABLE_FIELDS = [
  'processGuid',
  'domain',
  'rootFs',
  'environmentVariables',
  'setup',
  'action',
  'startTimeoutMs',
  'monitor',
  'diskMb',
  'memoryMb',
  'cpuWeight',
  'privileged',
  'ports',
  'logSource',
  'logGuid',
  'metricsGuid',
  'egressRules',
  'cachedDependencies',
  'legacyDownloadUser',
  'trustedSystemCertificatesPath',
  'volumeMounts',
  'network',
  'placementTags',
  'maxPids',
  'certificateProperties',
  'checkDefinition',
  'imageLayers',
  'sidecars',
  'logRateLimit',
  'volumeMountedFiles',
] as const;

export const DesiredLRPSpec = doc(
  z.object({
    processGuid: guid("The process guid: the LRP's identity in Diego"),
    domain: doc(z.string().min(1).max(256), "The domain the LRP belongs to (Cloud Controller uses 'cf-apps')."),
    rootFs,
    instances: doc(
      z.int().min(0).max(100000).default(1),
      'How many instances to keep running (Diego: instances). Change it with kubectl scale.',
    ),
    environmentVariables,
    setup: Action.optional().meta({
      description: 'Runs before action in each new container; its failure crashes the instance.',
    }),
    action: Action.meta({ description: "The instance's main process. Required." }),
    startTimeoutMs: doc(
      z.int().min(0).optional(),
      'How long the instance may take to become healthy before it is crashed, in ms (0: no limit).',
    ),
    monitor: Action.optional().meta({
      description:
        'Legacy health check: an action run every 2 s until it succeeds (within startTimeoutMs), then every 30 s; its first failure crashes the instance. Ignored when checkDefinition has checks. Prefer checkDefinition.',
    }),
    diskMb: nonNegativeInt('Disk limit in MB (0: no limit).').optional(),
    memoryMb: nonNegativeInt('Memory limit in MB (0: no limit).').optional(),
    cpuWeight: doc(z.int().min(0).max(100).optional(), 'Relative CPU weight, 1 to 100.'),
    privileged: doc(
      z.boolean().optional(),
      "Give the container's processes every capability (Garden's privileged containers); unprivileged ones keep a small set. Containers here use no user namespace either way.",
    ),
    ports: doc(
      z.array(z.int().min(1).max(65535)).max(64).optional(),
      'Container ports to expose; each is mapped to a host port on the cell.',
    ),
    routes: doc(
      z.record(z.string().max(256), z.unknown()).optional(),
      "Routing data by router name (e.g. 'cf-router', 'tcp-router', 'diego-ssh'); opaque JSON values, 128 KiB in all.",
    ),
    logSource: doc(z.string().max(256).optional(), "Default log source type of the instance's log lines."),
    logGuid: doc(z.string().max(256).optional(), "The log stream the instance's lines go to (Loggregator's app id)."),
    metricsGuid: doc(z.string().max(256).optional(), 'Deprecated: use metricTags.source_id.'),
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
    checkDefinition: CheckDefinition.optional(),
    imageLayers,
    metricTags,
    sidecars: doc(
      z.array(Sidecar).max(16).optional(),
      "Processes run in the instance's container beside the main action; any of them exiting crashes the instance.",
    ),
    logRateLimit: LogRateLimit.optional(),
    volumeMountedFiles,
    updateStrategy: doc(
      z.enum(['ROLLING', 'RECREATE']).optional(),
      'ROLLING (default) starts a replacement before stopping an evacuated instance; RECREATE stops it first.',
    ),
    // Beyond Diego: per-LRP settings Diego's users asked for.
    crashRestartPolicy: CrashRestartPolicy.optional(),
    terminationGracePeriodMs: doc(
      z.int().min(0).max(3600000).optional(),
      'Time between SIGTERM and SIGKILL when an instance is stopped, in ms (Diego fixes it at 10000).',
    ),
  }),
  'The desired state of a long-running process, as in Diego.',
  [...IMMUTABLE_FIELDS.map(immutable)],
);

export const DesiredLRPStatus = doc(
  z.object({
    observedGeneration,
    conditions,
    runningInstances: doc(z.int().min(0).optional(), 'Instances in state RUNNING.'),
    claimedInstances: doc(z.int().min(0).optional(), 'Instances placed on a cell and starting (CLAIMED).'),
    unclaimedInstances: doc(z.int().min(0).optional(), 'Instances waiting for placement (UNCLAIMED).'),
    crashedInstances: doc(z.int().min(0).optional(), 'Instances in state CRASHED.'),
    selector: doc(z.string().max(1024).optional(), 'Label selector of the ActualLRPs (for the scale subresource).'),
  }),
  'Observed state of the LRP.',
);

export type DesiredLRPSpec = z.infer<typeof DesiredLRPSpec>;
export type DesiredLRPStatus = z.infer<typeof DesiredLRPStatus>;
