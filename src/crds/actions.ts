// Diego's action language (bbs models/actions.proto). The tree is recursive; the zod schema below is the
// full validator (used by the admission webhook, the controllers and the BBS facade). The CRD schema
// generated from it types the top-level action and keeps nested actions as opaque objects, because CRD
// schemas cannot recurse: see docs/adr/0001-recursive-action-tree.md.
import { z } from 'zod';
import { checksumAlgorithm, doc, EnvironmentVariable, type CelRule, volumeMountedFiles } from './common.ts';

export const ACTION_TYPES = [
  'download',
  'upload',
  'run',
  'timeout',
  'emitProgress',
  'try',
  'parallel',
  'serial',
  'codependent',
] as const;
export type ActionType = (typeof ACTION_TYPES)[number];

/** Deepest action tree we accept; Diego has no limit, but an unbounded tree is a denial of service. */
export const MAX_ACTION_DEPTH = 32;
/** Most children one serial/parallel/codependent action may have. */
export const MAX_CHILD_ACTIONS = 256;

const logSource = doc(z.string().max(256).optional(), 'Log source type for lines this action emits (e.g. APP, STG).');
const user = doc(z.string().min(1).max(256), "User the action runs as inside the container (e.g. 'vcap' or 'root').");

export const DownloadAction = doc(
  z.strictObject({
    artifact: doc(z.string().max(1024).optional(), 'Name shown in progress logs.'),
    from: doc(z.string().min(1).max(4096).url(), 'URL of a .tgz, .tar or .zip archive to fetch.'),
    to: doc(
      z.string().min(1).max(4096),
      'Directory in the container to extract into; a relative path is relative to the home directory of `user` (as Garden resolves it).',
    ),
    cacheKey: doc(
      z.string().max(1024).optional(),
      'Cache the download on the cell under this key (revalidated with ETag/Last-Modified).',
    ),
    logSource,
    user,
    checksumAlgorithm,
    checksumValue: doc(z.string().max(256).optional(), 'Expected checksum (hex) of the downloaded archive.'),
  }),
  'Downloads an archive and extracts it into the container.',
  [
    {
      rule: 'has(self.checksumAlgorithm) == has(self.checksumValue)',
      message: 'checksumAlgorithm and checksumValue go together',
    },
  ],
);

export const UploadAction = doc(
  z.strictObject({
    artifact: doc(z.string().max(1024).optional(), 'Name shown in progress logs.'),
    from: doc(
      z.string().min(1).max(4096),
      'Path of the file in the container; a relative path is relative to the home directory of `user`.',
    ),
    to: doc(z.string().min(1).max(4096).url(), 'URL the file is POSTed to.'),
    logSource,
    user,
  }),
  'Uploads a file from the container to a URL with HTTP POST.',
);

export const ResourceLimits = doc(
  z.strictObject({
    nofile: doc(z.int().min(0).optional(), 'Maximum open file descriptors.'),
    nproc: doc(z.int().min(0).optional(), 'Deprecated and ignored, as in Diego.'),
  }),
  'Per-process limits.',
);

export const RunAction = doc(
  z.strictObject({
    path: doc(z.string().min(1).max(4096), 'Executable to run.'),
    args: doc(z.array(z.string().max(131072)).max(1024).optional(), 'Arguments.'),
    dir: doc(z.string().max(4096).optional(), 'Working directory.'),
    env: doc(
      z.array(EnvironmentVariable).max(1024).optional(),
      'Environment added to (and overriding) the container environment.',
    ),
    resourceLimits: ResourceLimits.optional(),
    user,
    logSource,
    suppressLogOutput: doc(z.boolean().optional(), "Don't forward the process's stdout/stderr to the log stream."),
    volumeMountedFiles: volumeMountedFiles.meta({
      description:
        "Files for /etc/cf-service-bindings, mounted with the LRP's or Task's own volumeMountedFiles (Diego's executor ignores them here).",
    }),
  }),
  'Runs a process in the container and waits for it to exit; a non-zero exit status fails the action.',
);

// The nested-action fields are getters so that zod can build the recursive schema lazily.
export const TimeoutAction = doc(
  z.strictObject({
    get action(): z.ZodType<Action> {
      return Action;
    },
    timeoutMs: doc(z.int().min(1), 'Fail (and cancel the inner action) after this many milliseconds.'),
    logSource,
  }),
  'Runs its action and fails it if it has not finished within timeoutMs.',
);

export const EmitProgressAction = doc(
  z.strictObject({
    get action(): z.ZodType<Action> {
      return Action;
    },
    startMessage: doc(z.string().max(1024).optional(), 'Logged when the inner action starts.'),
    successMessage: doc(z.string().max(1024).optional(), 'Logged when it succeeds.'),
    failureMessagePrefix: doc(z.string().max(1024).optional(), 'Logged, followed by the error, when it fails.'),
    logSource,
  }),
  'Runs its action and logs progress messages around it.',
);

export const TryAction = doc(
  z.strictObject({
    get action(): z.ZodType<Action> {
      return Action;
    },
    logSource,
  }),
  'Runs its action and ignores its failure.',
);

const childActions = (what: string) =>
  z
    .strictObject({
      get actions(): z.ZodArray<z.ZodType<Action>> {
        return z
          .array(Action)
          .min(1)
          .max(MAX_CHILD_ACTIONS)
          .meta({ description: 'The child actions (at least one); each has the same fields as an action.' });
      },
      logSource,
    })
    .meta({ description: what });

export const ParallelAction = childActions('Runs its actions at once; waits for all and fails if any failed.');
export const SerialAction = childActions('Runs its actions one after the other; stops at the first failure.');
export const CodependentAction = childActions(
  'Runs its actions at once; when any one exits the rest are cancelled, and it fails.',
);

export interface Action {
  download?: z.infer<typeof DownloadAction>;
  upload?: z.infer<typeof UploadAction>;
  run?: z.infer<typeof RunAction>;
  timeout?: { action: Action; timeoutMs: number; logSource?: string };
  emitProgress?: {
    action: Action;
    startMessage?: string;
    successMessage?: string;
    failureMessagePrefix?: string;
    logSource?: string;
  };
  try?: { action: Action; logSource?: string };
  parallel?: { actions: Action[]; logSource?: string };
  serial?: { actions: Action[]; logSource?: string };
  codependent?: { actions: Action[]; logSource?: string };
}

/** CEL for the typed (top) level; nested levels are checked by the same rule in zod. */
export const exactlyOneActionRule: CelRule = {
  rule: ACTION_TYPES.map((t) => `(has(self.${t}) ? 1 : 0)`).join(' + ') + ' == 1',
  message: `an action needs exactly one of: ${ACTION_TYPES.join(', ')}`,
};

export const Action: z.ZodType<Action> = doc(
  z
    .strictObject({
      download: DownloadAction.optional(),
      upload: UploadAction.optional(),
      run: RunAction.optional(),
      timeout: TimeoutAction.optional(),
      emitProgress: EmitProgressAction.optional(),
      try: TryAction.optional(),
      parallel: ParallelAction.optional(),
      serial: SerialAction.optional(),
      codependent: CodependentAction.optional(),
    })
    .superRefine((action, ctx) => {
      const set = ACTION_TYPES.filter((t) => action[t] !== undefined);
      if (set.length !== 1) {
        ctx.addIssue({
          code: 'custom',
          message:
            set.length === 0
              ? `an action needs exactly one of: ${ACTION_TYPES.join(', ')}`
              : `an action needs exactly one of: ${ACTION_TYPES.join(', ')}; found ${set.join(' and ')}`,
        });
      }
    }),
  `One step of Diego's action language: set exactly one of ${ACTION_TYPES.join(', ')}. timeout, emitProgress and try wrap one action; serial, parallel and codependent hold a list.`,
  [exactlyOneActionRule],
);

/** Depth of an action tree (1 for a leaf); stops counting past limit. Runs before zod so a huge tree can't blow the stack. */
export function actionDepth(node: unknown, limit = MAX_ACTION_DEPTH + 1): number {
  if (limit <= 0 || node === null || typeof node !== 'object') return 0;
  let deepest = 0;
  for (const value of Object.values(node as Record<string, unknown>)) {
    if (value === null || typeof value !== 'object') continue;
    const inner = value as Record<string, unknown>;
    const children = Array.isArray(inner.actions) ? inner.actions : inner.action !== undefined ? [inner.action] : [];
    for (const child of children) deepest = Math.max(deepest, actionDepth(child, limit - 1));
  }
  return 1 + deepest;
}
