// The OCI runtime config (config.json) the runc backend writes into each bundle. Defaults follow `runc spec`
// (mounts, capabilities, masked and read-only paths, devices) with our changes:
//
// * The init process is a long-lived shell that exits on SIGTERM; every real process is a `runc exec`.
// * Namespaces: pid, ipc, uts, mount, and the CNI network namespace when given (else the host network).
// * /tmp is not a tmpfs: it is part of the writable rootfs, so the host sees what processes write there.
// * Resources: memory limit, pids limit and cpu shares, which runc applies on cgroup v1 and v2 alike.
import type { BindMount, ContainerLimits } from './types.ts';

export const INIT_ARGS = ['/bin/sh', '-c', 'trap "exit 0" TERM; while :; do sleep 3600 & wait; done'];

/** Garden/Diego cpu shares are bounded by the kernel's minimum of 2. */
const MIN_CPU_SHARES = 2;

export interface OciProcess {
  terminal: boolean;
  user: { uid: number; gid: number; additionalGids?: number[] };
  args: string[];
  env: string[];
  cwd: string;
  capabilities: Record<'bounding' | 'effective' | 'permitted' | 'ambient', string[]>;
  rlimits: { type: string; hard: number; soft: number }[];
  noNewPrivileges: boolean;
}

export interface OciMount {
  destination: string;
  type: string;
  source: string;
  options?: string[];
}

export interface OciConfig {
  ociVersion: string;
  process: OciProcess;
  root: { path: string; readonly: boolean };
  hostname: string;
  mounts: OciMount[];
  annotations: Record<string, string>;
  linux: {
    cgroupsPath: string;
    resources: {
      devices: { allow: boolean; access: string }[];
      memory?: { limit: number };
      pids?: { limit: number };
      cpu?: { shares: number };
    };
    namespaces: { type: string; path?: string }[];
    maskedPaths: string[];
    readonlyPaths: string[];
  };
}

const DEFAULT_CAPS = ['CAP_AUDIT_WRITE', 'CAP_KILL', 'CAP_NET_BIND_SERVICE'];
/** Garden's privileged containers get the full set runc knows by default for root. */
const PRIVILEGED_CAPS = [
  ...DEFAULT_CAPS,
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SETPCAP',
  'CAP_SYS_CHROOT',
  'CAP_MKNOD',
  'CAP_NET_RAW',
  'CAP_SYS_ADMIN',
];
/** Unprivileged Garden containers keep the caps a buildpack app needs to run as root inside. */
const UNPRIVILEGED_CAPS = [
  ...DEFAULT_CAPS,
  'CAP_CHOWN',
  'CAP_DAC_OVERRIDE',
  'CAP_FOWNER',
  'CAP_FSETID',
  'CAP_SETGID',
  'CAP_SETUID',
  'CAP_SYS_CHROOT',
];

export interface BuildConfigOptions {
  rootfs: string;
  hostname: string;
  cgroupsPath: string;
  env: string[];
  limits?: ContainerLimits;
  bindMounts?: BindMount[];
  privileged?: boolean;
  annotations?: Record<string, string>;
  /** A network namespace to join (CNI); without it the container shares the host network. */
  netnsPath?: string;
}

export function capabilities(privileged: boolean | undefined): OciProcess['capabilities'] {
  const caps = privileged ? PRIVILEGED_CAPS : UNPRIVILEGED_CAPS;
  return { bounding: [...caps], effective: [...caps], permitted: [...caps], ambient: [] };
}

export function buildOciConfig(opts: BuildConfigOptions): OciConfig {
  const resources: OciConfig['linux']['resources'] = { devices: [{ allow: false, access: 'rwm' }] };
  const limits = opts.limits ?? {};
  if (limits.memoryMb !== undefined && limits.memoryMb > 0) resources.memory = { limit: limits.memoryMb * 1024 * 1024 };
  if (limits.pids !== undefined && limits.pids > 0) resources.pids = { limit: limits.pids };
  if (limits.cpuWeight !== undefined && limits.cpuWeight > 0) {
    resources.cpu = { shares: Math.max(MIN_CPU_SHARES, Math.round(limits.cpuWeight)) };
  }
  return {
    ociVersion: '1.0.2-dev',
    process: {
      terminal: false,
      user: { uid: 0, gid: 0 },
      args: [...INIT_ARGS],
      env: [...opts.env],
      cwd: '/',
      capabilities: capabilities(opts.privileged),
      rlimits: [{ type: 'RLIMIT_NOFILE', hard: 1024, soft: 1024 }],
      noNewPrivileges: true,
    },
    root: { path: opts.rootfs, readonly: false },
    hostname: opts.hostname.slice(0, 63),
    mounts: [
      { destination: '/proc', type: 'proc', source: 'proc' },
      {
        destination: '/dev',
        type: 'tmpfs',
        source: 'tmpfs',
        options: ['nosuid', 'strictatime', 'mode=755', 'size=65536k'],
      },
      {
        destination: '/dev/pts',
        type: 'devpts',
        source: 'devpts',
        options: ['nosuid', 'noexec', 'newinstance', 'ptmxmode=0666', 'mode=0620', 'gid=5'],
      },
      {
        destination: '/dev/shm',
        type: 'tmpfs',
        source: 'shm',
        options: ['nosuid', 'noexec', 'nodev', 'mode=1777', 'size=65536k'],
      },
      { destination: '/dev/mqueue', type: 'mqueue', source: 'mqueue', options: ['nosuid', 'noexec', 'nodev'] },
      { destination: '/sys', type: 'sysfs', source: 'sysfs', options: ['nosuid', 'noexec', 'nodev', 'ro'] },
      {
        destination: '/sys/fs/cgroup',
        type: 'cgroup',
        source: 'cgroup',
        options: ['nosuid', 'noexec', 'nodev', 'relatime', 'ro'],
      },
      ...(opts.bindMounts ?? []).map((m) => ({
        destination: m.dstPath,
        type: 'bind',
        source: m.srcPath,
        options: ['rbind', m.mode === 'ro' ? 'ro' : 'rw'],
      })),
    ],
    annotations: { ...opts.annotations },
    linux: {
      cgroupsPath: opts.cgroupsPath,
      resources,
      namespaces: [
        { type: 'pid' },
        { type: 'ipc' },
        { type: 'uts' },
        { type: 'mount' },
        ...(opts.netnsPath ? [{ type: 'network', path: opts.netnsPath }] : []),
      ],
      maskedPaths: [
        '/proc/acpi',
        '/proc/asound',
        '/proc/kcore',
        '/proc/keys',
        '/proc/latency_stats',
        '/proc/timer_list',
        '/proc/timer_stats',
        '/proc/sched_debug',
        '/sys/firmware',
        '/proc/scsi',
      ],
      readonlyPaths: ['/proc/bus', '/proc/fs', '/proc/irq', '/proc/sys', '/proc/sysrq-trigger'],
    },
  };
}
