// What the runc and containerd backends (and, for ports and process groups, the process backend) do the same
// way, kept in one place: per-handle create/destroy serialization with re-adoption on lookup, the handles among
// a runtime's container ids, port mappings (netIn, PORT rewriting, info()), the detached processes a container
// started, and small command helpers. Each backend keeps its own runtime specifics (runc bundles, ctr labels).
import { execFile } from 'node:child_process';
import { readFile, rm } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import { CniNetwork, type CniResult } from './cni.ts';
import { attachDetached, listDetached, type DetachedOptions, type DetachedProcess } from './detached.ts';
import { HANDLE_PATTERN, type ContainerInfo, type PortMapping, type ProcessIO, type ProcessRecord } from './types.ts';

/**
 * A backend's known containers by handle, and the handles being created or destroyed, so concurrent calls for
 * one handle do not interleave and a lookup does not adopt a container that is half made or half gone.
 */
export class ContainerTable<C> {
  readonly #known = new Map<string, C>();
  readonly #busy = new Map<string, Promise<unknown>>();

  get(handle: string): C | undefined {
    return this.#known.get(handle);
  }

  set(handle: string, container: C): void {
    this.#known.set(handle, container);
  }

  delete(handle: string): void {
    this.#known.delete(handle);
  }

  values(): C[] {
    return [...this.#known.values()];
  }

  /** Runs `work` unless the handle is invalid, known or busy; other calls for the handle wait for it. */
  async create(handle: string, work: () => Promise<C>): Promise<C> {
    if (!HANDLE_PATTERN.test(handle)) throw new Error(`invalid container handle '${handle}'`);
    if (this.#known.has(handle) || this.#busy.has(handle)) throw new Error(`handle already exists: ${handle}`);
    return this.#run(handle, work());
  }

  /** Runs `work` once a create or destroy of the handle in progress has settled; invalid handles are ignored. */
  async destroy(handle: string, work: () => Promise<void>): Promise<void> {
    if (!HANDLE_PATTERN.test(handle)) return;
    const pending = this.#busy.get(handle);
    if (pending) await pending.catch(() => {});
    await this.#run(handle, work());
  }

  /**
   * A known container, or one of a previous agent that `adopt` finds in the runtime (then it is known from now
   * on, unless a concurrent lookup adopted it first).
   */
  async lookup(handle: string, adopt: () => Promise<C | undefined>): Promise<C | undefined> {
    const known = this.#known.get(handle);
    if (known) return known;
    if (!HANDLE_PATTERN.test(handle) || this.#busy.has(handle)) return undefined;
    const found = await adopt();
    if (!found) return undefined;
    const again = this.#known.get(handle);
    if (again) return again;
    this.#known.set(handle, found);
    return found;
  }

  async #run<T>(handle: string, work: Promise<T>): Promise<T> {
    this.#busy.set(handle, work);
    try {
      return await work;
    } finally {
      this.#busy.delete(handle);
    }
  }
}

/** The handles among a runtime's container ids: ours (with `prefix`) and valid, sorted. */
export function handlesOf(ids: string[], prefix: string): string[] {
  return ids
    .filter((id) => id.startsWith(prefix))
    .map((id) => id.slice(prefix.length))
    .filter((handle) => HANDLE_PATTERN.test(handle))
    .sort();
}

/** A container's initial port mappings: one per container port of spec.netIn, free host ports where not given. */
export async function initialPorts(
  netIn: { containerPort: number; hostPort?: number }[] | undefined,
  allocatePort: () => Promise<number>,
): Promise<PortMapping[]> {
  const ports: PortMapping[] = [];
  for (const p of netIn ?? []) {
    if (ports.some((q) => q.containerPort === p.containerPort)) continue;
    ports.push({ containerPort: p.containerPort, hostPort: p.hostPort ?? (await allocatePort()) });
  }
  return ports;
}

/** What the runc and containerd backends remember of a container's network. */
export interface NetworkMeta {
  ports: PortMapping[];
  /** The CNI result when the container has its own network namespace. */
  network?: CniResult;
}

/**
 * netIn for a container whose mappings are in `meta`: an existing mapping is returned as it is; otherwise the
 * container port is (re)mapped (portmap rules updated when it has its own network namespace), `meta.ports`
 * changes and `save` persists it.
 */
export async function mapPort(
  target: { id: string; meta: NetworkMeta; network: CniNetwork | undefined; allocatePort: () => Promise<number> },
  containerPort: number,
  hostPort: number | undefined,
  save: (ports: PortMapping[]) => Promise<unknown>,
): Promise<PortMapping> {
  const { meta } = target;
  const existing = meta.ports.find((p) => p.containerPort === containerPort);
  if (existing && (hostPort === undefined || hostPort === existing.hostPort)) return { ...existing };
  const mapping = { containerPort, hostPort: hostPort ?? (await target.allocatePort()) };
  const ports = [...meta.ports.filter((p) => p.containerPort !== containerPort), mapping];
  if (target.network && meta.network) await target.network.setPorts(target.id, meta.ports, ports, meta.network);
  meta.ports = ports;
  await save(ports);
  return { ...mapping };
}

/** Number of OOM kills in the container's memory cgroup (cgroup v1 memory.oom_control, v2 memory.events). */
async function oomKills(id: string): Promise<number> {
  for (const [file, key] of [
    [`/sys/fs/cgroup/memory/${id}/memory.oom_control`, 'oom_kill'],
    [`/sys/fs/cgroup/${id}/memory.events`, 'oom_kill'],
  ] as const) {
    try {
      const text = await readFile(file, 'utf8');
      const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
      return m ? Number(m[1]) : 0;
    } catch {
      // not this cgroup version
    }
  }
  return 0;
}

/** info() of a cgroup-limited container: its address and ports, and 'out of memory' (plus `more`) as events. */
export async function networkInfo(id: string, meta: NetworkMeta, more?: string): Promise<ContainerInfo> {
  const events = (await oomKills(id)) > 0 ? ['out of memory'] : [];
  if (more) events.push(more);
  const ip = CniNetwork.address(meta.network);
  return { ...(ip ? { ip } : {}), ports: meta.ports.map((p) => ({ ...p })), events };
}

/**
 * On the host network a process must listen on the host port: PORT (the process's, else `inherited`, else the
 * first mapping's container port) becomes the host port of its mapping.
 */
export function rewritePort(env: Map<string, string>, ports: PortMapping[], inherited?: string): void {
  const port = env.get('PORT') ?? inherited;
  const mapping = port === undefined ? ports[0] : ports.find((p) => String(p.containerPort) === port.trim());
  if (mapping) env.set('PORT', String(mapping.hostPort));
}

/** SIGKILLs the process group led by `pid` (or the process alone when it leads none); gone already is fine. */
export function killGroup(pid: number): void {
  for (const target of [-pid, pid]) {
    try {
      process.kill(target, 'SIGKILL');
      return;
    } catch {
      // gone already
    }
  }
}

/** The detached processes (detached.ts) a container started or re-attached to, kept in one directory. */
export class DetachedSet {
  readonly options: DetachedOptions;
  readonly #processes = new Set<DetachedProcess>();

  constructor(dir: string, drainMs: number) {
    this.options = { dir, drainMs };
  }

  /** Keeps `handle` until its output is closed. */
  track(handle: DetachedProcess): DetachedProcess {
    this.#processes.add(handle);
    void handle.closed.then(() => this.#processes.delete(handle));
    return handle;
  }

  list(): Promise<ProcessRecord[]> {
    return listDetached(this.options.dir);
  }

  async attach(id: string, io: ProcessIO): Promise<DetachedProcess> {
    return this.track(await attachDetached(this.options, id, io));
  }

  /** Waits (at most `ms`) for the processes to exit. */
  async waitAll(ms: number): Promise<void> {
    await Promise.race([Promise.all([...this.#processes].map((p) => p.wait())), sleep(ms, undefined, { ref: false })]);
  }
}

/** Runs a host command; resolves with its stdout, rejects with its stderr (or the spawn error). */
export function command(file: string, args: string[]): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(file, args, { encoding: 'utf8' }, (err, stdout: string, stderr: string) => {
      if (err) reject(new Error(`${file} ${args.join(' ')}: ${stderr.trim() || err.message}`, { cause: err }));
      else resolve(stdout);
    });
  });
}

/**
 * Removes a container's directory tree. A process killed just before may still have its wrapper write the exit
 * status file while the tree is being removed (ENOTEMPTY): Node retries such errors with a short linear backoff.
 */
export function removeTree(dir: string): Promise<void> {
  return rm(dir, { recursive: true, force: true, maxRetries: 10, retryDelay: 20 });
}
