// The executor's container store (executor depot/containerstore: storenode.go Create/Destroy): what a container
// needs around the backend's create and destroy. Knows containers, not Tasks or LRPs.
//
// create, in Diego's order:
//  1. cached dependencies fetched through the cell's download cache (all at once, bounded by the cache's
//     downloader) and bind-mounted read-only at their `to`; "Downloading <name>..." / "Downloaded <name> (size)" /
//     "Downloading <name> failed" on the container's log; a failure ends with "failed to download cached
//     artifacts";
//  2. the cell's trusted CA certificates bind-mounted at trustedSystemCertificatesPath (+ CF_SYSTEM_CERT_PATH),
//     when the cell has some;
//     then volume services (volumes.ts, Diego's volman): each volume mount is mounted by its driver for this
//     container, one after the other, and the host path it answers bind-mounted at containerDir (read-only for
//     mode r); a failure ends with "failed to mount volume" (+ ", errors: <the driver's SafeError>");
//  3. volume-mounted files written under a per-container host directory, mounted at /etc/cf-service-bindings;
//  4. the instance identity directory (empty yet) mounted at /etc/cf-instance-credentials (+ CF_INSTANCE_CERT/KEY);
//  5. the backend container, with the container proxy's ports (61001.., and 61443 for app port 8080) besides the
//     app ports when the proxy is on;
//  6. a `preloaded+layer:<stack>?layer=<url>&layer_path=<dir>&layer_digest=<sha256>` rootfs is the stack with the
//     layer (fetched through the cache, checked against its digest) extracted at layer_path before anything runs
//     (Garden stacks it as an image layer; the result inside the container is the same);
//  7. the identity certificate issued for the container's address, and the container proxy started.
// destroy undoes all of it; adopt re-takes it for a container a previous agent left running.
import { createReadStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { mkdir, rm, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { egressFromSecurityGroups, type SecurityGroupRuleSpec } from '../backends/egress.ts';
import type { BindMount, Container, ContainerBackend, ContainerLimits, EgressRule, EnvVar } from '../backends/types.ts';
import type { DownloadCache, Lease } from './download-cache.ts';
import { redact } from './downloader.ts';
import { byteSize } from './format.ts';
import type { InstanceIdentity } from './identity.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from './log.ts';
import type { NetworkInfo, NetworkPortMapping } from './steps/run.ts';
import { VolumeDriverError, type VolumeManager } from './volumes.ts';

/** Diego's storenode.go completion reasons. */
export const DOWNLOAD_CACHED_DEPENDENCIES_FAILED = 'failed to download cached artifacts';
export const CONTAINER_CREATION_FAILED = 'failed to create container';
export const CRED_DIR_FAILED = 'failed to create credentials directory';
/** Ours: the registry credentials the work names could not be had (the controller refused, or did not answer). */
export const IMAGE_CREDENTIALS_FAILED = 'getting the image credentials failed';
export const VOLUME_MOUNTED_FILE_FAILED = 'failed to create volume mounted files';
export const VOLUME_MOUNT_FAILED = 'failed to mount volume';

/** Where volume-mounted files appear (executor initializer: /etc/cf-service-bindings). */
export const SERVICE_BINDINGS_PATH = '/etc/cf-service-bindings';
/** executor proxy_config_handler.go: proxy ports start here; 61443 is the container-to-container TLS port. */
export const START_PROXY_PORT = 61001;
export const END_PROXY_PORT = 65534;
export const C2C_TLS_PORT = 61443;
export const DEFAULT_HTTP_PORT = 8080;

/** Container property listing the cache directories it has mounted (re-taken by a restarted agent). */
const PROP_CACHE_DIRS = 'executor.cache-dirs';
const PROP_IDENTITY = 'executor.identity';
/** Container property listing the volumes mounted for it ({driver, volumeId}[]): unmounted by whoever destroys it. */
const PROP_VOLUMES = 'executor.volume-mounts';

export interface CachedDependency {
  name?: string;
  from: string;
  to: string;
  cacheKey: string;
  logSource?: string;
  checksumAlgorithm?: string;
  checksumValue?: string;
}

/** A volume service mount (Diego's executor VolumeMount, from a DesiredLRP's or Task's volumeMounts). */
export interface VolumeMountRequest {
  driver: string;
  volumeId: string;
  containerDir: string;
  mode: 'r' | 'rw';
  /** The driver's options (the parsed mountConfig), sent as Create's Opts. */
  config?: Record<string, unknown>;
  /** Why the mount cannot be made as asked (a mountConfig that is not a JSON object): create fails with it. */
  invalid?: string;
}

export interface VolumeMountedFile {
  path: string;
  content: string;
}

/** What the container part of Diego's executor RunRequest carries. */
export interface ContainerRequest {
  handle: string;
  /** Diego's container guid (an instance guid, a task guid): the identity certificate's CN. Default: handle. */
  guid?: string;
  properties: Record<string, string>;
  rootfs?: string;
  /**
   * Registry credentials for a docker:// rootfs, asked for just before the container (and its pull) is created;
   * a failure fails the create (retryable: the endpoint or the Secret may be back later, or on another cell).
   */
  imageCredentials?: (signal: AbortSignal) => Promise<{ username: string; password: string }>;
  /** The container's environment (the rep puts INSTANCE_* and the work's variables here). */
  env: EnvVar[];
  limits: ContainerLimits;
  /** Container ports to expose (the desired ports). */
  ports: number[];
  privileged?: boolean;
  cachedDependencies?: CachedDependency[];
  volumeMountedFiles?: VolumeMountedFile[];
  /** Volume services to mount (needs the store's `volumes`). */
  volumeMounts?: VolumeMountRequest[];
  trustedSystemCertificatesPath?: string;
  /** Organizational units of the identity certificate. */
  organizationalUnits?: string[];
  /** Diego: EnableContainerProxy (LRPs with ports; the cell must have the proxy on). */
  enableContainerProxy?: boolean;
  /** Diego's egress rules (security groups) of the work; the backend adds the cell's defaults. */
  egressRules?: SecurityGroupRuleSpec[];
}

/** Runs the TLS proxy beside an instance (proxy.ts). */
export interface ContainerProxyRunner {
  start(handle: string, container: Container, mappings: ProxyPortMapping[], credentialsDir: string): Promise<void>;
  /** Re-attaches to (or restarts) the proxy of an adopted container. */
  adopt(handle: string, container: Container, mappings: ProxyPortMapping[], credentialsDir: string): Promise<void>;
  stop(handle: string): Promise<void>;
}

export interface ProxyPortMapping {
  appPort: number;
  proxyPort: number;
}

export interface ContainerStoreOptions {
  backend: ContainerBackend;
  /** Host directory for the store's per-container files (volume-mounted files). */
  stateDir: string;
  cache?: DownloadCache;
  identity?: InstanceIdentity;
  /** Host directory of CA certificates the cell trusts (Diego's trusted_certs), mounted on request. */
  trustedCertsDir?: string;
  proxy?: ContainerProxyRunner;
  /** The cell's volume drivers (Diego's volman); without it, a container with volume mounts fails. */
  volumes?: VolumeManager;
  /** The cell's address as instances advertise it (CF_INSTANCE_IP, netInfo.address). */
  externalIp?: string;
  /**
   * Limits for containers whose work sets none (0 or unset means "no limit" in Diego): the cell operator's bound
   * on what one tenant's container may take from the node. Placement still counts the work's own numbers.
   */
  defaultLimits?: { memoryMb?: number; diskMb?: number; pids?: number };
  /**
   * Directories of the cell's own (state, cache, temp): never shown to tenants. A failure reason that names a
   * path under one shows `<cell>` instead. Default: the store's state dir and the OS temp dir.
   */
  hostPaths?: string[];
  logger?: ExecutorLogger;
}

/** A created (or adopted) container and what run steps export about its network (CF_INSTANCE_*). */
export interface StoredContainer {
  container: Container;
  network: NetworkInfo;
}

/** A failure of create, with Diego's completion reason (`retryable`: a task may go to another cell). */
export class ContainerCreateError extends Error {
  readonly reason: string;
  readonly retryable: boolean;
  constructor(reason: string, retryable: boolean, cause: unknown) {
    super(reason, { cause });
    this.name = 'ContainerCreateError';
    this.reason = reason;
    this.retryable = retryable;
  }
}

interface Held {
  leases: Lease[];
  volumes: MountedVolume[];
}

interface MountedVolume {
  driver: string;
  volumeId: string;
}

export class ContainerStore {
  readonly backend: ContainerBackend;
  readonly externalIp: string;
  readonly #o: ContainerStoreOptions;
  readonly #held = new Map<string, Held>();
  /** Handles whose orphan volumes a destroy is unmounting (a second destroy of the same orphan must not). */
  readonly #orphanUnmounts = new Set<string>();
  readonly #logger: ExecutorLogger;

  readonly #hostPaths: string[];

  constructor(o: ContainerStoreOptions) {
    this.#o = o;
    this.#hostPaths = o.hostPaths ?? [o.stateDir, tmpdir()];
    this.backend = o.backend;
    this.externalIp = o.externalIp ?? '127.0.0.1';
    this.#logger = o.logger ?? noopLogger;
  }

  /** Creates the container with everything around it; on failure nothing is left behind. */
  async create(req: ContainerRequest, log: LogStreamer, signal: AbortSignal): Promise<StoredContainer> {
    const held: Held = { leases: [], volumes: [] };
    this.#held.set(req.handle, held);
    try {
      const bindMounts: BindMount[] = [];
      const env = [...req.env];
      const leases = await this.#cachedDependencies(req, log, signal);
      held.leases.push(...leases.map((l) => l.lease));
      bindMounts.push(...leases.map((l) => ({ srcPath: l.lease.path, dstPath: l.to, mode: 'ro' as const })));
      if (this.#o.trustedCertsDir && req.trustedSystemCertificatesPath) {
        bindMounts.push({ srcPath: this.#o.trustedCertsDir, dstPath: req.trustedSystemCertificatesPath, mode: 'ro' });
        env.push({ name: 'CF_SYSTEM_CERT_PATH', value: req.trustedSystemCertificatesPath });
      }
      bindMounts.push(...(await this.#mountVolumes(req, held)));
      if ((req.volumeMountedFiles ?? []).length > 0) {
        try {
          bindMounts.push(await this.#volumeMountedFiles(req.handle, req.volumeMountedFiles ?? []));
        } catch (err) {
          throw new ContainerCreateError(VOLUME_MOUNTED_FILE_FAILED, true, err);
        }
      }
      if (this.#o.identity) {
        try {
          const prepared = await this.#o.identity.prepare(req.handle);
          bindMounts.push(prepared.bindMount);
          env.push(...prepared.env);
        } catch (err) {
          throw new ContainerCreateError(CRED_DIR_FAILED, true, err);
        }
      }
      const proxyMappings = req.enableContainerProxy && this.#o.proxy ? proxyPorts(req.ports) : [];
      const netIn = [...new Set([...req.ports, ...proxyMappings.map((m) => m.proxyPort)])]
        .filter((p) => p !== C2C_TLS_PORT) // reached container to container only
        .map((containerPort) => ({ containerPort }));
      const layered = parseLayeredRootfs(req.rootfs);
      let egress: EgressRule[];
      try {
        egress = egressFromSecurityGroups(req.egressRules);
      } catch (err) {
        throw new ContainerCreateError(`${CONTAINER_CREATION_FAILED}: ${(err as Error).message}`, false, err);
      }
      if (egress.length > 0 && !this.backend.enforcesEgress) {
        this.#logger.warn(
          { handle: req.handle },
          'this cell does not enforce egress rules: the container may send anything',
        );
      }
      let imageCredentials: { username: string; password: string } | undefined;
      if (req.imageCredentials) {
        try {
          imageCredentials = await req.imageCredentials(signal);
        } catch (err) {
          const why = hideHostPaths((err as Error).message, this.#hostPaths);
          throw new ContainerCreateError(
            `${CONTAINER_CREATION_FAILED}: ${IMAGE_CREDENTIALS_FAILED}: ${why}`,
            true,
            err,
          );
        }
      }
      let container: Container;
      try {
        container = await this.backend.create({
          handle: req.handle,
          properties: {
            ...req.properties,
            ...(leases.length > 0 ? { [PROP_CACHE_DIRS]: JSON.stringify(leases.map((l) => l.lease.path)) } : {}),
            ...(this.#o.identity ? { [PROP_IDENTITY]: JSON.stringify(identityOf(req)) } : {}),
            ...(held.volumes.length > 0 ? { [PROP_VOLUMES]: JSON.stringify(held.volumes) } : {}),
          },
          rootfs: layered ? `preloaded:${layered.stack}` : req.rootfs,
          env,
          limits: withDefaults(req.limits, this.#o.defaultLimits),
          netIn,
          bindMounts,
          egress,
          privileged: req.privileged,
          ...(imageCredentials ? { imageCredentials } : {}),
        });
      } catch (err) {
        const why = hideHostPaths((err as Error).message, this.#hostPaths);
        throw new ContainerCreateError(`${CONTAINER_CREATION_FAILED}: ${why}`, true, err);
      }
      if (layered) await this.#addLayer(container, layered, signal);
      const network = await this.#network(container, req.ports, proxyMappings);
      if (this.#o.identity) {
        await this.#o.identity.start(req.handle, { ...identityOf(req), ip: network.internalIp || network.externalIp });
      }
      if (proxyMappings.length > 0 && this.#o.proxy && this.#o.identity) {
        await this.#o.proxy.start(req.handle, container, proxyMappings, this.#o.identity.dirOf(req.handle));
      }
      return { container, network };
    } catch (err) {
      await this.destroy(req.handle).catch((e: unknown) =>
        this.#logger.error({ err: String(e), handle: req.handle }, 'container-store: cleanup after a failed create'),
      );
      throw err;
    }
  }

  /**
   * Takes over a container a previous agent created: its cache directories are held again, its identity
   * certificate re-issued (the rotation timer died with the agent) and its proxy re-attached.
   */
  async adopt(
    container: Container,
    req: Pick<ContainerRequest, 'ports' | 'enableContainerProxy'>,
  ): Promise<StoredContainer> {
    const held: Held = { leases: [], volumes: parseVolumes(container.properties[PROP_VOLUMES]) };
    this.#held.set(container.handle, held);
    if (held.volumes.length > 0 && !this.#o.volumes) {
      this.#logger.warn(
        { handle: container.handle },
        'adopted container has volumes mounted, but this cell has no volume drivers',
      );
    }
    for (const dir of parseList(container.properties[PROP_CACHE_DIRS])) {
      const lease = this.#o.cache?.retainDirectory(dir);
      if (lease) held.leases.push(lease);
    }
    const proxyMappings = req.enableContainerProxy && this.#o.proxy ? proxyPorts(req.ports) : [];
    const network = await this.#network(container, req.ports, proxyMappings);
    const identity = parseIdentity(container.properties[PROP_IDENTITY]);
    if (this.#o.identity && identity) {
      await this.#o.identity.start(container.handle, { ...identity, ip: network.internalIp || network.externalIp });
      if (proxyMappings.length > 0 && this.#o.proxy) {
        await this.#o.proxy.adopt(container.handle, container, proxyMappings, this.#o.identity.dirOf(container.handle));
      }
    }
    return { container, network };
  }

  list(): Promise<string[]> {
    return this.backend.list();
  }

  lookup(handle: string): Promise<Container | undefined> {
    return this.backend.lookup(handle);
  }

  /** Destroys the container and releases what it held; unknown handles are fine. */
  async destroy(handle: string): Promise<void> {
    const held = this.#held.get(handle);
    this.#held.delete(handle);
    // A container this store does not hold (an orphan of a killed agent) may have volumes mounted: its property says.
    const volumes = held ? held.volumes : await this.#orphanVolumes(handle);
    // Always: an orphan destroyed by bulk sync after an agent was killed is not held, yet may have a proxy running.
    await this.#o.proxy?.stop(handle).catch(() => undefined);
    try {
      await this.backend.destroy(handle);
    } finally {
      await this.#unmountVolumes(handle, volumes);
      for (const lease of held?.leases ?? []) await lease.release();
      await this.#o.identity?.remove(handle);
      await rm(this.#bindingsDir(handle), { recursive: true, force: true });
    }
  }

  /** Lets go of everything without destroying (an agent handing its containers over to its successor). */
  detachAll(): void {
    this.#held.clear();
    this.#o.identity?.stopAll();
  }

  /**
   * Mounts the request's volumes one after the other (storenode.go mountVolumes), each recorded in `held` once
   * mounted (so a failure unmounts those before it); returns their bind mounts.
   */
  async #mountVolumes(req: ContainerRequest, held: Held): Promise<BindMount[]> {
    const mounts = req.volumeMounts ?? [];
    if (mounts.length === 0) return [];
    const invalid = mounts.find((m) => m.invalid !== undefined);
    if (invalid) {
      // Diego's rep cannot build the run request (convertVolumeMount); the spec is wrong wherever it runs.
      throw new ContainerCreateError(`${VOLUME_MOUNT_FAILED}, errors: ${invalid.invalid}`, false, undefined);
    }
    const volumes = this.#o.volumes;
    const out: BindMount[] = [];
    for (const m of mounts) {
      try {
        if (!volumes) throw new Error('this cell has no volume drivers (--volume-driver-paths)');
        const hostPath = await volumes.mount(m.driver, m.volumeId, req.handle, m.config ?? {});
        held.volumes.push({ driver: m.driver, volumeId: m.volumeId });
        out.push({ srcPath: hostPath, dstPath: m.containerDir, mode: m.mode === 'r' ? 'ro' : 'rw' });
      } catch (err) {
        this.#logger.error(
          { err: String(err), handle: req.handle, driver: m.driver, volumeId: m.volumeId },
          'failed-to-mount-volume',
        );
        const safe = err instanceof VolumeDriverError ? err.safeDescription : undefined;
        throw new ContainerCreateError(
          safe !== undefined ? `${VOLUME_MOUNT_FAILED}, errors: ${safe}` : VOLUME_MOUNT_FAILED,
          true,
          err,
        );
      }
    }
    return out;
  }

  /** The volumes an orphan container's property lists (read before it is destroyed). */
  async #orphanVolumes(handle: string): Promise<MountedVolume[]> {
    if (!this.#o.volumes || this.#orphanUnmounts.has(handle)) return [];
    this.#orphanUnmounts.add(handle);
    const container = await this.backend.lookup(handle).catch(() => undefined);
    const volumes = parseVolumes(container?.properties[PROP_VOLUMES]);
    if (volumes.length === 0) this.#orphanUnmounts.delete(handle);
    return volumes;
  }

  /** Unmounts each volume once (Diego's umountVolumeMounts: failures are logged). */
  async #unmountVolumes(handle: string, volumes: MountedVolume[]): Promise<void> {
    try {
      for (const v of volumes) {
        try {
          if (!this.#o.volumes) throw new Error('this cell has no volume drivers');
          await this.#o.volumes.unmount(v.driver, v.volumeId, handle);
        } catch (err) {
          this.#logger.error(
            { err: String(err), handle, driver: v.driver, volumeId: v.volumeId },
            'failed-to-unmount-volume',
          );
        }
      }
    } finally {
      this.#orphanUnmounts.delete(handle);
    }
  }

  /** Extracts a preloaded+layer rootfs's layer into the container (as root, at layer_path). */
  async #addLayer(container: Container, layer: LayeredRootfs, signal: AbortSignal): Promise<void> {
    const cache = this.#o.cache;
    try {
      if (!cache) throw new Error('this cell has no download cache for rootfs layers');
      const lease = await cache.fetchFile(
        layer.url,
        `sha256:${layer.digest}`,
        { algorithm: 'sha256', value: layer.digest },
        signal,
      );
      try {
        await container.streamIn(layer.path, createReadStream(lease.path), { user: 'root' });
      } finally {
        await lease.release();
      }
    } catch (err) {
      const why = hideHostPaths((err as Error).message, this.#hostPaths);
      throw new ContainerCreateError(`${CONTAINER_CREATION_FAILED}: adding the rootfs layer failed: ${why}`, true, err);
    }
  }

  async #cachedDependencies(
    req: ContainerRequest,
    log: LogStreamer,
    signal: AbortSignal,
  ): Promise<{ lease: Lease; to: string }[]> {
    const deps = req.cachedDependencies ?? [];
    if (deps.length === 0) return [];
    const cache = this.#o.cache;
    if (!cache)
      throw new ContainerCreateError(DOWNLOAD_CACHED_DEPENDENCIES_FAILED, true, new Error('no download cache'));
    // All at once (each bounded by the downloader); the first failure cancels the others (dependencymanager.go).
    const cancel = new AbortController();
    const both = AbortSignal.any([signal, cancel.signal]);
    const results = await Promise.allSettled(
      deps.map(async (dep) => {
        const out = log.withSource(dep.logSource);
        if (dep.name) out.stdout(`Downloading ${dep.name}...`);
        try {
          const lease = await cache.fetchDirectory(
            dep.from,
            dep.cacheKey,
            { algorithm: dep.checksumAlgorithm, value: dep.checksumValue },
            both,
          );
          if (dep.name)
            out.stdout(
              lease.downloaded ? `Downloaded ${dep.name} (${byteSize(lease.downloaded)})` : `Downloaded ${dep.name}`,
            );
          return { lease, to: dep.to };
        } catch (err) {
          cancel.abort();
          this.#logger.error(
            { err: String(err), from: redact(dep.from), cacheKey: dep.cacheKey },
            'failed-fetching-cache-dependency',
          );
          if (dep.name) out.stdout(`Downloading ${dep.name} failed`);
          throw err;
        }
      }),
    );
    const got = results.flatMap((r) => (r.status === 'fulfilled' ? [r.value] : []));
    const failed = results.find((r) => r.status === 'rejected');
    if (failed) {
      for (const g of got) await g.lease.release();
      throw new ContainerCreateError(DOWNLOAD_CACHED_DEPENDENCIES_FAILED, true, failed.reason);
    }
    return got;
  }

  #bindingsDir(handle: string): string {
    return path.join(this.#o.stateDir, 'service-bindings', handle);
  }

  /** Writes the files (path: <service>/<file>, relative to /etc/cf-service-bindings) and mounts their directory. */
  async #volumeMountedFiles(handle: string, files: VolumeMountedFile[]): Promise<BindMount> {
    const root = this.#bindingsDir(handle);
    await mkdir(root, { recursive: true, mode: 0o755 });
    for (const f of files) {
      const rel = safeRelativePath(f.path);
      const dst = path.join(root, rel);
      await mkdir(path.dirname(dst), { recursive: true });
      await writeFile(dst, f.content, { mode: 0o644 });
    }
    return { srcPath: root, dstPath: SERVICE_BINDINGS_PATH, mode: 'ro' };
  }

  async #network(container: Container, ports: number[], proxy: ProxyPortMapping[]): Promise<NetworkInfo> {
    const info = await container.info();
    const hostPortOf = (p: number) => info.ports.find((m) => m.containerPort === p)?.hostPort ?? 0;
    const mappings: NetworkPortMapping[] = [];
    for (const port of [...new Set(ports)]) {
      const proxies = proxy.filter((m) => m.appPort === port);
      if (proxies.length === 0) mappings.push({ containerPort: port, hostPort: hostPortOf(port) });
      for (const m of proxies) {
        mappings.push({
          containerPort: port,
          hostPort: hostPortOf(port),
          containerTlsProxyPort: m.proxyPort,
          hostTlsProxyPort: hostPortOf(m.proxyPort),
        });
      }
    }
    return { externalIp: this.externalIp, internalIp: info.ip ?? this.externalIp, ports: mappings };
  }
}

/** `message` with every path under one of the cell's directories shown as `<cell>/…` (tenants see reasons). */
export function hideHostPaths(message: string, roots: string[]): string {
  let out = message;
  for (const root of roots.filter((r) => r.length > 1).sort((a, b) => b.length - a.length)) {
    out = out.split(root.replace(/\/+$/, '')).join('<cell>');
  }
  return out;
}

/** The request's limits, each unset or 0 one replaced by the cell's default. */
export function withDefaults(
  limits: ContainerLimits,
  defaults: ContainerStoreOptions['defaultLimits'],
): ContainerLimits {
  const pick = (own: number | undefined, fallback: number | undefined) => (own ? own : fallback || own);
  return {
    ...limits,
    memoryMb: pick(limits.memoryMb, defaults?.memoryMb),
    diskMb: pick(limits.diskMb, defaults?.diskMb),
    pids: pick(limits.pids, defaults?.pids),
  };
}

/**
 * Diego's ProxyPorts: app port i gets proxy port 61001 + i (skipping app ports and 61443); app port 8080 also
 * gets 61443, the container-to-container TLS port.
 */
export function proxyPorts(appPorts: number[]): ProxyPortMapping[] {
  const ports = [...new Set(appPorts)];
  if (ports.includes(C2C_TLS_PORT)) throw new Error(`port ${C2C_TLS_PORT} is reserved for container networking`);
  const taken = new Set(ports);
  const out: ProxyPortMapping[] = [];
  let next = START_PROXY_PORT;
  for (const appPort of ports) {
    while (taken.has(next) || next === C2C_TLS_PORT) next++;
    if (next >= END_PROXY_PORT) break;
    out.push({ appPort, proxyPort: next++ });
    if (appPort === DEFAULT_HTTP_PORT) out.push({ appPort, proxyPort: C2C_TLS_PORT });
  }
  return out;
}

/** A volume-mounted file's path as a relative path that cannot leave its directory ('/svc/f' and 'svc/f'). */
export function safeRelativePath(p: string): string {
  const rel = path.posix.normalize(p).replace(/^\/+/, '');
  if (rel === '' || rel === '.' || rel.split('/').includes('..') || path.posix.basename(rel) === '') {
    throw new Error(`volume-mounted file path '${p}' must name a file under ${SERVICE_BINDINGS_PATH}`);
  }
  return rel;
}

interface LayeredRootfs {
  stack: string;
  url: string;
  path: string;
  digest: string;
}

/** rep ConvertPreloadedRootFS's URL: preloaded+layer:<stack>?layer=<url>&layer_path=<path>&layer_digest=<sha256>. */
export function parseLayeredRootfs(rootfs: string | undefined): LayeredRootfs | undefined {
  const m = /^preloaded\+layer:([^?#]+)\?(.*)$/i.exec(rootfs ?? '');
  if (!m) return undefined;
  const q = new URLSearchParams(m[2]);
  const url = q.get('layer');
  const digest = q.get('layer_digest');
  if (!url || !digest)
    throw new ContainerCreateError(
      `${CONTAINER_CREATION_FAILED}: the rootfs ${rootfs ?? ''} names no layer or digest`,
      false,
      undefined,
    );
  return { stack: m[1]!, url, path: q.get('layer_path') || '/', digest };
}

function identityOf(req: ContainerRequest): { guid: string; organizationalUnits: string[] } {
  return { guid: req.guid ?? req.handle, organizationalUnits: req.organizationalUnits ?? [] };
}

function parseIdentity(json: string | undefined): { guid: string; organizationalUnits: string[] } | undefined {
  try {
    const v = JSON.parse(json ?? '') as { guid?: unknown; organizationalUnits?: unknown };
    if (typeof v.guid !== 'string') return undefined;
    return { guid: v.guid, organizationalUnits: parseList(JSON.stringify(v.organizationalUnits ?? [])) };
  } catch {
    return undefined;
  }
}

function parseVolumes(json: string | undefined): MountedVolume[] {
  try {
    const v = JSON.parse(json ?? '[]') as unknown;
    if (!Array.isArray(v)) return [];
    return v.flatMap((x: { driver?: unknown; volumeId?: unknown } | null) =>
      x && typeof x.driver === 'string' && typeof x.volumeId === 'string'
        ? [{ driver: x.driver, volumeId: x.volumeId }]
        : [],
    );
  } catch {
    return [];
  }
}

function parseList(json: string | undefined): string[] {
  try {
    const v = JSON.parse(json ?? '[]') as unknown;
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
  } catch {
    return [];
  }
}
