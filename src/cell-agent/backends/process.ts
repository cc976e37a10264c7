// The process backend: a "container" is a directory under baseDir and its processes are plain child
// processes of the cell agent. No isolation at all — it exists for development (`make run`) and for testing
// the executor with real processes. What it does with each part of the Garden-like interface:
//
// * Filesystem: the container directory stands in for the root filesystem. streamIn/streamOut paths, the
//   run `dir` and bind-mount destinations are resolved inside it ('/app' → <dir>/app, '..' cannot climb
//   out lexically; symlinks can, this is not a sandbox). A run `path` is looked up inside the container
//   directory first (so a downloaded '/tmp/lifecycle/launcher' runs) and otherwise used as a host path or
//   looked up in $PATH (so '/bin/sh' and 'sh' run). The default working directory is the container directory.
// * Environment: only the container env plus the process env (no host env leaks in), with a default PATH.
// * Processes: spawned detached, i.e. as leaders of their own process group, so SIGTERM/SIGKILL go to the
//   whole group (kill(-pid)) and reach whatever the process started. `user` is ignored (runs as the agent).
//   limits.nofile is applied with `ulimit -n` in a /bin/sh wrapper.
// * Network: processes share the host network, so a port cannot be remapped. netIn picks a free host port
//   (or takes the one given) and the process must listen on it: when a process starts, PORT is set to the
//   host port of the mapping whose container port PORT named (or of the first mapping when PORT is unset).
//   CF apps already read $PORT; an app that cannot should be given hostPort = containerPort explicitly.
//   info() reports no ip: checks then dial 127.0.0.1:hostPort.
// * Limits (memory, disk, pids, cpu weight) and bind-mount read-only mode are not enforced; bind mounts are
//   symlinks. By default containers live in memory only: after an agent restart their directories are orphans.
//   With `persistent` (the cell-agent command's choice) each container's metadata is kept in <baseDir>/.meta and
//   its processes run detached from the agent (detached.ts: a host shell records the exit status, output goes
//   to files, `setsid` makes each process lead its own group), so a restarted agent lists, looks up and
//   re-attaches to them like the runc backend's.
import { createTar, extractTar } from './tar.ts';
import { spawn, type ChildProcess } from 'node:child_process';
import { constants as osConstants } from 'node:os';
import { mkdir, readdir, readFile, rm, stat, symlink, lstat, writeFile } from 'node:fs/promises';
import { createServer } from 'node:net';
import path from 'node:path';
import { Readable } from 'node:stream';
import { killGroup, removeTree, rewritePort } from './common.ts';
import { attachDetached, DetachedProcess, listDetached, plainExec, startDetached } from './detached.ts';
import { LineSplitter } from './lines.ts';
import { dirBytes, processGroupUsage } from './usage.ts';
import {
  HANDLE_PATTERN,
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
  type ProcessSignal,
  type ProcessSpec,
} from './types.ts';

export const DEFAULT_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

export interface ProcessBackendOptions {
  /** Directory holding one sub-directory per container; created if missing. */
  baseDir: string;
  /**
   * After a process exits, how long wait() lets its output drain. A process that left children behind
   * holding its pipes would otherwise delay wait() until they exit.
   */
  outputDrainMs?: number;
  /** Picks a free host port (tests may pin ports). */
  allocatePort?: () => Promise<number>;
  /**
   * Processes outlive the agent and containers are remembered on disk (<baseDir>/.meta/<handle>.json), so a
   * restarted agent lists, looks up and re-attaches to them (detached.ts; needs setsid). Off by default.
   */
  persistent?: boolean;
}

/** What a persistent container remembers (see ProcessBackendOptions.persistent). */
interface ProcessMeta {
  handle: string;
  properties: Record<string, string>;
  env: EnvVar[];
  ports: PortMapping[];
}

export class ProcessBackend implements ContainerBackend {
  readonly baseDir: string;
  readonly #outputDrainMs: number;
  readonly #allocatePort: () => Promise<number>;
  readonly #containers = new Map<string, ProcessContainer>();
  readonly #persistent: boolean;

  constructor(opts: ProcessBackendOptions) {
    this.baseDir = path.resolve(opts.baseDir);
    this.#outputDrainMs = opts.outputDrainMs ?? 200;
    this.#allocatePort = opts.allocatePort ?? freePort;
    this.#persistent = opts.persistent ?? false;
  }

  #metaFile(handle: string): string {
    return path.join(this.baseDir, '.meta', `${handle}.json`);
  }

  #procsDir(handle: string): string | undefined {
    return this.#persistent ? path.join(this.baseDir, '.procs', handle) : undefined;
  }

  async create(spec: ContainerSpec): Promise<Container> {
    if (!HANDLE_PATTERN.test(spec.handle)) throw new Error(`invalid container handle '${spec.handle}'`);
    if (this.#containers.has(spec.handle)) throw new Error(`handle already exists: ${spec.handle}`);
    await mkdir(this.baseDir, { recursive: true });
    const root = path.join(this.baseDir, spec.handle);
    try {
      await mkdir(root); // not recursive: fails when a directory (e.g. from a previous agent) is there
    } catch (err) {
      throw new Error(`creating container directory ${root}: ${(err as Error).message}`, { cause: err });
    }
    const save = this.#persistent
      ? (m: ProcessMeta) => writeFile(this.#metaFile(m.handle), JSON.stringify(m))
      : undefined;
    const container = new ProcessContainer(spec, root, this.#outputDrainMs, this.#allocatePort, {
      procsDir: this.#procsDir(spec.handle),
      save,
    });
    this.#containers.set(spec.handle, container);
    try {
      if (this.#persistent) await mkdir(path.dirname(this.#metaFile(spec.handle)), { recursive: true });
      for (const mount of spec.bindMounts ?? []) {
        const dst = resolveInRoot(root, mount.dstPath);
        await mkdir(path.dirname(dst), { recursive: true });
        await symlink(path.resolve(mount.srcPath), dst);
      }
      for (const p of spec.netIn ?? []) await container.netIn(p.containerPort, p.hostPort);
      await container.save();
    } catch (err) {
      await this.destroy(spec.handle);
      throw err;
    }
    return container;
  }

  async lookup(handle: string): Promise<Container | undefined> {
    return this.#containers.get(handle) ?? (await this.#adopt(handle));
  }

  async list(): Promise<string[]> {
    const handles = new Set(this.#containers.keys());
    if (this.#persistent) {
      const names = await readdir(path.join(this.baseDir, '.meta')).catch(() => [] as string[]);
      for (const n of names) if (n.endsWith('.json')) handles.add(n.slice(0, -'.json'.length));
    }
    return [...handles].sort();
  }

  async destroy(handle: string): Promise<void> {
    if (!HANDLE_PATTERN.test(handle)) return;
    const container = this.#containers.get(handle) ?? (await this.#adopt(handle));
    if (!container) return;
    this.#containers.delete(handle);
    await container.killAll();
    await removeTree(container.root);
    if (this.#persistent) {
      await rm(this.#metaFile(handle), { force: true });
      await removeTree(this.#procsDir(handle)!);
    }
  }

  /** A container a previous agent left (persistent backends only). */
  async #adopt(handle: string): Promise<ProcessContainer | undefined> {
    if (!this.#persistent || !HANDLE_PATTERN.test(handle)) return undefined;
    let meta: ProcessMeta;
    try {
      meta = JSON.parse(await readFile(this.#metaFile(handle), 'utf8')) as ProcessMeta;
    } catch {
      return undefined;
    }
    const again = this.#containers.get(handle);
    if (again) return again;
    const container = new ProcessContainer(
      { handle, properties: meta.properties, env: meta.env },
      path.join(this.baseDir, handle),
      this.#outputDrainMs,
      this.#allocatePort,
      {
        procsDir: this.#procsDir(handle),
        save: (m) => writeFile(this.#metaFile(m.handle), JSON.stringify(m)),
        ports: meta.ports,
      },
    );
    this.#containers.set(handle, container);
    return container;
  }
}

class ProcessContainer implements Container {
  readonly handle: string;
  readonly properties: Readonly<Record<string, string>>;
  readonly root: string;
  readonly #env: EnvVar[];
  readonly #ports: PortMapping[] = [];
  readonly #processes = new Set<ChildProcessHandle | DetachedProcess>();
  readonly #outputDrainMs: number;
  readonly #allocatePort: () => Promise<number>;
  /** Persistent containers: where detached processes keep their files, and how the metadata is saved. */
  readonly #procsDir: string | undefined;
  readonly #save: ((m: ProcessMeta) => Promise<void>) | undefined;
  #execCounter = 0;

  constructor(
    spec: ContainerSpec,
    root: string,
    outputDrainMs: number,
    allocatePort: () => Promise<number>,
    persist: { procsDir?: string; save?: (m: ProcessMeta) => Promise<void>; ports?: PortMapping[] } = {},
  ) {
    this.handle = spec.handle;
    this.properties = { ...spec.properties };
    this.root = root;
    this.#env = [...(spec.env ?? [])];
    this.#outputDrainMs = outputDrainMs;
    this.#allocatePort = allocatePort;
    this.#procsDir = persist.procsDir;
    this.#save = persist.save;
    this.#ports.push(...(persist.ports ?? []));
  }

  /** Writes the metadata of a persistent container. */
  async save(): Promise<void> {
    await this.#save?.({ handle: this.handle, properties: { ...this.properties }, env: this.#env, ports: this.#ports });
  }

  async run(proc: ProcessSpec, io: ProcessIO): Promise<ProcessHandle> {
    const env = new Map<string, string>([['PATH', DEFAULT_PATH]]);
    for (const v of [...this.#env, ...(proc.env ?? [])]) env.set(v.name, v.value);
    rewritePort(env, this.#ports);

    // Garden's default working directory is the user's home (here: the container's root when it has none), and a
    // relative dir is relative to it.
    const home = resolveInRoot(this.root, homeOf(proc.user));
    const cwd = proc.dir
      ? resolveInRoot(this.root, path.posix.resolve(homeOf(proc.user), proc.dir))
      : (await isDirectory(home))
        ? home
        : this.root;
    if (!(await isDirectory(cwd))) throw new Error(`working directory ${proc.dir ?? '/'} does not exist`);

    let file = await this.#resolveExecutable(proc.path);
    let args = proc.args ?? [];
    if (this.#procsDir) {
      await mkdir(this.#procsDir, { recursive: true });
      const handle = await startDetached(
        { dir: this.#procsDir, drainMs: this.#outputDrainMs },
        `${Date.now().toString(36)}-${process.pid}-${++this.#execCounter}`,
        proc,
        plainExec(file, args, proc.limits?.nofile),
        io,
        proc.tag,
        { cwd, env: Object.fromEntries(env) },
      );
      this.#processes.add(handle);
      void handle.closed.then(() => this.#processes.delete(handle));
      return handle;
    }
    if (proc.limits?.nofile !== undefined) {
      args = ['-c', 'ulimit -n "$1" || exit 126; shift; exec "$@"', 'sh', String(proc.limits.nofile), file, ...args];
      file = '/bin/sh';
    }

    const child = spawn(file, args, {
      cwd,
      env: Object.fromEntries(env),
      detached: true,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    await new Promise<void>((resolve, reject) => {
      child.once('spawn', resolve);
      child.once('error', reject);
    });
    const handle = new ChildProcessHandle(child, io, this.#outputDrainMs);
    this.#processes.add(handle);
    // The group may outlive its leader: keep it for killAll until its pipes are closed too.
    void handle.closed.then(() => this.#processes.delete(handle));
    return handle;
  }

  async streamIn(dst: string, tar: Readable | Buffer, opts?: { user?: string }): Promise<void> {
    const dir = resolveInRoot(this.root, path.posix.resolve(homeOf(opts?.user), dst));
    await mkdir(dir, { recursive: true });
    await extractTar('tar', ['-x', '-f', '-', '-C', dir, '--no-same-owner'], undefined, tar, dst);
  }

  async streamOut(src: string, opts?: { user?: string }): Promise<Readable> {
    const target = resolveInRoot(this.root, path.posix.resolve(homeOf(opts?.user), src));
    await lstat(target); // rejects with ENOENT like Garden does for a missing path
    return createTar('tar', ['-c', '-f', '-', '-C', path.dirname(target), path.basename(target)], src);
  }

  info(): Promise<ContainerInfo> {
    return Promise.resolve({ ports: this.#ports.map((p) => ({ ...p })), events: [] });
  }

  /** CPU and resident memory of the container's live process groups (/proc); disk: its directory. */
  async usage(): Promise<ContainerUsage> {
    const { cpuNanos, memoryBytes } = await processGroupUsage([...this.#processes].map((p) => p.pid));
    return { cpuNanos, memoryBytes, diskBytes: await dirBytes(this.root) };
  }

  async netIn(containerPort: number, hostPort?: number): Promise<PortMapping> {
    const existing = this.#ports.find((p) => p.containerPort === containerPort);
    if (existing && (hostPort === undefined || hostPort === existing.hostPort)) return { ...existing };
    const mapping = { containerPort, hostPort: hostPort ?? (await this.#allocatePort()) };
    this.#ports.push(mapping);
    await this.save();
    return { ...mapping };
  }

  processes(): Promise<ProcessRecord[]> {
    return this.#procsDir ? listDetached(this.#procsDir) : Promise.resolve([]);
  }

  async attach(id: string, io: ProcessIO): Promise<ProcessHandle> {
    if (!this.#procsDir) throw new Error('this process backend keeps no processes to attach to (persistent: false)');
    const handle = await attachDetached({ dir: this.#procsDir, drainMs: this.#outputDrainMs }, id, io);
    this.#processes.add(handle);
    void handle.closed.then(() => this.#processes.delete(handle));
    return handle;
  }

  /** SIGKILLs every process group of the container and waits (briefly) for the leaders to exit. */
  async killAll(): Promise<void> {
    const all = [...this.#processes];
    for (const p of all) p.signal('SIGKILL');
    // Processes a previous agent started (persistent containers): their groups, by the recorded pid.
    for (const r of await this.processes()) {
      if (r.exitStatus === undefined && !all.some((p) => p.pid === r.pid)) killGroup(r.pid);
    }
    await Promise.race([Promise.all(all.map((p) => p.wait())), delay(2000)]);
  }

  async #resolveExecutable(file: string): Promise<string> {
    if (path.isAbsolute(file)) {
      const inside = resolveInRoot(this.root, file);
      if (await isFile(inside)) return inside;
    }
    return file;
  }
}

class ChildProcessHandle implements ProcessHandle {
  readonly pid: number;
  /** Resolves once stdout and stderr are closed (everything in the group that held them has exited). */
  readonly closed: Promise<void>;
  readonly #exited: Promise<number>;
  readonly #waited: Promise<number>;

  constructor(child: ChildProcess, io: ProcessIO, outputDrainMs: number) {
    if (child.pid === undefined) throw new Error('spawned process has no pid');
    this.pid = child.pid;
    const out = new LineSplitter((line) => io.stdout(line));
    const err = new LineSplitter((line) => io.stderr(line));
    child.stdout?.on('data', (chunk: Buffer) => out.write(chunk));
    child.stderr?.on('data', (chunk: Buffer) => err.write(chunk));
    this.#exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => resolve(code ?? 128 + (signal ? (osConstants.signals[signal] ?? 0) : 0)));
    });
    this.closed = new Promise((resolve) => {
      child.once('close', () => {
        out.end();
        err.end();
        resolve();
      });
    });
    this.#waited = this.#exited.then(async (status) => {
      await Promise.race([this.closed, delay(outputDrainMs)]);
      return status;
    });
  }

  wait(): Promise<number> {
    return this.#waited;
  }

  signal(sig: ProcessSignal): void {
    try {
      process.kill(-this.pid, sig);
    } catch (err) {
      // ESRCH: the whole group is gone already.
      if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
    }
  }
}

/** Maps a container path onto the container directory; '..' cannot climb above it. */
export function resolveInRoot(root: string, p: string): string {
  return path.join(root, path.posix.resolve('/', p));
}

/** A port that was free a moment ago (another process may take it before we use it). */
export async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, resolve);
  });
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === 'string') throw new Error('could not allocate a port');
  return address.port;
}

async function isDirectory(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isDirectory(),
    () => false,
  );
}

async function isFile(p: string): Promise<boolean> {
  return stat(p).then(
    (s) => s.isFile(),
    () => false,
  );
}

export function exitCode(child: ChildProcess): Promise<number> {
  return new Promise((resolve) => {
    child.once('error', () => resolve(-1));
    child.once('close', (code) => resolve(code ?? -1));
  });
}

export async function collect(stream: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks).toString('utf8');
}

export function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms).unref());
}

/**
 * Where a relative path of a user's starts (Garden: the user's home). There is no /etc/passwd here: root's home is
 * /root and any other user's /home/<user>, as in the stacks' passwd files (vcap: /home/vcap).
 */
function homeOf(user: string | undefined): string {
  return !user || user === 'root' || user === '0' ? '/root' : `/home/${user}`;
}
