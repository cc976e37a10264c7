// The runc backend: each container is an OCI bundle run by runc (Garden's runc backend, trimmed). What it does
// with each part of the Garden-like interface:
//
// * Rootfs: 'preloaded:<stack>' for the stacks in the `stacks` option (default: busybox only), each one a root
//   filesystem built by rootfs.ts (busybox, debian); busybox when no rootfs is given. Each bundle mounts an
//   overlay (lower = the shared rootfs, upper/work in the bundle) at <bundle>/rootfs; where overlayfs cannot be
//   mounted (e.g. the state dir is itself on overlayfs) the rootfs is copied with `cp -a` instead.
// * Container: `runc run -d` of a long-lived init shell (oci.ts) with the id <idPrefix><handle>, in new pid,
//   ipc, uts and mount namespaces, under the cgroup /<id> with the memory, pids and cpu-shares limits. runc's
//   own state lives in runcRoot; with the bundle's diego.json (properties, env, ports) it is all a restarted
//   agent needs to re-adopt its containers (list/lookup).
// * Processes: `runc exec --process <json>` with args, env (container env + process env, like the process
//   backend), cwd, uid/gid from the rootfs's /etc/passwd, and RLIMIT_NOFILE. Each exec runs detached from the
//   agent under a host shell that records runc's exit status (the process's, 128+n for signal n), with its
//   output in files that are tailed as lines (detached.ts), so processes outlive an agent restart and a new
//   agent re-attaches to them (processes()/attach()). `--pid-file` gives the host pid; the process leads its
//   own session, so signals go to its process group.
// * Network: with `network` options, each container gets its own network namespace wired by CNI (cni.ts:
//   bridge + host-local + portmap): info().ip is its address, netIn maps a host port (free one unless given)
//   to the container port with portmap, and PORT is left alone (apps listen on the container port). Without
//   them containers share the host network like the process backend (netIn picks a free host port, PORT is
//   rewritten to it, info() has no ip).
// * Egress: with `network`, spec.egress plus the network's defaultEgress is enforced by host iptables rules
//   installed before `runc run` and removed by destroy (firewall.ts); on the host network nothing is enforced
//   (enforcesEgress false).
// * streamIn/streamOut: GNU tar on the host, directly on <bundle>/rootfs. Paths are resolved inside the
//   rootfs and checked (after resolving symlinks) not to escape it; streamIn with a non-root user runs tar as
//   that uid/gid (setpriv), so the files belong to the user and container symlinks cannot reach host files.
// * Limits: memory, pids, cpu weight (as cpu shares) enforced through cgroups. diskMb is measured: every
//   diskCheckIntervalMs the writable layer (overlay upper dir) is sized with du; over the limit, the
//   container's processes are killed and info() carries a 'disk quota exceeded: …' event.
// * destroy: `runc kill KILL` + `runc delete --force` (the pid namespace dies with its init, and so does every
//   exec'd process; runc removes the cgroups), CNI DEL + netns delete, unmount the overlay, remove the bundle.
import { createTar, extractTar } from './tar.ts';
import { spawn, execFile } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { chown, lstat, mkdir, readFile, realpath, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { CniNetwork, type CniOptions, type CniResult } from './cni.ts';
import {
  command,
  ContainerTable,
  DetachedSet,
  handlesOf,
  initialPorts,
  killGroup,
  mapPort,
  networkInfo,
  removeTree,
  rewritePort,
} from './common.ts';
import { runcMessage, startDetached } from './detached.ts';
import { buildOciConfig, capabilities, type OciProcess } from './oci.ts';
import { DEFAULT_PATH, delay, exitCode, freePort, resolveInRoot } from './process.ts';
import { resolveRootfs, type StackMap } from './rootfs.ts';
import { cgroupUsage, dirBytes } from './usage.ts';
import {
  type Container,
  type ContainerBackend,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerUsage,
  type EnvVar,
  type PortMapping,
  type ProcessHandle,
  type ProcessIO,
  type ProcessRecord,
  type ProcessSpec,
} from './types.ts';

export interface RuncBackendOptions {
  /** Holds bundles/<handle> (and, by default, runc's state); created if missing. */
  stateDir: string;
  /** runc --root (its state directory). Default: <stateDir>/runc. */
  runcRoot?: string;
  /** Prefix of our runc container ids; containers without it are not ours. Default 'diego-'. */
  idPrefix?: string;
  /** Where rootfs.ts caches built root filesystems. */
  rootfsCacheDir?: string;
  /** The stacks offered as 'preloaded:<stack>' and the root filesystem of each (rootfs.ts). Default: busybox. */
  stacks?: StackMap;
  /** The runc binary. Default 'runc' from $PATH. */
  runc?: string;
  /** Use `cp -a` instead of overlayfs for container root filesystems. */
  copyRootfs?: boolean;
  /** After a process exits, how long wait() lets its output drain (see ProcessBackendOptions). */
  outputDrainMs?: number;
  allocatePort?: () => Promise<number>;
  /** Gives each container its own network namespace wired with CNI (cni.ts); default: the host network. */
  network?: CniOptions;
  /** How often each container's writable layer is measured against its diskMb (0: never). Default 10 s. */
  diskCheckIntervalMs?: number;
}

/** What a bundle remembers about its container, for re-adoption by a restarted agent (diego.json). */
interface BundleMeta {
  handle: string;
  properties: Record<string, string>;
  env: EnvVar[];
  ports: PortMapping[];
  storage: 'overlay' | 'copy';
  /** limits.diskMb: measured against the writable layer (enforceDisk). */
  diskMb?: number;
  /** The CNI bridge result when the container has its own network namespace. */
  network?: CniResult;
}

interface RuncState {
  id: string;
  pid: number;
  status: string;
  bundle: string;
}

export class RuncBackend implements ContainerBackend {
  readonly stateDir: string;
  readonly runcRoot: string;
  readonly idPrefix: string;
  readonly network: CniNetwork | undefined;
  /** Egress rules are enforced (host iptables, firewall.ts) when containers have their own network namespace. */
  readonly enforcesEgress: boolean;
  readonly #opts: RuncBackendOptions;
  readonly #containers = new ContainerTable<RuncContainer>();
  readonly #allocatePort: () => Promise<number>;

  constructor(opts: RuncBackendOptions) {
    this.#opts = opts;
    this.stateDir = path.resolve(opts.stateDir);
    this.runcRoot = path.resolve(opts.runcRoot ?? path.join(this.stateDir, 'runc'));
    this.idPrefix = opts.idPrefix ?? 'diego-';
    this.network = opts.network ? new CniNetwork(opts.network) : undefined;
    this.enforcesEgress = this.network !== undefined;
    this.#allocatePort = opts.allocatePort ?? freePort;
    const every = opts.diskCheckIntervalMs ?? 10_000;
    if (every > 0) {
      this.#diskTimer = setInterval(() => void this.enforceDisk(), every);
      this.#diskTimer.unref();
    }
  }

  readonly #diskTimer?: NodeJS.Timeout;

  /** Measures every known container's writable layer against its diskMb (see RuncContainer.enforceDisk). */
  async enforceDisk(): Promise<void> {
    for (const c of this.#containers.values()) await c.enforceDisk().catch(() => {});
  }

  containerId(handle: string): string {
    return `${this.idPrefix}${handle}`;
  }

  bundleDir(handle: string): string {
    return path.join(this.stateDir, 'bundles', handle);
  }

  /** Runs runc with our --root; resolves with stdout, rejects with runc's error message. */
  runc(args: string[]): Promise<string> {
    return runcCommand(this.#opts.runc ?? 'runc', ['--root', this.runcRoot, ...args]);
  }

  create(spec: ContainerSpec): Promise<Container> {
    return this.#containers.create(spec.handle, () => this.#create(spec));
  }

  async #create(spec: ContainerSpec): Promise<RuncContainer> {
    const id = this.containerId(spec.handle);
    if (await this.#state(id)) throw new Error(`handle already exists: ${spec.handle}`);
    const lower = await resolveRootfs(spec.rootfs, this.#opts.rootfsCacheDir, this.#opts.stacks);
    const bundle = this.bundleDir(spec.handle);
    await mkdir(path.dirname(bundle), { recursive: true });
    await mkdir(this.runcRoot, { recursive: true });
    try {
      await mkdir(bundle); // not recursive: fails when a bundle (e.g. of a previous agent) is there
    } catch (err) {
      throw new Error(`creating bundle ${bundle}: ${(err as Error).message}`, { cause: err });
    }
    try {
      const rootfs = path.join(bundle, 'rootfs');
      const storage = await prepareRootfs(lower, bundle, this.#opts.copyRootfs ?? false);
      const ports = await initialPorts(spec.netIn, this.#allocatePort);
      const meta: BundleMeta = {
        handle: spec.handle,
        properties: { ...spec.properties },
        env: [...(spec.env ?? [])],
        ports,
        storage,
        ...(spec.limits?.diskMb ? { diskMb: spec.limits.diskMb } : {}),
      };
      // With its own network namespace the container's egress rules are on the host before runc starts it.
      if (this.network) meta.network = await this.network.setUp(id, ports, { handle: spec.handle, rules: spec.egress });
      const config = buildOciConfig({
        rootfs,
        hostname: spec.handle,
        cgroupsPath: `/${id}`,
        env: [`PATH=${DEFAULT_PATH}`],
        limits: spec.limits,
        bindMounts: spec.bindMounts,
        privileged: spec.privileged,
        annotations: { 'org.cloudfoundry.diego.handle': spec.handle },
        netnsPath: this.network?.netnsPath(id),
      });
      for (const m of spec.bindMounts ?? []) {
        await mkdir(resolveInRoot(rootfs, m.dstPath), { recursive: true });
      }
      await writeFile(path.join(bundle, 'config.json'), JSON.stringify(config, null, 2));
      await writeFile(path.join(bundle, 'diego.json'), JSON.stringify(meta, null, 2));
      await this.#runDetached(bundle, id);
      const container = new RuncContainer(this, meta, bundle, this.#opts);
      this.#containers.set(spec.handle, container);
      return container;
    } catch (err) {
      await this.#teardown(spec.handle).catch(() => {});
      throw err;
    }
  }

  lookup(handle: string): Promise<Container | undefined> {
    // Re-adopt a container of a previous agent: runc still knows it and its bundle has our metadata.
    return this.#containers.lookup(handle, async () => {
      const state = await this.#state(this.containerId(handle));
      if (!state) return undefined;
      const meta = await readMeta(state.bundle);
      if (meta?.handle !== handle) return undefined;
      return new RuncContainer(this, meta, state.bundle, this.#opts);
    });
  }

  async list(): Promise<string[]> {
    let out: string;
    try {
      out = await this.runc(['list', '--format', 'json']);
    } catch (err) {
      // runc has no state directory until the first container is created.
      if (/no such file or directory/i.test((err as Error).message)) return [];
      throw err;
    }
    const states = (JSON.parse(out.trim() || 'null') as RuncState[] | null) ?? [];
    return handlesOf(
      states.map((s) => s.id),
      this.idPrefix,
    );
  }

  destroy(handle: string): Promise<void> {
    return this.#containers.destroy(handle, () => this.#teardown(handle));
  }

  async #teardown(handle: string): Promise<void> {
    const id = this.containerId(handle);
    const container = this.#containers.get(handle);
    this.#containers.delete(handle);
    const state = await this.#state(id);
    const bundle = state?.bundle ?? container?.bundle ?? this.bundleDir(handle);
    if (state) {
      await this.runc(['kill', id, 'KILL']).catch(() => {});
      await this.runc(['delete', '--force', id]).catch(async (err: unknown) => {
        if (await this.#state(id)) throw err;
      });
    }
    if (container) await container.waitAll(2000);
    if (this.network) {
      const meta = container?.meta ?? (await readMeta(bundle));
      if (meta?.network || existsSync(this.network.netnsPath(id))) {
        await this.network.tearDown(id, meta?.ports ?? [], meta?.network);
      } else await this.network.removeEgress(id);
    }
    const rootfs = path.join(bundle, 'rootfs');
    if (await isMountPoint(rootfs)) await unmount(rootfs);
    await removeTree(bundle);
  }

  /**
   * `runc run --detach`. The container's init inherits runc's stdio, so runc gets /dev/null (a pipe would stay
   * open as long as the container lives) and its errors are read from a JSON log file instead.
   */
  async #runDetached(bundle: string, id: string): Promise<void> {
    const log = path.join(bundle, 'runc-run.log');
    const child = spawn(
      this.#opts.runc ?? 'runc',
      ['--root', this.runcRoot, '--log', log, '--log-format', 'json', 'run', '--detach', '--bundle', bundle, id],
      { stdio: 'ignore' },
    );
    const code = await exitCode(child);
    if (code === 0) return;
    const text = await readFile(log, 'utf8').catch(() => '');
    const messages = text
      .split('\n')
      .filter((l) => l.trim() !== '')
      .map((l) => {
        try {
          return (JSON.parse(l) as { msg?: string }).msg ?? l;
        } catch {
          return l;
        }
      });
    throw new Error(`runc run ${id} failed (exit ${code}): ${messages.join('; ')}`);
  }

  async #state(id: string): Promise<RuncState | undefined> {
    try {
      return JSON.parse(await this.runc(['state', id])) as RuncState;
    } catch {
      return undefined;
    }
  }
}

class RuncContainer implements Container {
  readonly handle: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly bundle: string;
  readonly rootfs: string;
  readonly #backend: RuncBackend;
  readonly #meta: BundleMeta;
  readonly #processes: DetachedSet;
  #diskExceeded?: string;
  readonly #allocatePort: () => Promise<number>;
  readonly #runc: string;
  #execCounter = 0;

  constructor(backend: RuncBackend, meta: BundleMeta, bundle: string, opts: RuncBackendOptions) {
    this.#backend = backend;
    this.#meta = meta;
    this.handle = meta.handle;
    this.properties = { ...meta.properties };
    this.bundle = bundle;
    this.rootfs = path.join(bundle, 'rootfs');
    this.#processes = new DetachedSet(this.procsDir, opts.outputDrainMs ?? 200);
    this.#allocatePort = opts.allocatePort ?? freePort;
    this.#runc = opts.runc ?? 'runc';
  }

  get id(): string {
    return this.#backend.containerId(this.handle);
  }

  get meta(): BundleMeta {
    return this.#meta;
  }

  get netnsPath(): string | undefined {
    return this.#meta.network ? this.#backend.network?.netnsPath(this.id) : undefined;
  }

  async run(proc: ProcessSpec, io: ProcessIO): Promise<ProcessHandle> {
    const env = new Map<string, string>([['PATH', DEFAULT_PATH]]);
    for (const v of [...this.#meta.env, ...(proc.env ?? [])]) env.set(v.name, v.value);
    // On the host network a process must listen on the host port; in its own namespace on the container port.
    if (!this.#meta.network) rewritePort(env, this.#meta.ports);
    const user = await lookupUser(this.rootfs, proc.user);
    if (!env.has('HOME')) env.set('HOME', user.home);
    // Garden's default working directory is the user's home, and a relative dir is relative to it (a home the
    // rootfs lacks falls back to /).
    let cwd = path.posix.resolve(user.home, proc.dir ?? '.');
    if (!proc.dir && !(await isDirectory(await this.#hostPath(cwd).catch(() => '')))) cwd = '/';
    // An absolute symlink on the way means nothing on the host: then runc's own chdir decides.
    const hostCwd = await this.#hostPath(cwd).catch(() => undefined);
    if (hostCwd !== undefined && !(await isDirectory(hostCwd))) {
      throw new Error(`working directory ${cwd} does not exist`);
    }

    const nofile = proc.limits?.nofile ?? 1024;
    const spec: OciProcess = {
      terminal: false,
      user: { uid: user.uid, gid: user.gid },
      args: [proc.path, ...(proc.args ?? [])],
      env: [...env].map(([k, v]) => `${k}=${v}`),
      cwd,
      capabilities: capabilities(false),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: nofile, soft: nofile }],
      noNewPrivileges: true,
    };
    const n = ++this.#execCounter;
    const id = `${Date.now().toString(36)}-${process.pid}-${n}`;
    await mkdir(this.procsDir, { recursive: true });
    const handle = await startDetached(
      this.#processes.options,
      id,
      spec,
      ({ spec: specFile, pidFile }) => [
        this.#runc,
        '--root',
        this.#backend.runcRoot,
        'exec',
        '--process',
        specFile,
        '--pid-file',
        pidFile,
        this.id,
      ],
      io,
      proc.tag,
    );
    return this.#processes.track(handle);
  }

  /** Where the detached processes of this container keep their files (detached.ts). */
  get procsDir(): string {
    return path.join(this.bundle, 'procs');
  }

  processes(): Promise<ProcessRecord[]> {
    return this.#processes.list();
  }

  attach(id: string, io: ProcessIO): Promise<ProcessHandle> {
    return this.#processes.attach(id, io);
  }

  /** Bytes in the writable layer: the overlay's upper dir, or the whole copied rootfs. */
  diskUsage(): Promise<number> {
    return dirBytes(path.join(this.bundle, this.#meta.storage === 'copy' ? 'rootfs' : 'upper'));
  }

  /**
   * Measures the writable layer against limits.diskMb; over it, the container's processes are killed and
   * info() reports the 'disk quota exceeded' event (the rep puts it in the crash reason).
   */
  async enforceDisk(): Promise<void> {
    const limitMb = this.#meta.diskMb;
    if (!limitMb || this.#diskExceeded) return;
    const used = await this.diskUsage();
    if (used <= limitMb * 1024 * 1024) return;
    this.#diskExceeded = `disk quota exceeded: ${Math.ceil(used / 1024 / 1024)} MB written, the limit is ${limitMb} MB`;
    for (const p of await this.processes()) {
      if (p.exitStatus === undefined) killGroup(p.pid);
    }
  }

  async streamIn(dst: string, tar: Readable | Buffer, opts?: { user?: string }): Promise<void> {
    const user = opts?.user ? await lookupUser(this.rootfs, opts.user) : undefined;
    // A relative path is in the user's home (root's without a user), as Garden resolves it.
    const dir = await this.#makeDirs(path.posix.resolve(user?.home ?? '/root', dst), user);
    const runAs =
      user && user.uid !== 0
        ? ['setpriv', ['--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', 'tar']]
        : ['tar', []];
    const [file, prefix] = runAs as [string, string[]];
    // cwd, not -C: the chdir happens as root, so the user needs no access to the directories above the rootfs.
    await extractTar(file, [...prefix, '-x', '-f', '-', '--no-same-owner'], dir, tar, dst);
  }

  async streamOut(src: string, opts?: { user?: string }): Promise<Readable> {
    const home = opts?.user ? (await lookupUser(this.rootfs, opts.user)).home : '/root';
    const p = path.posix.resolve(home, src); // relative: in the user's home, as Garden does
    const parent = await this.#hostPath(path.posix.dirname(p));
    const target = path.join(parent, path.posix.basename(p));
    await lstat(target); // rejects with ENOENT like Garden does for a missing path
    return createTar('tar', ['-c', '-f', '-', '-C', parent, path.basename(target)], src);
  }

  info(): Promise<ContainerInfo> {
    return networkInfo(this.id, this.#meta, this.#diskExceeded);
  }

  /** CPU and memory from the container's cgroup; disk: what it wrote (the overlay upper dir, or its copy). */
  async usage(): Promise<ContainerUsage> {
    const { cpuNanos, memoryBytes } = await cgroupUsage(this.id);
    return { cpuNanos, memoryBytes, diskBytes: await this.diskUsage() };
  }

  netIn(containerPort: number, hostPort?: number): Promise<PortMapping> {
    const target = { id: this.id, meta: this.#meta, network: this.#backend.network, allocatePort: this.#allocatePort };
    return mapPort(target, containerPort, hostPort, () =>
      writeFile(path.join(this.bundle, 'diego.json'), JSON.stringify(this.#meta, null, 2)),
    );
  }

  /** Waits (at most `ms`) for the runc exec processes we started to exit. */
  waitAll(ms: number): Promise<void> {
    return this.#processes.waitAll(ms);
  }

  /** The host path of a container path, after checking that symlinks do not lead out of the rootfs. */
  async #hostPath(p: string): Promise<string> {
    const root = await realpath(this.rootfs);
    let resolved: string;
    try {
      resolved = await realpath(resolveInRoot(this.rootfs, p));
    } catch {
      return resolveInRoot(this.rootfs, p); // missing: callers report that
    }
    if (resolved !== root && !resolved.startsWith(root + path.sep)) {
      throw new Error(`path ${p} leads outside the container`);
    }
    return resolved;
  }

  /** mkdir -p inside the rootfs, directory by directory, so that no symlink can lead it out. */
  async #makeDirs(p: string, user: PasswdEntry | undefined): Promise<string> {
    let current = '/';
    let host = await this.#hostPath('/');
    for (const part of p.split('/').filter((s) => s !== '')) {
      current = path.posix.join(current, part);
      const next = await this.#hostPath(current);
      if (!(await isDirectory(next))) {
        await mkdir(next);
        if (user) await chown(next, user.uid, user.gid);
      }
      host = next;
    }
    return host;
  }
}

interface PasswdEntry {
  uid: number;
  gid: number;
  home: string;
}

/** Resolves 'name', 'uid' or 'uid:gid' with the container's /etc/passwd; default root. */
export async function lookupUser(rootfs: string, user: string | undefined): Promise<PasswdEntry> {
  const name = user && user !== '' ? user : 'root';
  const numeric = /^(\d+)(?::(\d+))?$/.exec(name);
  let passwd = '';
  try {
    passwd = await readFile(path.join(rootfs, 'etc', 'passwd'), 'utf8');
  } catch {
    // no /etc/passwd: only numeric users and root work
  }
  for (const line of passwd.split('\n')) {
    const f = line.split(':');
    if (f.length < 7) continue;
    if (f[0] === name || (numeric && f[2] === numeric[1] && numeric[2] === undefined)) {
      return { uid: Number(f[2]), gid: Number(f[3]), home: f[5] || '/' };
    }
  }
  if (numeric) return { uid: Number(numeric[1]), gid: Number(numeric[2] ?? numeric[1]), home: '/' };
  if (name === 'root') return { uid: 0, gid: 0, home: '/root' };
  throw new Error(`user ${name} not found in the container's /etc/passwd`);
}

/** The host path of a cgroup file of container `id`: cgroup v1 (<controller>/<id>/<file>) or v2 (<id>/<file>). */
export function cgroupFile(id: string, controller: string, v1File: string, v2File: string): string | undefined {
  for (const p of [`/sys/fs/cgroup/${controller}/${id}/${v1File}`, `/sys/fs/cgroup/${id}/${v2File}`]) {
    try {
      readFileSync(p);
      return p;
    } catch {
      // try the next layout
    }
  }
  return undefined;
}

async function prepareRootfs(lower: string, bundle: string, copy: boolean): Promise<'overlay' | 'copy'> {
  const rootfs = path.join(bundle, 'rootfs');
  await mkdir(rootfs);
  if (!copy) {
    const upper = path.join(bundle, 'upper');
    const work = path.join(bundle, 'work');
    await mkdir(upper);
    await mkdir(work);
    try {
      await command('mount', [
        '-t',
        'overlay',
        'overlay',
        '-o',
        `lowerdir=${lower},upperdir=${upper},workdir=${work}`,
        rootfs,
      ]);
      return 'overlay';
    } catch {
      // e.g. the bundle is on overlayfs itself: fall back to a copy
    }
  }
  await command('cp', ['-a', `${lower}/.`, rootfs]);
  return 'copy';
}

/** True when `p` is a mount point in this mount namespace (/proc/self/mountinfo, field 5). */
export async function isMountPoint(p: string): Promise<boolean> {
  const info = await readFile('/proc/self/mountinfo', 'utf8');
  return info.split('\n').some((line) => line.split(' ')[4] === p);
}

async function unmount(p: string): Promise<void> {
  for (let attempt = 0; ; attempt++) {
    try {
      await command('umount', [p]);
      return;
    } catch (err) {
      if (!(await isMountPoint(p))) return;
      if (attempt >= 20) {
        // still busy (a process holding a cwd in it): detach it so the bundle can go
        await command('umount', ['-l', p]).catch(() => {
          throw err;
        });
        return;
      }
      await delay(50);
    }
  }
}

async function readMeta(bundle: string): Promise<BundleMeta | undefined> {
  try {
    return JSON.parse(await readFile(path.join(bundle, 'diego.json'), 'utf8')) as BundleMeta;
  } catch {
    return undefined;
  }
}

function runcCommand(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout: string, stderr: string) => {
      if (err) {
        const message = stderr.trim().split('\n').map(runcMessage).join('; ') || err.message;
        reject(new Error(`runc ${args.filter((a) => !a.startsWith('/')).join(' ')}: ${message}`, { cause: err }));
      } else resolve(stdout);
    });
  });
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}
