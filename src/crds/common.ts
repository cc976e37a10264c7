// Shared building blocks for the Diego CRD schemas. Every schema here is the single source of truth:
// TypeScript types come from z.infer, and hack/generate-crds.ts turns them into config/crd/*.yaml.
import { z } from 'zod';
import { securityGroupRuleIssues } from './security-group.ts';

/** A CEL rule attached to a schema node (becomes x-kubernetes-validations in the CRD). */
export interface CelRule {
  rule: string;
  message: string;
  fieldPath?: string;
  reason?: 'FieldValueInvalid' | 'FieldValueForbidden' | 'FieldValueRequired' | 'FieldValueDuplicate';
}

/** Attach a description (shown by `kubectl explain`) and, optionally, CEL rules. */
export function doc<T extends z.ZodType>(schema: T, description: string, rules?: CelRule[]): T {
  const prev = (schema.meta() ?? {}) as Record<string, unknown>;
  const prevRules = (prev['x-kubernetes-validations'] as CelRule[] | undefined) ?? [];
  const allRules = [...prevRules, ...(rules ?? [])];
  return schema.meta({ ...prev, description, ...(allRules.length ? { 'x-kubernetes-validations': allRules } : {}) });
}

/** Marks a field whose value may not change once the object exists (Diego's run info). */
export function immutable(field: string): CelRule {
  return {
    rule: `has(self.${field}) == has(oldSelf.${field}) && (!has(self.${field}) || self.${field} == oldSelf.${field})`,
    message: `${field} is immutable: Diego only lets instances, routes, annotation, metricTags and image credentials change; create a new object instead`,
    fieldPath: `.${field}`,
  };
}

// Diego validates guids with ^[a-zA-Z0-9_-]+$ (models/desired_lrp.go, models/task.go).
export const GUID_PATTERN = '^[a-zA-Z0-9_-]+$';
export const guid = (what: string) =>
  doc(
    z.string().min(1).max(255).regex(new RegExp(GUID_PATTERN)),
    `${what}. Letters, digits, '_' and '-' only (Diego's rule).`,
  );

export const nonNegativeInt = (description: string) => doc(z.int().min(0).max(2147483647), description);
export const port = (description: string) => doc(z.int().min(1).max(65535), description);
export const millis = (description: string) => doc(z.int().min(0), description);

// Diego: annotation <= 10 KiB (10240 bytes; 10241 is rejected).
export const ANNOTATION_MAX_BYTES = 10 * 1024;
// Diego: all route values together <= 128 KiB.
export const ROUTES_MAX_BYTES = 128 * 1024;
// Diego: volume-mounted files together <= 1 MiB.
export const VOLUME_MOUNTED_FILES_MAX_BYTES = 1024 * 1024;
// Diego stores at most 1024 characters of crash and failure reasons.
export const REASON_MAX_LENGTH = 1024;
// Diego returns at most the first 10 KB of a task's result file.
export const RESULT_MAX_BYTES = 10 * 1024;

export const rootFs = doc(
  z
    .string()
    .min(1)
    .max(4096)
    .regex(/^[a-zA-Z][a-zA-Z0-9+.-]*:/),
  "The container's root filesystem as a URL with a scheme: 'preloaded:<stack>' (a stack preloaded on the cell, e.g. preloaded:cflinuxfs4), 'preloaded+layer:<stack>?layer=<url>', or 'docker:///<image>#<tag>' / 'docker://<registry>/<image>#<tag>'.",
);

export const EnvironmentVariable = doc(
  z.object({
    name: doc(z.string().min(1).max(1024), 'Variable name.'),
    value: doc(z.string().max(131072).optional(), 'Variable value.'),
  }),
  'An environment variable set in the container.',
);

export const environmentVariables = doc(
  z.array(EnvironmentVariable).max(1024).optional(),
  'Environment variables for every process in the container; a run action can override them.',
);

export const File = doc(
  z.object({
    path: doc(
      z.string().min(1).max(4096),
      "Where the file appears under /etc/cf-service-bindings, as '<service>/<file>' (a leading '/' is allowed; '..' is not).",
    ),
    content: doc(z.string().max(VOLUME_MOUNTED_FILES_MAX_BYTES), 'File content.'),
  }),
  'A file the cell writes and mounts read-only under /etc/cf-service-bindings before the container starts (service bindings).',
);

export const volumeMountedFiles = doc(
  z.array(File).max(256).optional(),
  'Files mounted read-only under /etc/cf-service-bindings before the container starts; together at most 1 MiB (Diego).',
);

export const LogRateLimit = doc(
  z.object({
    bytesPerSecond: doc(z.int().min(-1), 'Log bytes per second a process may emit; -1 means unlimited.'),
  }),
  'Caps the log output rate of each instance.',
);

export const CertificateProperties = doc(
  z.object({
    organizationalUnit: doc(
      z.array(z.string().max(1024)).max(64).optional(),
      "OU values put into the instance identity certificate (Cloud Controller sends 'organization:<guid>', 'space:<guid>', 'app:<guid>').",
    ),
  }),
  'Properties of the instance identity certificate.',
);

export const Network = doc(
  z.object({
    properties: doc(
      z.record(z.string(), z.string().max(4096)).optional(),
      "Opaque properties for the container networking plugin (e.g. policy group ids), kept on the container as Garden properties 'network.<key>' as Diego does; the cells' CNI bridge applies no policy from them.",
    ),
  }),
  'Container networking properties.',
);

export const MetricTagValue = doc(
  z.object({
    static: doc(z.string().max(1024).optional(), 'A literal tag value.'),
    dynamic: doc(
      z.enum(['INDEX', 'INSTANCE_GUID']).optional(),
      "A value filled in per instance: 'INDEX' or 'INSTANCE_GUID'.",
    ),
  }),
  'The value of a metric tag: set exactly one of static or dynamic.',
  [
    {
      rule: '(has(self.static) ? 1 : 0) + (has(self.dynamic) ? 1 : 0) == 1',
      message: 'a metric tag value needs exactly one of static or dynamic',
    },
  ],
);

export const metricTags = doc(
  z.record(z.string().max(256), MetricTagValue).optional(),
  "Tags put on every metric of the instances, e.g. source_id. Diego's BBS requires source_id for LRPs.",
);

export const PortRange = z.object({
  start: port('First port of the range.'),
  end: port('Last port of the range.'),
});

export const SecurityGroupRule = doc(
  z
    .object({
      protocol: doc(
        z.enum(['tcp', 'udp', 'icmp', 'icmpv6', 'all']),
        "Protocol: 'tcp', 'udp', 'icmp', 'icmpv6' or 'all'. tcp and udp need ports or portRange, icmp and icmpv6 need icmpInfo, all takes neither.",
      ),
      destinations: doc(
        z.array(z.string().max(256)).min(1).max(256),
        "Destinations, each an IP ('10.0.0.1'), a range 'a-b' with a <= b ('10.0.0.1-10.0.0.9') or a CIDR ('10.0.0.0/8'); commas separate several in one entry, as in Diego.",
      ),
      ports: doc(
        z.array(z.int().min(1).max(65535)).max(256).optional(),
        'Single destination ports (tcp/udp only); at least one when set. Use either ports or portRange.',
      ),
      portRange: doc(
        PortRange.optional(),
        'A destination port range, start <= end (tcp/udp only); use either ports or portRange.',
      ),
      icmpInfo: doc(
        z
          .object({
            type: doc(z.int().optional(), "ICMP type; -1 means every type. Default 0, as in Diego's protobuf."),
            code: doc(z.int().optional(), "ICMP code; -1 means every code. Default 0, as in Diego's protobuf."),
          })
          .optional(),
        'ICMP type and code; required for protocol icmp and icmpv6, not allowed for the others.',
      ),
      log: doc(
        z.boolean().optional(),
        "Log the first packet of every connection this rule lets through (iptables LOG, prefixed with the container's handle).",
      ),
      annotations: doc(z.array(z.string().max(1024)).max(64).optional(), 'Free-form notes on the rule.'),
    })
    // Diego's SecurityGroupRule.Validate, including what CEL cannot check here (address syntax, ranges).
    .superRefine((rule, ctx) => {
      for (const issue of securityGroupRuleIssues(rule)) {
        ctx.addIssue({ code: 'custom', path: issue.path, message: issue.message });
      }
    }),
  "An egress rule (Diego's SecurityGroupRule, an application security group rule): traffic the container may send. Everything else it sends is refused.",
  [
    {
      rule: '!(has(self.ports) && has(self.portRange))',
      message: 'set either ports or portRange, not both',
    },
    {
      rule: "(self.protocol != 'tcp' && self.protocol != 'udp') || has(self.ports) || has(self.portRange)",
      message: 'tcp and udp rules need ports or portRange',
      fieldPath: '.ports',
      reason: 'FieldValueRequired',
    },
    {
      rule: "self.protocol == 'tcp' || self.protocol == 'udp' || (!has(self.ports) && !has(self.portRange))",
      message: 'only tcp and udp rules may have ports or portRange',
      fieldPath: '.ports',
    },
    {
      rule: '!has(self.ports) || size(self.ports) > 0',
      message: 'ports, when set, needs at least one port',
      fieldPath: '.ports',
    },
    {
      rule: '!has(self.portRange) || self.portRange.start <= self.portRange.end',
      message: 'portRange start must not be after its end',
      fieldPath: '.portRange',
    },
    {
      rule: "has(self.icmpInfo) == (self.protocol == 'icmp' || self.protocol == 'icmpv6')",
      message: 'icmp and icmpv6 rules need icmpInfo, and only they may have it',
      fieldPath: '.icmpInfo',
    },
  ],
);

export const egressRules = doc(
  z.array(SecurityGroupRule).max(1024).optional(),
  "Egress rules (Diego's application security groups): the container may send only what one of them allows, plus replies to connections made to it. Enforced by cells running the runc or containerd backend with container networking; a cell running plain processes cannot enforce them (docs/security.md).",
);

export const checksumAlgorithm = doc(
  z.enum(['md5', 'sha1', 'sha256']).optional(),
  "Checksum algorithm: 'md5', 'sha1' or 'sha256'; needs checksumValue.",
);

export const CachedDependency = doc(
  z.object({
    name: doc(z.string().max(1024).optional(), 'Name shown in progress logs.'),
    from: doc(z.string().min(1).max(4096), 'URL of the archive.'),
    to: doc(z.string().min(1).max(4096), 'Absolute path in the container where it is bind-mounted (read-only).'),
    cacheKey: doc(z.string().min(1).max(1024), 'Key under which the cell caches the download.'),
    logSource: doc(z.string().max(256).optional(), 'Log source for progress messages.'),
    checksumAlgorithm,
    checksumValue: doc(z.string().max(256).optional(), 'Expected checksum (hex).'),
  }),
  "A dependency downloaded once per cell into the cell's cache (revalidated with ETag/Last-Modified on each use), and bind-mounted read-only into containers before setup.",
);

export const cachedDependencies = doc(
  z.array(CachedDependency).max(64).optional(),
  'Dependencies cached on the cell and mounted into the container.',
);

export const ImageLayer = doc(
  z.object({
    name: doc(z.string().max(1024).optional(), 'Name shown in progress logs.'),
    url: doc(z.string().min(1).max(4096), 'URL of the layer archive.'),
    destinationPath: doc(z.string().min(1).max(4096), 'Where the layer is extracted in the container.'),
    layerType: doc(
      z.enum(['SHARED', 'EXCLUSIVE']),
      'SHARED layers are cached on the cell and mounted read-only at destinationPath; EXCLUSIVE ones are extracted into each container at destinationPath before setup (Diego: as download actions).',
    ),
    mediaType: doc(z.enum(['TGZ', 'TAR', 'ZIP']), "Archive format: 'TGZ', 'TAR' or 'ZIP'."),
    digestAlgorithm: doc(z.enum(['SHA256', 'SHA512']).optional(), 'Digest algorithm.'),
    digestValue: doc(z.string().max(256).optional(), 'Expected digest (hex).'),
  }),
  'A filesystem layer added to the container before it starts (Diego models/image_layer.go).',
);

export const imageLayers = doc(z.array(ImageLayer).max(64).optional(), 'Extra filesystem layers.');

export const VolumeMount = doc(
  z.object({
    driver: doc(
      z.string().min(1).max(256),
      "Volume driver (a Docker volume plugin the cell found in its --volume-driver-paths, Diego's volman); only cells that advertise it are chosen.",
    ),
    containerDir: doc(
      z.string().min(1).max(4096),
      'Mount point in the container: the host path the driver answers is bind-mounted here before the container starts.',
    ),
    mode: doc(
      z.enum(['r', 'rw']),
      "'r' for read-only (enforced by runc and containerd cells, not by the process backend), 'rw' for read-write.",
    ),
    shared: doc(
      z
        .object({
          volumeId: doc(
            z.string().min(1).max(1024),
            "Id of the shared volume: the Name the driver's Create, Mount and Unmount get.",
          ),
          mountConfig: doc(
            z.string().max(65536).optional(),
            "Driver-specific configuration: a JSON object, sent as the Opts of the driver's Create. Anything else fails the container (failed to mount volume, errors: ...).",
          ),
        })
        .optional(),
      'A volume that several containers may mount (each mounts it and unmounts it when destroyed; the driver keeps it mounted while any container has it). A mount without it fails the container.',
    ),
  }),
  "A volume-service mount: before the container is created the cell's driver mounts the volume for it, and unmounts it when the container is destroyed. A failure ends the container with 'failed to mount volume' (plus ', errors: <text>' when the driver gives one meant for users).",
);

export const volumeMounts = doc(
  z.array(VolumeMount).max(64).optional(),
  'Volume-service mounts, made in order before the container starts.',
);

export const placementTags = doc(
  z.array(z.string().min(1).max(256)).max(64).optional(),
  'Only cells carrying every one of these tags are eligible.',
);

// Kubernetes' Secret type for user and password (lib/image-credentials.ts reads it).
const IMAGE_CREDENTIALS_SECRET_TYPE = 'kubernetes.io/basic-auth';

const inlineCredentialsRefused = (field: 'imageUsername' | 'imagePassword', what: string) =>
  doc(
    z
      .string()
      .max(field === 'imagePassword' ? 4096 : 1024)
      .optional(),
    `Refused: Diego's inline registry ${what}. Every cell agent can read every DesiredLRP and Task, so a ${what} here would reach every node; put the credentials in a ${IMAGE_CREDENTIALS_SECRET_TYPE} Secret (keys username and password) in this namespace and name it in imageCredentialsSecret. Kept in the schema so that a spec carrying it is refused rather than silently pruned (an object stored before this rule keeps its value until the field changes).`,
    [
      {
        // On the field itself, so CRD validation ratcheting lets an object stored before the rule keep an unchanged
        // value (its other updates — placement, status — go on); any create or change that carries it is refused.
        rule: 'false',
        message: `${field} is refused: every cell agent can read every DesiredLRP and Task, so inline registry credentials would reach every node; put them in a ${IMAGE_CREDENTIALS_SECRET_TYPE} Secret (keys username, password) in this namespace and name it in spec.imageCredentialsSecret`,
        reason: 'FieldValueForbidden',
      },
    ],
  );

export const imageCredentials = {
  imageCredentialsSecret: doc(
    z
      .string()
      .min(1)
      .max(253)
      .regex(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/)
      .optional(),
    `Name of a Secret of type ${IMAGE_CREDENTIALS_SECRET_TYPE} (keys username and password) in this namespace: the registry credentials for pulling a docker:// rootFs (what Diego carries inline as imageUsername/imagePassword). Cell agents cannot read Secrets: the cell this work is placed on asks the controller for them just before it pulls the image, and gets them only while the work is placed on that cell (a Secret of another type is refused). Ignored for other rootFs schemes. The BBS API keeps a client's inline credentials in '<object name>-image-credentials', owned by this object.`,
  ),
  imageUsername: inlineCredentialsRefused('imageUsername', 'user name'),
  imagePassword: inlineCredentialsRefused('imagePassword', 'password'),
};

export const annotation = doc(
  z.string().max(ANNOTATION_MAX_BYTES).optional(),
  "Opaque text kept for the client, at most 10 KiB (Diego's limit). Cloud Controller stores the process's update time here.",
);

/** Kubernetes-style condition (metav1.Condition). */
export const Condition = z.object({
  type: doc(z.string().min(1).max(316), 'Condition type, e.g. Ready.'),
  status: doc(z.enum(['True', 'False', 'Unknown']), 'True, False or Unknown.'),
  observedGeneration: doc(z.int().min(0).optional(), 'The metadata.generation this condition was computed for.'),
  lastTransitionTime: doc(z.string().meta({ format: 'date-time' }), 'When status last changed.'),
  reason: doc(z.string().min(1).max(1024), 'Why, as a CamelCase word.'),
  message: doc(z.string().max(32768).optional(), 'Why, for a person.'),
});

export const conditions = doc(
  z
    .array(Condition)
    .max(32)
    .optional()
    .meta({ 'x-kubernetes-list-type': 'map', 'x-kubernetes-list-map-keys': ['type'] }),
  'The latest observations of the object state.',
);

export const observedGeneration = doc(
  z.int().min(0).optional(),
  'The metadata.generation of the spec the controller last acted on.',
);

export const timestamp = (description: string) => doc(z.string().meta({ format: 'date-time' }).optional(), description);
