// What the rep asks the executor to run for an ActualLRP or a Task (rep conversion_helpers.go
// NewRunRequestFromDesiredLRP / NewRunRequestFromTask), as pure functions: the container (rootfs, env, limits,
// ports, cached dependencies, files, certificates, proxy) and the step trees (setup, action, sidecars).
//
// * Image layers become what Diego's model downgrade makes of them (bbs models/image_layer.go): SHARED layers are
//   cached dependencies (cache key "<algorithm>:<digest>", or the URL without a digest), EXCLUSIVE layers are
//   download actions run in parallel before the setup (cache key "<algorithm>:<digest>", user
//   legacyDownloadUser, the digest as checksum).
// * An instance's environment starts with INSTANCE_GUID, INSTANCE_INDEX, CF_INSTANCE_GUID, CF_INSTANCE_INDEX,
//   then the LRP's variables (which may override them); run steps add CF_INSTANCE_IP/_PORT/... .
// * Metric tags with dynamic values are filled in per instance (INDEX, INSTANCE_GUID).
// * Volume mounts (convertVolumeMount): the shared volume's mountConfig, a JSON string, becomes the driver's options;
//   one that is not a JSON object (or a mount without a shared volume) is carried as `invalid`, and the container
//   store fails the container with it (Diego's rep cannot build the run request at all).
import type { WorkRef } from '../lib/image-credentials.ts';
import type { ImageCredentialsSource } from './image-credentials.ts';
import type { Action } from '../crds/actions.ts';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import type {
  CachedDependency,
  ContainerRequest,
  VolumeMountedFile,
  VolumeMountRequest,
} from './executor/container-store.ts';
import { taskHandle } from './bulk-sync.ts';
import { lrpProperties, taskProperties } from './container-tags.ts';

type ImageLayer = NonNullable<IDesiredLRP['spec']['imageLayers']>[number];
type VolumeMount = NonNullable<IDesiredLRP['spec']['volumeMounts']>[number];

export interface SidecarRun {
  action: Action;
  memoryMb?: number;
  diskMb?: number;
}

export interface RunRequest {
  container: ContainerRequest;
  setup?: Action;
  action: Action;
  /** LRPs only: processes run beside the action for the life of the instance. */
  sidecars: SidecarRun[];
}

export interface CellRunOptions {
  /** The cell runs Diego's container proxy (the rep's enable_container_proxy). */
  containerProxy?: boolean;
  /** Where the cell gets the registry credentials a docker:// rootFs names (spec.imageCredentialsSecret). */
  imageCredentials?: ImageCredentialsSource;
}

export function lrpRunRequest(
  d: IDesiredLRP,
  a: IActualLRP,
  instanceGuid: string,
  cell: CellRunOptions = {},
): RunRequest {
  const s = d.spec;
  const layers = convertImageLayers(s.imageLayers ?? [], s.legacyDownloadUser, s.setup);
  const sidecars = (s.sidecars ?? []).map((x) => ({ action: x.action, memoryMb: x.memoryMb, diskMb: x.diskMb }));
  const index = String(a.spec.index);
  return {
    container: {
      handle: instanceGuid,
      guid: instanceGuid,
      properties: { ...networkProperties(s.network), ...lrpProperties(a, instanceGuid) },
      rootfs: s.rootFs,
      ...credentials(
        s,
        { namespace: a.metadata.namespace ?? '', kind: 'actuallrps', name: a.metadata.name ?? '' },
        cell,
      ),
      env: [
        { name: 'INSTANCE_GUID', value: instanceGuid },
        { name: 'INSTANCE_INDEX', value: index },
        { name: 'CF_INSTANCE_GUID', value: instanceGuid },
        { name: 'CF_INSTANCE_INDEX', value: index },
        ...(s.environmentVariables ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })),
      ],
      // Sidecars' memory and disk are counted within the instance's (as Cloud Controller sizes them), so the
      // container's limits are the LRP's; admission checks that the sidecars fit in them.
      // Diego: an LRP's weight is at least 1 (rep conversion_helpers.go), as cpu shares of container_max_cpu_shares.
      limits: {
        memoryMb: s.memoryMb,
        diskMb: s.diskMb,
        pids: s.maxPids,
        cpuWeight: cpuShares(Math.max(s.cpuWeight ?? 0, 1)),
      },
      ports: [...new Set(s.ports ?? [])],
      privileged: s.privileged,
      cachedDependencies: [...layers.cachedDependencies, ...(s.cachedDependencies ?? []).map(cachedDependency)],
      volumeMountedFiles: filesOf(s.volumeMountedFiles, [
        s.setup,
        s.action,
        s.monitor,
        ...sidecars.map((x) => x.action),
      ]),
      volumeMounts: convertVolumeMounts(s.volumeMounts),
      trustedSystemCertificatesPath: s.trustedSystemCertificatesPath,
      organizationalUnits: s.certificateProperties?.organizationalUnit ?? [],
      // rep: the proxy runs only for LRPs with ports, on cells that enable it.
      enableContainerProxy: Boolean(cell.containerProxy) && (s.ports ?? []).length > 0,
      egressRules: s.egressRules ?? [],
    },
    setup: layers.setup,
    action: s.action,
    sidecars,
  };
}

export function taskRunRequest(t: ITask, cell: CellRunOptions = {}): RunRequest {
  const s = t.spec;
  const layers = convertImageLayers(s.imageLayers ?? [], s.legacyDownloadUser, undefined);
  return {
    container: {
      // The handle is unique per Task object (a guid may be reused in another namespace); the identity is the guid.
      handle: taskHandle(t),
      guid: s.taskGuid,
      properties: { ...networkProperties(s.network), ...taskProperties(t) },
      rootfs: s.rootFs,
      ...credentials(s, { namespace: t.metadata.namespace ?? '', kind: 'tasks', name: t.metadata.name ?? '' }, cell),
      env: (s.environmentVariables ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })),
      limits: { memoryMb: s.memoryMb, diskMb: s.diskMb, pids: s.maxPids, cpuWeight: cpuShares(s.cpuWeight ?? 0) },
      ports: [],
      privileged: s.privileged,
      cachedDependencies: [...layers.cachedDependencies, ...(s.cachedDependencies ?? []).map(cachedDependency)],
      volumeMountedFiles: filesOf(s.volumeMountedFiles, [s.action]),
      volumeMounts: convertVolumeMounts(s.volumeMounts),
      trustedSystemCertificatesPath: s.trustedSystemCertificatesPath,
      organizationalUnits: s.certificateProperties?.organizationalUnit ?? [],
      enableContainerProxy: false,
      egressRules: s.egressRules ?? [],
    },
    setup: layers.setup,
    action: s.action,
    sidecars: [],
  };
}

/** bbs models/image_layer.go ToCachedDependencies + ToDownloadActions (the V3 → V2 downgrade Diego's rep runs). */
export function convertImageLayers(
  layers: ImageLayer[],
  legacyDownloadUser: string | undefined,
  setup: Action | undefined,
): { cachedDependencies: CachedDependency[]; setup: Action | undefined } {
  const algorithm = (l: ImageLayer) => l.digestAlgorithm?.toLowerCase();
  const cachedDependencies = layers
    .filter((l) => l.layerType === 'SHARED')
    .map((l) => ({
      ...(l.name ? { name: l.name } : {}),
      from: l.url,
      to: l.destinationPath,
      cacheKey: l.digestValue ? `${algorithm(l) ?? ''}:${l.digestValue}` : l.url,
      ...(algorithm(l) ? { checksumAlgorithm: algorithm(l) } : {}),
      ...(l.digestValue ? { checksumValue: l.digestValue } : {}),
    }));
  const downloads: Action[] = layers
    .filter((l) => l.layerType === 'EXCLUSIVE')
    .map((l) => ({
      download: {
        ...(l.name ? { artifact: l.name } : {}),
        from: l.url,
        to: l.destinationPath,
        cacheKey: `${algorithm(l) ?? ''}:${l.digestValue ?? ''}`,
        // Validation requires legacyDownloadUser with exclusive layers; 'root' only if an old object lacks it.
        user: legacyDownloadUser || 'root',
        ...(algorithm(l) ? { checksumAlgorithm: algorithm(l) as 'sha256' } : {}),
        ...(l.digestValue ? { checksumValue: l.digestValue } : {}),
      },
    }));
  if (downloads.length === 0) return { cachedDependencies, setup };
  const parallel: Action = { parallel: { actions: downloads } };
  return { cachedDependencies, setup: setup ? { serial: { actions: [parallel, setup] } } : parallel };
}

function cachedDependency(c: NonNullable<IDesiredLRP['spec']['cachedDependencies']>[number]): CachedDependency {
  return {
    ...(c.name ? { name: c.name } : {}),
    from: c.from,
    to: c.to,
    cacheKey: c.cacheKey,
    ...(c.logSource ? { logSource: c.logSource } : {}),
    ...(c.checksumAlgorithm ? { checksumAlgorithm: c.checksumAlgorithm } : {}),
    ...(c.checksumValue ? { checksumValue: c.checksumValue } : {}),
  };
}

/** rep conversion_helpers.go convertVolumeMount: the mountConfig JSON becomes the driver's options. */
export function convertVolumeMounts(mounts: VolumeMount[] | undefined): VolumeMountRequest[] {
  return (mounts ?? []).map((m) => {
    const out: VolumeMountRequest = {
      driver: m.driver,
      volumeId: m.shared?.volumeId ?? '',
      containerDir: m.containerDir,
      mode: m.mode,
    };
    if (!m.shared) return { ...out, invalid: `the volume mount of driver '${m.driver}' names no shared volume` };
    const raw = m.shared.mountConfig ?? '';
    if (raw === '') return out;
    let config: unknown;
    try {
      config = JSON.parse(raw);
    } catch (err) {
      return { ...out, invalid: `mountConfig of volume '${out.volumeId}' is not JSON: ${(err as Error).message}` };
    }
    if (config === null) return out; // Go: null leaves the map empty
    if (typeof config !== 'object' || Array.isArray(config)) {
      return { ...out, invalid: `mountConfig of volume '${out.volumeId}' is not a JSON object` };
    }
    return { ...out, config: config as Record<string, unknown> };
  });
}

/** Diego's executor container_max_cpu_shares. */
export const MAX_CPU_SHARES = 1024;

/** storenode.go: Garden's LimitInShares = container_max_cpu_shares × weight / 100 (0: no limit set). */
export function cpuShares(weight: number): number | undefined {
  return weight > 0 ? Math.round((MAX_CPU_SHARES * weight) / 100) : undefined;
}

/** Diego's gardenProperties: network.<key> for each network property. */
function networkProperties(network: { properties?: Record<string, string> } | undefined): Record<string, string> {
  return Object.fromEntries(Object.entries(network?.properties ?? {}).map(([k, v]) => [`network.${k}`, v]));
}

/**
 * For a docker:// rootFs whose work names a Secret: how the store gets the credentials just before it pulls (asked
 * then, not now, and only if it gets that far). The work's inline imageUsername/imagePassword are never used (refused
 * at admission; an object stored before that keeps them, and pulls without them).
 */
function credentials(
  spec: { rootFs: string; imageCredentialsSecret?: string },
  work: WorkRef,
  cell: CellRunOptions,
): Pick<ContainerRequest, 'imageCredentials'> {
  const secret = spec.imageCredentialsSecret;
  if (!secret || !/^docker:\/\//i.test(spec.rootFs)) return {};
  const source = cell.imageCredentials;
  return {
    imageCredentials: (signal) =>
      source
        ? source.fetch(work, secret, signal)
        : Promise.reject(new Error(`this cell has no way to get image credentials (Secret ${secret})`)),
  };
}

/**
 * The container's volume-mounted files: the LRP's or Task's, plus those of its run actions (Diego's executor
 * ignores a run action's; we mount them with the others rather than accept and drop them).
 */
function filesOf(own: VolumeMountedFile[] | undefined, trees: (Action | undefined)[]): VolumeMountedFile[] {
  const out = [...(own ?? [])];
  const walk = (a: Action | undefined): void => {
    if (!a) return;
    if (a.run?.volumeMountedFiles) out.push(...a.run.volumeMountedFiles);
    walk(a.timeout?.action);
    walk(a.emitProgress?.action);
    walk(a.try?.action);
    for (const c of [...(a.parallel?.actions ?? []), ...(a.serial?.actions ?? []), ...(a.codependent?.actions ?? [])])
      walk(c);
  };
  trees.forEach(walk);
  return out;
}
