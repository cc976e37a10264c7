// The containerd backend: each container is a containerd container + task in its own containerd namespace
// (default 'diego'), run from an image. It drives containerd through `ctr`, containerd's own CLI: the Go
// client API is not reachable from Node without gRPC plus containerd's protobuf definitions, and ctr covers
// everything we need. What it does with each part of the Garden-like interface:
//
// * Rootfs: 'docker://…' (docker-ref.ts: Diego's docker:///repo#tag and Docker's registry/repo:tag forms) is
//   pulled with `ctr images pull` when containerd does not have it yet (plain HTTP for loopback registries and
//   the ones listed as insecure, like Diego's insecure_docker_registry_list). 'preloaded:<stack>', for the
//   stacks in the `stacks` option (default: busybox only; no rootfs at all is busybox), is the root filesystem
//   rootfs.ts builds for that stack (busybox, debian) packed as an OCI image (oci-image.ts) and imported once
//   with `ctr images import` as diego.local/preloaded/<rootfs id>:latest. Registry credentials
//   (ContainerSpec.imageCredentials) go to `ctr images pull --user <name>` without the password: ctr 1.6 takes a
//   password only in that argument (visible to every user of the host in ps and /proc/<pid>/cmdline) or typed
//   on a terminal, so the pull runs under `script` (util-linux), which gives it a pseudo-terminal with echo off,
//   and the password is typed through script's stdin (ctrWithPassword). An image already in containerd is used
//   without asking the registry again, whatever the credentials of the container that wants it. containerd unpacks images into its
//   snapshotter (overlayfs by default), and each container gets its own writable snapshot, removed with the
//   container.
// * Container: `ctr run --detach` of a long-lived init shell with the id <idPrefix><handle>, under the cgroup
//   /<id>. Memory and cpu shares are ctr flags; ctr has no pids flag, so pids.max is written to the container's
//   cgroup right after the task starts (before any process of ours runs); diskMb is not enforced. Garden
//   properties, the port mappings and the CNI result are container labels, so containerd alone is enough for
//   a restarted agent to re-adopt its containers (list/lookup). The hostname is the handle.
// * A helper: the agent's static busybox (Debian's busybox-static), copied into our state directory (containerd
//   resolves mount sources on the host; in a DaemonSet the state dir is a hostPath), is bind-mounted read-only
//   at /.diego/busybox, as Garden bind-mounts its own init, so the init shell, tar and the exec wrapper work in
//   any image.
// * Processes: `ctr task exec` with a unique --exec-id, --user uid:gid (from the image's /etc/passwd), --cwd.
//   ctr has no per-process environment, so a small wrapper run by the helper's shell exports the process env,
//   finds the executable on PATH (so a missing one fails the start, as in Garden), says it is ready on stderr
//   and stops itself; a host shell looks its host pid up (`ctr task ps`, by exec id), raises RLIMIT_NOFILE to
//   limits.nofile with prlimit (the container's default is 1024 and only a process with CAP_SYS_RESOURCE can
//   raise it; without that capability the wrapper can only lower it) and lets it go on. That host shell and
//   its ctr run detached from the agent (detached.ts, as the runc backend's execs): output goes to files under
//   <stateDir>/procs/<id>, ctr's exit status (the process's; 128+n for signal n) to a status file, so processes
//   outlive an agent restart and a restarted agent re-attaches (processes()/attach()). The process leads its
//   own session, so signals go to its process group.
// * Network: with `network` options each container gets a network namespace wired by CNI (cni.ts), joined with
//   `--with-ns network:/var/run/netns/<id>`; info().ip is its address and netIn maps host ports with portmap.
//   Without them containers share the host network (--net-host), and PORT is rewritten to the host port as in
//   the process and runc backends.
// * Egress: with `network`, spec.egress plus the network's defaultEgress is enforced by host iptables rules
//   installed before `ctr run` starts the task and removed by destroy (firewall.ts); on the host network
//   nothing is enforced (enforcesEgress false).
// * streamIn/streamOut: the helper's tar run inside the container by `ctr task exec` (as the given user), so
//   paths and symlinks resolve inside the container and files belong to the user.
// * destroy: `ctr task delete --force` (kills every process), `ctr containers delete` (with its snapshot),
//   CNI DEL + netns delete; runc removes the cgroups.
import { execFile, spawn } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import { chmod, copyFile, mkdir, rename, rm, stat, writeFile } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { CniNetwork, type CniOptions, type CniResult } from './cni.ts';
import {
  command,
  ContainerTable,
  DetachedSet,
  handlesOf,
  initialPorts,
  mapPort,
  networkInfo,
  removeTree,
  rewritePort,
} from './common.ts';
import { DetachedProcess, startDetached } from './detached.ts';
import { isPlainHttpRegistry, parseDockerRootfs } from './docker-ref.ts';
import { buildOciImage, writeOciLayoutTar } from './oci-image.ts';
import { collect, exitCode, freePort } from './process.ts';
import { ensureRootfs, preloadedRootfsOf, rootfsId, type PreloadedRootfs, type StackMap } from './rootfs.ts';
import { cgroupFile, lookupUser } from './runc.ts';
import { createTar, extractTar } from './tar.ts';
import { cgroupUsage } from './usage.ts';
import {
  type Container,
  type ContainerBackend,
  type ContainerInfo,
  type ContainerSpec,
  type ContainerUsage,
  type PortMapping,
  type ProcessHandle,
  type ProcessIO,
  type ProcessRecord,
  type ProcessSpec,
} from './types.ts';

export interface ContainerdBackendOptions {
  /** containerd's gRPC socket (its config's grpc.address). */
  address: string;
  /** containerd namespace of our containers and images. Default 'diego'. */
  namespace?: string;
  /** Our own scratch files (image tarballs being imported); created if missing. */
  stateDir: string;
  /** Prefix of our container ids; containers without it are not ours. Default 'diego-'. */
  idPrefix?: string;
  /** The ctr binary. Default 'ctr' from $PATH. */
  ctr?: string;
  /** containerd snapshotter; default: containerd's (overlayfs). */
  snapshotter?: string;
  /** Registries (host[:port]) pulled over plain HTTP besides loopback ones. */
  insecureRegistries?: string[];
  /** Where rootfs.ts caches built root filesystems (for preloaded:<stack>). */
  rootfsCacheDir?: string;
  /** The stacks offered as 'preloaded:<stack>' and the root filesystem of each (rootfs.ts). Default: busybox. */
  stacks?: StackMap;
  /** A static busybox bind-mounted into every container. Default /bin/busybox (Debian's busybox-static). */
  helper?: string;
  /** After a process exits, how long wait() lets its output drain. */
  outputDrainMs?: number;
  allocatePort?: () => Promise<number>;
  /** Gives each container its own network namespace wired with CNI (cni.ts); default: the host network. */
  network?: CniOptions;
}

export const LABEL_HANDLE = 'org.cloudfoundry.diego.handle';
export const LABEL_PORTS = 'org.cloudfoundry.diego.ports';
export const LABEL_NETWORK = 'org.cloudfoundry.diego.network';
/** Garden properties are labels with this prefix. */
export const LABEL_PROPERTY = 'org.cloudfoundry.diego.property/';

/** Where the helper busybox appears inside containers. */
export const HELPER_PATH = '/.diego/busybox';
const INIT_SCRIPT = `trap "exit 0" TERM; while :; do ${HELPER_PATH} sleep 3600 & wait; done`;
const READY = 'diego-exec-ready';
const FAILED = 'diego-exec-failed: ';

// Arguments: <n> <n × NAME=value> <nofile> <path> <args...>. Exports the env, resolves the executable like
// execvp (absolute path afterwards, so the helper's applets never stand in for the image's programs), reports,
// stops itself until the host side (HOST_EXEC_SCRIPT) has found its pid, applies the nofile limit it can, and
// becomes the process.
/** Set for the wrapper only (unset before exec): the user's home, its working directory when the process has no dir. */
const HOME_CWD_VAR = '__DIEGO_HOME_CWD';
const WRAPPER_SCRIPT = [
  'n=$1; shift',
  'while [ "$n" -gt 0 ]; do export "$1"; shift; n=$((n - 1)); done',
  `if [ -n "$${HOME_CWD_VAR}" ]; then cd "$${HOME_CWD_VAR}" 2>/dev/null || cd /; unset ${HOME_CWD_VAR}; fi`,
  'nofile=$1; shift; p=$1; shift',
  'case $p in',
  '*/*) f=$p ;;',
  '*) f=; IFS=:; for d in $PATH; do if [ -f "$d/$p" ] && [ -x "$d/$p" ]; then f=$d/$p; break; fi; done; unset IFS ;;',
  'esac',
  `if [ -z "$f" ] || [ ! -f "$f" ] || [ ! -x "$f" ]; then echo "${FAILED}exec: \\"$p\\": executable file not found in the container" >&2; exit 127; fi`,
  `echo ${READY} >&2`,
  'kill -STOP $$',
  'if [ -n "$nofile" ]; then ulimit -n "$nofile" 2>/dev/null || :; fi',
  'exec "$f" "$@"',
].join('\n');

// Run on the host by detached.ts (so it outlives the agent; its stdout/stderr are the process's output files):
// <err file> <pid file> <nofile> <exec id> <container id> <ctr> <address> <namespace> <ctr args...>. Starts
// `ctr tasks exec`, waits for the wrapper's first line; when it is ready (stopped), finds its host pid by exec
// id, raises RLIMIT_NOFILE with prlimit (needs CAP_SYS_RESOURCE), lets it go on (SIGCONT) and writes the pid
// file; then waits for ctr, whose exit status is the process's.
const HOST_EXEC_SCRIPT = [
  'err=$1 pidfile=$2 nofile=$3 eid=$4 cid=$5 ctr=$6 addr=$7 ns=$8; shift 8',
  '"$ctr" --address "$addr" --namespace "$ns" "$@" &',
  'c=$!',
  'while kill -0 "$c" 2>/dev/null; do',
  `  if grep -q -x -e '${READY}' "$err" 2>/dev/null; then`,
  '    pid=',
  '    while [ -z "$pid" ] && kill -0 "$c" 2>/dev/null; do',
  '      pid=$("$ctr" --address "$addr" --namespace "$ns" tasks ps "$cid" 2>/dev/null | grep -F "ExecID:$eid," | { read -r p _ && echo "$p"; })',
  '      [ -n "$pid" ] || sleep 0.02',
  '    done',
  '    [ -n "$pid" ] || break',
  // SIGCONT only once it has stopped itself, or it would stop after and wait forever.
  '    while kill -0 "$c" 2>/dev/null && [ "$(sed \'s/.*) //\' "/proc/$pid/stat" 2>/dev/null | cut -d" " -f1)" != T ]; do sleep 0.005; done',
  '    [ -z "$nofile" ] || prlimit --pid "$pid" --nofile="$nofile:$nofile" 2>/dev/null || :',
  '    kill -CONT "$pid" 2>/dev/null',
  '    echo "$pid" > "$pidfile.tmp" && mv "$pidfile.tmp" "$pidfile"',
  '    break',
  '  fi',
  `  grep -q -e '^${FAILED}' "$err" 2>/dev/null && break`,
  '  sleep 0.01',
  'done',
  'wait "$c"',
].join('\n');

/** Garden/Diego cpu shares are bounded by the kernel's minimum of 2. */
const MIN_CPU_SHARES = 2;

interface ContainerdMeta {
  handle: string;
  properties: Record<string, string>;
  /** The container's env as in its spec (image env + container env). */
  env: string[];
  ports: PortMapping[];
  network?: CniResult;
}

export class ContainerdBackend implements ContainerBackend {
  readonly address: string;
  readonly namespace: string;
  readonly stateDir: string;
  readonly idPrefix: string;
  readonly network: CniNetwork | undefined;
  /** Egress rules are enforced (host iptables, firewall.ts) when containers have their own network namespace. */
  readonly enforcesEgress: boolean;
  readonly helper: string;
  readonly #opts: ContainerdBackendOptions;
  readonly #containers = new ContainerTable<ContainerdContainer>();
  /** Images being pulled or imported, so concurrent creates with one image fetch it once. */
  readonly #images = new Map<string, Promise<void>>();
  readonly #allocatePort: () => Promise<number>;

  constructor(opts: ContainerdBackendOptions) {
    this.#opts = opts;
    this.address = opts.address;
    this.namespace = opts.namespace ?? 'diego';
    this.stateDir = path.resolve(opts.stateDir);
    this.idPrefix = opts.idPrefix ?? 'diego-';
    this.network = opts.network ? new CniNetwork(opts.network) : undefined;
    this.enforcesEgress = this.network !== undefined;
    this.helper = opts.helper ?? '/bin/busybox';
    this.#allocatePort = opts.allocatePort ?? freePort;
  }

  containerId(handle: string): string {
    return `${this.idPrefix}${handle}`;
  }

  /** Runs ctr against our containerd and namespace; resolves with stdout, rejects with ctr's message. */
  ctr(args: string[]): Promise<string> {
    return ctrCommand(this.#opts.ctr ?? 'ctr', [...this.globalArgs(), ...args]);
  }

  globalArgs(): string[] {
    return ['--address', this.address, '--namespace', this.namespace];
  }

  /** Where ctr keeps the FIFOs of the processes it runs (instead of the shared /run/containerd/fifo). */
  get fifoDir(): string {
    return path.join(this.stateDir, 'fifo');
  }

  get ctrBinary(): string {
    return this.#opts.ctr ?? 'ctr';
  }

  /**
   * The image reference for a rootfs URL, pulled (with `credentials`, for docker://) or imported into containerd
   * when missing.
   */
  async ensureImage(rootfs: string | undefined, credentials?: ContainerSpec['imageCredentials']): Promise<string> {
    let ref: string;
    let key: string;
    let fetch: () => Promise<void>;
    if (rootfs !== undefined && /^docker:\/\//i.test(rootfs)) {
      const url = rootfs;
      const image = parseDockerRootfs(url);
      ref = image.ref;
      // Creates with other credentials do not share a pull: one refused must not fail the others.
      key = credentials ? `${ref} ${credentials.username} ${sha256(credentials.password)}` : ref;
      if (credentials?.username.includes(':') || credentials?.username === '') {
        throw new Error(`pulling ${url}: the registry user name must be non-empty and without ':'`);
      }
      if (credentials && /[\r\n]/.test(credentials.password)) {
        throw new Error(`pulling ${url}: a registry password with a line break cannot be passed to ctr`);
      }
      const plainHttp = isPlainHttpRegistry(image.registry, this.#opts.insecureRegistries);
      fetch = () => this.#pull(url, ref, plainHttp, credentials);
    } else {
      // preloaded:<stack> (or none: busybox); anything else is rejected, naming what this cell offers.
      const kind = preloadedRootfsOf(rootfs, this.#opts.stacks, ['docker://<image>']);
      ref = `diego.local/preloaded/${rootfsId(kind)}:latest`;
      key = ref;
      fetch = () => this.#importPreloaded(kind, ref);
    }
    let pending = this.#images.get(key);
    if (!pending) {
      pending = (async () => {
        if (!(await this.#hasImage(ref))) await fetch();
      })();
      this.#images.set(key, pending);
      // Forget failures so that a later create retries; forget successes too, in case the image is removed.
      void pending.catch(() => {}).finally(() => this.#images.delete(key));
    }
    await pending;
    return ref;
  }

  async #hasImage(ref: string): Promise<boolean> {
    const out = await this.ctr(['images', 'ls', '-q']);
    return out.split('\n').includes(ref);
  }

  async #pull(
    url: string,
    ref: string,
    plainHttp: boolean,
    credentials: ContainerSpec['imageCredentials'],
  ): Promise<void> {
    const args = [
      'images',
      'pull',
      ...(plainHttp ? ['--plain-http'] : []),
      ...this.snapshotterArgs(),
      ...(credentials ? ['--user', credentials.username] : []),
      ref,
    ];
    try {
      if (credentials) await ctrWithPassword(this.ctrBinary, [...this.globalArgs(), ...args], credentials.password);
      else await this.ctr(args);
    } catch (err) {
      let message = (err as Error).message;
      if (/\b401\b|unauthorized/i.test(message)) {
        message = credentials
          ? `the registry refused the credentials of user '${credentials.username}' (401 Unauthorized)`
          : 'the registry wants credentials (401 Unauthorized) and the container has none';
      }
      // ctrWithPassword's errors carry no password (its output is redacted); redact again all the same.
      if (credentials) message = redact(message, credentials.password);
      throw new Error(`pulling ${url} (${ref}) failed: ${message}`, { cause: err });
    }
  }

  async #importPreloaded(kind: PreloadedRootfs, ref: string): Promise<void> {
    const dir = await ensureRootfs(kind, this.#opts.rootfsCacheDir);
    const image = await buildOciImage(dir);
    const imagesDir = path.join(this.stateDir, 'images');
    await mkdir(imagesDir, { recursive: true });
    const file = path.join(imagesDir, `${process.pid}-${randomBytes(4).toString('hex')}.tar`);
    try {
      await writeOciLayoutTar(image, ref, file);
      await this.ctr(['images', 'import', ...this.snapshotterArgs(), file]);
    } finally {
      await rm(file, { force: true });
    }
  }

  /** --snapshotter <name> when one is configured. */
  snapshotterArgs(): string[] {
    return this.#opts.snapshotter ? ['--snapshotter', this.#opts.snapshotter] : [];
  }

  create(spec: ContainerSpec): Promise<Container> {
    return this.#containers.create(spec.handle, () => this.#create(spec));
  }

  async #create(spec: ContainerSpec): Promise<ContainerdContainer> {
    const id = this.containerId(spec.handle);
    if (await this.#info(id)) throw new Error(`handle already exists: ${spec.handle}`);
    for (const [key, value] of Object.entries(spec.properties ?? {})) {
      if (key === '' || key.includes('=')) throw new Error(`property name '${key}' cannot be a container label`);
      if (LABEL_PROPERTY.length + key.length + value.length > 4096) {
        throw new Error(`property '${key}' is longer than containerd allows for a label (4096 bytes)`);
      }
    }
    for (const m of spec.bindMounts ?? []) {
      if (m.srcPath.includes(',') || m.dstPath.includes(',')) {
        throw new Error(`bind mount ${m.srcPath} → ${m.dstPath}: paths with ',' are not supported by ctr`);
      }
    }
    const helperSource = await this.#helperSource();
    const ref = await this.ensureImage(spec.rootfs, spec.imageCredentials);
    await mkdir(this.fifoDir, { recursive: true });
    const ports = await initialPorts(spec.netIn, this.#allocatePort);
    let network: CniResult | undefined;
    try {
      // The container's egress rules are on the host before its task (and so any process of it) starts.
      if (this.network) network = await this.network.setUp(id, ports, { handle: spec.handle, rules: spec.egress });
      const labels: Record<string, string> = { [LABEL_HANDLE]: spec.handle, [LABEL_PORTS]: JSON.stringify(ports) };
      if (network) labels[LABEL_NETWORK] = JSON.stringify(network);
      for (const [key, value] of Object.entries(spec.properties ?? {})) labels[LABEL_PROPERTY + key] = value;
      const args = ['run', '--detach', '--null-io', '--cgroup', `/${id}`, ...this.snapshotterArgs()];
      for (const [key, value] of Object.entries(labels)) args.push('--label', `${key}=${value}`);
      args.push('--mount', `type=bind,src=${helperSource},dst=${HELPER_PATH},options=rbind:ro`);
      // As in the runc backend (and Docker): the container's own cgroups, read-only, so apps see their limits.
      args.push('--mount', 'type=cgroup,src=cgroup,dst=/sys/fs/cgroup,options=ro:nosuid:noexec:nodev');
      for (const m of spec.bindMounts ?? []) {
        args.push(
          '--mount',
          `type=bind,src=${m.srcPath},dst=${m.dstPath},options=rbind:${m.mode === 'ro' ? 'ro' : 'rw'}`,
        );
      }
      args.push(...(this.network ? ['--with-ns', `network:${this.network.netnsPath(id)}`] : ['--net-host']));
      const limits = spec.limits ?? {};
      if (limits.memoryMb !== undefined && limits.memoryMb > 0) {
        args.push('--memory-limit', String(limits.memoryMb * 1024 * 1024));
      }
      if (limits.cpuWeight !== undefined && limits.cpuWeight > 0) {
        args.push('--cpu-shares', String(Math.max(MIN_CPU_SHARES, Math.round(limits.cpuWeight))));
      }
      if (spec.privileged) args.push('--privileged');
      for (const v of spec.env ?? []) args.push('--env', `${v.name}=${v.value}`);
      args.push(ref, id, HELPER_PATH, 'sh', '-c', INIT_SCRIPT);
      await this.ctr(args);
      const info = await this.#info(id);
      const pid = await this.initPid(id);
      if (limits.pids !== undefined && limits.pids > 0) {
        const file = cgroupFile(id, 'pids', 'pids.max', 'pids.max');
        if (!file) throw new Error(`no pids cgroup for container ${id}: cannot limit its processes`);
        await writeFile(file, String(limits.pids));
      }
      await command('nsenter', ['--target', String(pid), '--uts', this.helper, 'hostname', spec.handle.slice(0, 63)]);
      const meta: ContainerdMeta = {
        handle: spec.handle,
        properties: { ...spec.properties },
        env: info?.Spec?.process?.env ?? [],
        ports,
        ...(network ? { network } : {}),
      };
      const container = new ContainerdContainer(this, meta, this.#opts);
      this.#containers.set(spec.handle, container);
      return container;
    } catch (err) {
      await this.#teardown(spec.handle, { ports, network }).catch(() => {});
      throw err;
    }
  }

  /**
   * The helper as a file in our state directory. containerd resolves bind-mount sources on the host, and in a
   * DaemonSet pod only the state directory (a hostPath) is at the same path on the host and in the pod.
   */
  async #helperSource(): Promise<string> {
    const target = path.join(this.stateDir, 'bin', 'busybox');
    const source = await stat(this.helper).catch(() => {
      throw new Error(`${this.helper} is missing: install Debian's busybox-static (hack/install-deps.sh)`);
    });
    const current = await stat(target).catch(() => undefined);
    if (current?.size !== source.size || current.mtimeMs < source.mtimeMs) {
      await mkdir(path.dirname(target), { recursive: true });
      const tmp = `${target}.${process.pid}-${randomBytes(3).toString('hex')}`;
      await copyFile(this.helper, tmp);
      await chmod(tmp, 0o755);
      await rename(tmp, target);
    }
    return target;
  }

  lookup(handle: string): Promise<Container | undefined> {
    // Re-adopt a container of a previous agent: containerd keeps everything we need in its labels.
    return this.#containers.lookup(handle, async () => {
      const info = await this.#info(this.containerId(handle));
      const meta = info && metaFromInfo(info);
      if (meta?.handle !== handle) return undefined;
      return new ContainerdContainer(this, meta, this.#opts);
    });
  }

  async list(): Promise<string[]> {
    const out = await this.ctr(['containers', 'ls', '-q']);
    return handlesOf(out.split('\n'), this.idPrefix);
  }

  destroy(handle: string): Promise<void> {
    return this.#containers.destroy(handle, () => this.#teardown(handle));
  }

  async #teardown(handle: string, partial?: { ports: PortMapping[]; network?: CniResult }): Promise<void> {
    const id = this.containerId(handle);
    const container = this.#containers.get(handle);
    this.#containers.delete(handle);
    const info = await this.#info(id);
    const meta = container?.meta ?? (info ? metaFromInfo(info) : undefined);
    // --force kills every process of the task (its pid namespace dies with its init) and deletes it.
    await this.ctr(['tasks', 'delete', '--force', id]).catch(async (err: unknown) => {
      if (await this.#hasTask(id)) throw err;
    });
    if (container) await container.waitAll(2000);
    if (info) {
      await this.ctr(['containers', 'delete', id]).catch(async (err: unknown) => {
        if (await this.#info(id)) throw err;
      });
    }
    await removeTree(path.join(this.stateDir, 'procs', id));
    if (this.network) {
      const ports = meta?.ports ?? partial?.ports ?? [];
      const network = meta?.network ?? partial?.network;
      if (network || existsSync(this.network.netnsPath(id))) await this.network.tearDown(id, ports, network);
      else await this.network.removeEgress(id);
    }
  }

  /** `ctr containers info`: labels and the OCI spec; undefined when there is no such container. */
  async #info(id: string): Promise<CtrContainerInfo | undefined> {
    try {
      return JSON.parse(await this.ctr(['containers', 'info', id])) as CtrContainerInfo;
    } catch (err) {
      if (/not found/i.test((err as Error).message)) return undefined;
      throw err;
    }
  }

  async #hasTask(id: string): Promise<boolean> {
    const out = await this.ctr(['tasks', 'ls']);
    return out.split('\n').some((line) => line.split(/\s+/)[0] === id);
  }

  /** Host pid of the container's init process. */
  async initPid(id: string): Promise<number> {
    const out = await this.ctr(['tasks', 'ls']);
    for (const line of out.split('\n')) {
      const [task, pid] = line.trim().split(/\s+/);
      if (task === id && Number(pid) > 0) return Number(pid);
    }
    throw new Error(`container ${id} has no running task`);
  }
}

interface CtrContainerInfo {
  ID: string;
  Labels?: Record<string, string> | null;
  Spec?: { process?: { env?: string[] } };
}

function metaFromInfo(info: CtrContainerInfo): ContainerdMeta | undefined {
  const labels = info.Labels ?? {};
  const handle = labels[LABEL_HANDLE];
  if (!handle) return undefined;
  const properties: Record<string, string> = {};
  for (const [key, value] of Object.entries(labels)) {
    if (key.startsWith(LABEL_PROPERTY)) properties[key.slice(LABEL_PROPERTY.length)] = value;
  }
  const parse = <T>(text: string | undefined): T | undefined => {
    try {
      return text === undefined ? undefined : (JSON.parse(text) as T);
    } catch {
      return undefined;
    }
  };
  const network = parse<CniResult>(labels[LABEL_NETWORK]);
  return {
    handle,
    properties,
    env: info.Spec?.process?.env ?? [],
    ports: parse<PortMapping[]>(labels[LABEL_PORTS]) ?? [],
    ...(network ? { network } : {}),
  };
}

class ContainerdContainer implements Container {
  readonly handle: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly #backend: ContainerdBackend;
  readonly #meta: ContainerdMeta;
  readonly #processes: DetachedSet;
  readonly #allocatePort: () => Promise<number>;
  #execCounter = 0;

  constructor(backend: ContainerdBackend, meta: ContainerdMeta, opts: ContainerdBackendOptions) {
    this.#backend = backend;
    this.#meta = meta;
    this.handle = meta.handle;
    this.properties = { ...meta.properties };
    this.#processes = new DetachedSet(this.procsDir, opts.outputDrainMs ?? 200);
    this.#allocatePort = opts.allocatePort ?? freePort;
  }

  get id(): string {
    return this.#backend.containerId(this.handle);
  }

  get meta(): ContainerdMeta {
    return this.#meta;
  }

  get netnsPath(): string | undefined {
    return this.#meta.network ? this.#backend.network?.netnsPath(this.id) : undefined;
  }

  /** The container's root as the host sees it, through its init process (for reading /etc/passwd). */
  async #root(): Promise<string> {
    return `/proc/${await this.#backend.initPid(this.id)}/root`;
  }

  #execId(): string {
    return `diego-${process.pid}-${++this.#execCounter}-${randomBytes(3).toString('hex')}`;
  }

  async run(proc: ProcessSpec, io: ProcessIO): Promise<ProcessHandle> {
    const user = await lookupUser(await this.#root(), proc.user);
    const env = new Map<string, string>();
    for (const v of proc.env ?? []) env.set(v.name, v.value);
    const containerHas = (name: string) => this.#meta.env.some((e) => e.startsWith(`${name}=`));
    if (!env.has('HOME') && !containerHas('HOME')) env.set('HOME', user.home);
    // On the host network a process must listen on the host port; in its own namespace on the container port.
    if (!this.#meta.network) {
      const inherited = this.#meta.env.find((e) => e.startsWith('PORT='))?.slice('PORT='.length);
      rewritePort(env, this.#meta.ports, inherited);
    }
    for (const name of env.keys()) {
      if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw new Error(`invalid environment variable name '${name}'`);
    }
    // Garden's default working directory is the user's home, and a relative dir is relative to it. Without a dir
    // the wrapper changes into the home itself (falling back to / when the image lacks it).
    const cwd = proc.dir ? path.posix.resolve(user.home || '/', proc.dir) : '/';
    if (!proc.dir && user.home && user.home !== '/') env.set(HOME_CWD_VAR, user.home);
    const n = ++this.#execCounter;
    const id = `${Date.now().toString(36)}-${process.pid}-${n}`;
    const execId = `diego-${id}`;
    const nofile = proc.limits?.nofile;
    const ctrArgs = [
      'tasks',
      'exec',
      '--fifo-dir',
      this.#backend.fifoDir,
      '--exec-id',
      execId,
      '--user',
      `${user.uid}:${user.gid}`,
      '--cwd',
      cwd,
      this.id,
      HELPER_PATH,
      'sh',
      '-c',
      WRAPPER_SCRIPT,
      'sh',
      String(env.size),
      ...[...env].map(([k, v]) => `${k}=${v}`),
      nofile ? String(nofile) : '',
      proc.path,
      ...(proc.args ?? []),
    ];
    await mkdir(this.procsDir, { recursive: true });
    // The wrapper's ready line is ours, not the process's.
    let first = true;
    const filtered: ProcessIO = {
      stdout: (line) => io.stdout(line),
      stderr: (line) => {
        if (first && line === READY) return;
        first = false;
        io.stderr(line);
      },
    };
    let handle: DetachedProcess;
    try {
      handle = await startDetached(
        this.#processes.options,
        id,
        {},
        ({ pidFile }) => [
          '/bin/sh',
          '-c',
          HOST_EXEC_SCRIPT,
          'diego-ctr-exec',
          pidFile.replace(/\.pid$/, '.err'),
          pidFile,
          nofile ? String(nofile) : '',
          execId,
          this.id,
          this.#backend.ctrBinary,
          this.#backend.address,
          this.#backend.namespace,
          ...ctrArgs,
        ],
        filtered,
        proc.tag,
      );
    } catch (err) {
      const lines = (err as Error).message
        .split('; ')
        .map((l) => l.trim())
        .filter((l) => l !== '' && l !== READY)
        .map((l) => (l.startsWith(FAILED) ? l.slice(FAILED.length) : ctrMessage(l)));
      let message = lines.join('; ') || 'ctr tasks exec failed';
      if (/chdir to cwd/.test(message)) message = `working directory ${cwd} does not exist`;
      throw new Error(message, { cause: err });
    }
    return this.#processes.track(handle);
  }

  /** Where the processes of this container keep their output and exit status (detached.ts). */
  get procsDir(): string {
    return path.join(this.#backend.stateDir, 'procs', this.id);
  }

  processes(): Promise<ProcessRecord[]> {
    return this.#processes.list();
  }

  attach(id: string, io: ProcessIO): Promise<ProcessHandle> {
    return this.#processes.attach(id, io);
  }

  /** Runs the helper busybox in the container (no wrapper); resolves with its exit status, stdout and stderr. */
  async #helper(args: string[], opts: { user?: { uid: number; gid: number } } = {}) {
    const user = opts.user ?? { uid: 0, gid: 0 };
    const child = spawn(this.#backend.ctrBinary, this.#execArgs(user, args), { stdio: ['ignore', 'pipe', 'pipe'] });
    const [stdout, stderr, code] = await Promise.all([collect(child.stdout), collect(child.stderr), exitCode(child)]);
    return { code, stdout, stderr: ctrMessage(stderr) };
  }

  #execArgs(user: { uid: number; gid: number }, helperArgs: string[]): string[] {
    return [
      ...this.#backend.globalArgs(),
      'tasks',
      'exec',
      '--fifo-dir',
      this.#backend.fifoDir,
      '--exec-id',
      this.#execId(),
      '--user',
      `${user.uid}:${user.gid}`,
      this.id,
      HELPER_PATH,
      ...helperArgs,
    ];
  }

  async streamIn(dst: string, tar: Readable | Buffer, opts?: { user?: string }): Promise<void> {
    const user = opts?.user ? await lookupUser(await this.#root(), opts.user) : { uid: 0, gid: 0, home: '/root' };
    const dir = path.posix.resolve(user.home || '/', dst); // relative: in the user's home, as Garden does
    // mkdir -p as root, handing each directory it creates to the user (Garden's StreamIn does the same).
    const mkdirs = await this.#helper([
      'sh',
      '-c',
      'p=; IFS=/; for c in $1; do [ -n "$c" ] || continue; p="$p/$c"; if [ ! -d "$p" ]; then ' +
        `${HELPER_PATH} mkdir "$p" && ${HELPER_PATH} chown "$2" "$p" || exit 1; fi; done`,
      'sh',
      dir,
      `${user.uid}:${user.gid}`,
    ]);
    if (mkdirs.code !== 0) throw new Error(`creating ${dir} in the container failed: ${mkdirs.stderr}`);
    await extractTar(
      this.#backend.ctrBinary,
      this.#execArgs(user, ['tar', '-x', '-o', '-f', '-', '-C', dir]),
      undefined,
      tar,
      dst,
    );
  }

  async streamOut(src: string, opts?: { user?: string }): Promise<Readable> {
    const user = opts?.user ? await lookupUser(await this.#root(), opts.user) : { uid: 0, gid: 0, home: '/root' };
    const p = path.posix.resolve(user.home || '/', src); // relative: in the user's home, as Garden does
    const exists = await this.#helper(['sh', '-c', '[ -e "$1" ] || [ -L "$1" ]', 'sh', p], { user });
    if (exists.code !== 0) {
      throw Object.assign(new Error(`ENOENT: no such file or directory in the container, '${src}'`), {
        code: 'ENOENT',
      });
    }
    const base = p === '/' ? '.' : path.posix.basename(p);
    const args = this.#execArgs(user, ['tar', '-c', '-f', '-', '-C', path.posix.dirname(p), base]);
    return createTar(this.#backend.ctrBinary, args, src, ctrMessage);
  }

  info(): Promise<ContainerInfo> {
    return networkInfo(this.id, this.#meta);
  }

  /** cpu and memory from the container's cgroup; disk is the size of its writable snapshot (`ctr snapshots usage`). */
  async usage(): Promise<ContainerUsage> {
    const { cpuNanos, memoryBytes } = await cgroupUsage(this.id);
    let diskBytes = 0;
    try {
      const out = await this.#backend.ctr(['snapshots', ...this.#backend.snapshotterArgs(), 'usage', '-b', this.id]);
      const row = out.split('\n').find((l) => l.split(/\s+/)[0] === this.id);
      diskBytes = Number(row?.trim().split(/\s+/)[1] ?? 0) || 0;
    } catch {
      // no snapshot (being destroyed): nothing written
    }
    return { cpuNanos, memoryBytes, diskBytes };
  }

  netIn(containerPort: number, hostPort?: number): Promise<PortMapping> {
    const target = { id: this.id, meta: this.#meta, network: this.#backend.network, allocatePort: this.#allocatePort };
    return mapPort(target, containerPort, hostPort, (ports) =>
      this.#backend.ctr(['containers', 'label', this.id, `${LABEL_PORTS}=${JSON.stringify(ports)}`]),
    );
  }

  /** Waits (at most `ms`) for the ctr exec processes we started to exit. */
  waitAll(ms: number): Promise<void> {
    return this.#processes.waitAll(ms);
  }
}

/** ctr prints errors as 'ctr: <message>' (sometimes after logrus lines); keep the messages. */
function ctrMessage(text: string): string {
  return text
    .split('\n')
    .map((l) => l.trim())
    .filter((l) => l !== '')
    .map((l) => {
      const m = /msg="((?:[^"\\]|\\.)*)"/.exec(l);
      if (m) return m[1]!.replace(/\\"/g, '"');
      return l.replace(/^ctr: /, '');
    })
    .join('; ');
}

/**
 * Runs ctr with `--user <name>` among `args` and types `password` when it asks for it: ctr reads a password from
 * a terminal only, so it runs under `script` (util-linux, essential in Debian) on a pseudo-terminal whose echo is
 * off, and the password goes through script's stdin (the pseudo-terminal keeps it until ctr reads it). It never
 * appears in a process's arguments or environment. Rejects with ctr's error message.
 */
export function ctrWithPassword(file: string, args: string[], password: string): Promise<string> {
  const quote = (s: string) => `'${s.replace(/'/g, "'\\''")}'`;
  return new Promise((resolve, reject) => {
    const child = spawn(
      'script',
      ['--quiet', '--return', '--echo', 'never', '--command', [file, ...args].map(quote).join(' '), '/dev/null'],
      { stdio: ['pipe', 'pipe', 'pipe'], env: { ...process.env, SHELL: '/bin/sh' } },
    );
    const chunks: Buffer[] = [];
    child.stdout.on('data', (b: Buffer) => chunks.push(b));
    child.stderr.on('data', (b: Buffer) => chunks.push(b));
    child.stdin.on('error', () => {}); // script gone before reading it: its exit status tells
    child.stdin.write(`${password}\n`); // stdin stays open until ctr is done: at EOF script would end the session
    child.on('error', (err) => reject(new Error(`running ctr under script (util-linux): ${err.message}`)));
    child.on('close', (code, signal) => {
      child.stdin.destroy();
      const output = redact(Buffer.concat(chunks).toString('utf8'), password)
        // eslint-disable-next-line no-control-regex
        .replace(/\x1b\[[0-9;?]*[A-Za-z]/g, '')
        .replace(/\r/g, '\n');
      if (code === 0) return resolve(output);
      const lines = output.split('\n').filter((l) => /^ctr: |level=(error|fatal)/.test(l.trim()));
      const what = args.slice(4, 6).join(' ');
      const last =
        output
          .split('\n')
          .filter((l) => l.trim() !== '' && !/^Password:/.test(l.trim()))
          .at(-1) ?? '';
      reject(new Error(`ctr ${what}: ${ctrMessage(lines.join('\n') || last) || `exit ${code ?? signal}`}`));
    });
  });
}

/** `text` with every occurrence of `secret` replaced by '***'. */
function redact(text: string, secret: string): string {
  return secret === '' ? text : text.split(secret).join('***');
}

function sha256(text: string): string {
  return createHash('sha256').update(text).digest('hex');
}

function ctrCommand(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { maxBuffer: 64 * 1024 * 1024, encoding: 'utf8' }, (err, stdout: string, stderr: string) => {
      if (err) {
        const what = args.slice(4, 6).join(' ');
        reject(new Error(`ctr ${what}: ${ctrMessage(stderr) || err.message}`, { cause: err }));
      } else resolve(stdout);
    });
  });
}
