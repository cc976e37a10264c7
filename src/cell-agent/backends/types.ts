// The container backend: our Garden. The executor knows only this interface; it never learns whether a
// container is a directory with child processes (process.ts), an OCI bundle run by runc in its own network
// namespace, or a containerd task. Shapes follow Garden's API (code.cloudfoundry.org/garden client.go,
// container.go, process.go) trimmed to what the executor uses.
import type { Readable } from 'node:stream';

/** One environment variable; later entries win over earlier ones with the same name. */
export interface EnvVar {
  name: string;
  value: string;
}

/** Container-wide limits (Garden's Limits). A backend that cannot enforce one ignores it and says so in its docs. */
export interface ContainerLimits {
  memoryMb?: number;
  diskMb?: number;
  /** Maximum processes/threads in the container (pids cgroup). */
  pids?: number;
  /** CPU shares (the executor turns Diego's weight 1–100 into shares of container_max_cpu_shares 1024). */
  cpuWeight?: number;
}

/** A host path made visible inside the container (Diego bind-mounts cached dependencies this way). */
export interface BindMount {
  srcPath: string;
  dstPath: string;
  mode: 'ro' | 'rw';
}

export interface PortMapping {
  containerPort: number;
  hostPort: number;
}

/**
 * Traffic a container may send (Garden's NetOutRule; the executor makes them from Diego's egress rules with
 * egressFromSecurityGroups in egress.ts). A container sends nothing else, except replies to connections made to
 * it (see ContainerBackend.enforcesEgress for which backends enforce this).
 */
export interface EgressRule {
  protocol: 'tcp' | 'udp' | 'icmp' | 'icmpv6' | 'all';
  /** Destination address ranges, inclusive (IPv4 or IPv6 text; start = end for one address). Absent or empty: any. */
  networks?: { start: string; end: string }[];
  /** Destination port ranges, inclusive (tcp and udp only). Absent or empty: any port. */
  ports?: { start: number; end: number }[];
  /** ICMP type and code (icmp and icmpv6 only). Absent: any; type 255 or code 255 (Diego's -1): any type or code. */
  icmp?: { type: number; code?: number };
  /** Log the first packet of each connection this rule allows (iptables LOG, prefixed with the handle). */
  log?: boolean;
}

export interface ContainerSpec {
  /** Unique name of the container on this cell; Diego uses the instance guid. Letters, digits, '_' and '-'. */
  handle: string;
  /** Root filesystem URL ('preloaded:cflinuxfs4', 'docker:///busybox'); backends without images ignore it. */
  rootfs?: string;
  /**
   * Registry credentials for pulling a docker:// rootfs (Diego's imageUsername/imagePassword), used only when the
   * image is not on the cell yet. Never logged, never in an error message or a process's arguments.
   */
  imageCredentials?: { username: string; password: string };
  /** Environment of every process in the container; a process's own env overrides it. */
  env?: EnvVar[];
  limits?: ContainerLimits;
  /** Ports to expose at creation (Diego maps every desired port when it creates the container). */
  netIn?: { containerPort: number; hostPort?: number }[];
  bindMounts?: BindMount[];
  /** Free-form labels kept with the container (Garden properties); the executor stores its own keys here. */
  properties?: Record<string, string>;
  privileged?: boolean;
  /**
   * What the container may send (Diego's egress rules, as EgressRule) besides the backend's default rules;
   * nothing else leaves it, and absent or empty means only the defaults. Backends that cannot enforce it
   * (enforcesEgress false) accept it and let everything through.
   */
  egress?: EgressRule[];
}

export interface ProcessSpec {
  /** Executable; resolved inside the container (how exactly is the backend's business). */
  path: string;
  args?: string[];
  /** Working directory inside the container; default: the container's root (process backend) or '/'. */
  dir?: string;
  /** Added to, and overriding, the container's env. */
  env?: EnvVar[];
  /** User to run as inside the container; backends without users ignore it. */
  user?: string;
  limits?: { nofile?: number };
  /**
   * A label kept with the process (the rep tags the long-running action's processes), listed by
   * Container.processes() so a restarted agent can find and re-attach to them.
   */
  tag?: string;
}

/** A process a container has started (possibly under a previous agent), as Container.processes() lists it. */
export interface ProcessRecord {
  /** Backend-chosen id, for attach(). */
  id: string;
  pid: number;
  tag?: string;
  /** The exit status once it has exited. */
  exitStatus?: number;
}

/** Resource usage of a container (Diego's container metrics). */
export interface ContainerUsage {
  memoryBytes: number;
  /** CPU time used since the container started, in nanoseconds. */
  cpuNanos: number;
  /** Bytes written to the container's own filesystem (its writable layer). */
  diskBytes: number;
}

/** Where a process's output goes, already split into lines (without the trailing newline). */
export interface ProcessIO {
  stdout(line: string): void;
  stderr(line: string): void;
}

export type ProcessSignal = 'SIGTERM' | 'SIGKILL';

export interface ProcessHandle {
  /** Host pid of the process (for runc/containerd: of the process as seen from the host). */
  readonly pid: number;
  /** Resolves with the exit status once the process has exited (128 + n when killed by signal n). */
  wait(): Promise<number>;
  /** Signals the process and everything it started (its process group). Never throws for an exited process. */
  signal(sig: ProcessSignal): void;
}

export interface ContainerInfo {
  /**
   * Address the cell reaches the container at, when the container has its own network namespace.
   * Undefined when it shares the host network (process backend): then a process listens on the *host*
   * port of a mapping, and checks dial 127.0.0.1:hostPort.
   */
  ip?: string;
  ports: PortMapping[];
  /** Garden events such as 'out of memory'; the run step appends "(out of memory)" to exit errors. */
  events?: string[];
}

export interface Container {
  readonly handle: string;
  readonly properties: Readonly<Record<string, string>>;
  /** Starts a process; rejects when it cannot be started (missing executable, bad dir). */
  run(proc: ProcessSpec, io: ProcessIO): Promise<ProcessHandle>;
  /** Extracts a tar archive (stream or bytes) into the directory `path` of the container, creating it. */
  streamIn(path: string, tar: Readable | Buffer, opts?: { user?: string }): Promise<void>;
  /**
   * A tar archive of `path` (a file or a directory) in the container, as Garden's StreamOut. A stream rather
   * than a Buffer because droplets are hundreds of MB; rejects when `path` does not exist.
   */
  streamOut(path: string, opts?: { user?: string }): Promise<Readable>;
  info(): Promise<ContainerInfo>;
  /** Exposes a container port; the host port is chosen by the backend unless given. */
  netIn(containerPort: number, hostPort?: number): Promise<PortMapping>;
  /**
   * The processes started in this container, also by a previous agent (backends whose processes outlive the
   * agent: runc). Absent where processes die with the agent.
   */
  processes?(): Promise<ProcessRecord[]>;
  /** Re-attaches to a process listed by processes(): output from now on goes to `io`; wait() gives its status. */
  attach?(id: string, io: ProcessIO): Promise<ProcessHandle>;
  /** Current resource usage; absent where the backend cannot measure it. */
  usage?(): Promise<ContainerUsage>;
  /**
   * The container's network namespace as a path setns(2) takes (`nsenter --net=<path>`), when it has one of its
   * own (runc and containerd with CNI); absent on the host network. For host helpers that serve inside the
   * container's network: the container proxy (executor/proxy.ts).
   */
  readonly netnsPath?: string;
}

export interface ContainerBackend {
  /**
   * True when the backend enforces ContainerSpec.egress (runc and containerd with container networking: host
   * iptables rules per container). Absent or false: containers can send anything, whatever their egress rules
   * say (the process backend, and runc or containerd on the host network); the caller should say so.
   */
  readonly enforcesEgress?: boolean;
  /** Rejects when the handle is taken or the spec cannot be honoured. */
  create(spec: ContainerSpec): Promise<Container>;
  lookup(handle: string): Promise<Container | undefined>;
  list(): Promise<string[]>;
  /** Kills every process of the container and removes it; destroying an unknown handle is not an error. */
  destroy(handle: string): Promise<void>;
}

/** Garden's rule for handles, and Diego's for guids. */
export const HANDLE_PATTERN = /^[a-zA-Z0-9_-]{1,255}$/;
