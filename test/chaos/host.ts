// What runs on the host, seen from the host: every process of a chaos run carries CHAOS_RUN=<run id> in its
// environment (the apps' and tasks' environmentVariables), so /proc tells which app instance or task it belongs
// to, whichever backend started it (the process backend's processes are plain host processes; a runc
// container's processes are host processes in other namespaces). The instance index and guid come from the
// INSTANCE_INDEX / INSTANCE_GUID variables the rep gives every instance. A run of a task is told apart by its
// container's mount namespace (runc) or else by the oldest process of the run (monitor.ts follows parents).
// Tasks on the process backend also append "start|end <task guid> <pid> <dir>" to a marker file on the host.
import { readdirSync, readFileSync, readlinkSync } from 'node:fs';

const HOST_MNT_NS = readlinkSync('/proc/self/ns/mnt');

export interface HostProcess {
  pid: number;
  ppid: number;
  sid: number;
  /** Its mount namespace when not the host's (a runc container's), else ''. */
  mntns: string;
  kind: 'lrp' | 'task';
  /** processGuid or taskGuid. */
  id: string;
  index?: number;
  instanceGuid?: string;
}

export interface HostSample {
  at: number;
  processes: HostProcess[];
  /** `${processGuid}/${index}` → instance guid → pids. */
  instances: Map<string, Map<string, number[]>>;
  /** task guid → its processes alive now. */
  taskProcesses: Map<string, HostProcess[]>;
}

export const instanceKey = (processGuid: string, index: number): string => `${processGuid}/${index}`;

/** Every live process of run `runId` (zombies left out). */
export function scanHost(runId: string): HostSample {
  const needle = Buffer.from(`CHAOS_RUN=${runId}\0`);
  const processes: HostProcess[] = [];
  let pids: string[];
  try {
    pids = readdirSync('/proc').filter((n) => /^\d+$/.test(n));
  } catch {
    pids = [];
  }
  for (const p of pids) {
    const pid = Number(p);
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue; // gone, or a kernel thread
    }
    if (env.indexOf(needle) < 0) continue;
    const stat = statOf(pid);
    if (!stat || stat.state === 'Z' || stat.state === 'X') continue;
    const vars = parseEnv(env);
    const kind = vars.get('CHAOS_KIND') === 'task' ? 'task' : 'lrp';
    const index = vars.get('INSTANCE_INDEX');
    let mntns = '';
    try {
      const ns = readlinkSync(`/proc/${pid}/ns/mnt`);
      if (ns !== HOST_MNT_NS) mntns = ns;
    } catch {
      // gone
    }
    processes.push({
      pid,
      ppid: stat.ppid,
      sid: stat.sid,
      mntns,
      kind,
      id: vars.get('CHAOS_ID') ?? '',
      index: index === undefined ? undefined : Number(index),
      instanceGuid: vars.get('INSTANCE_GUID'),
    });
  }
  const instances = new Map<string, Map<string, number[]>>();
  const taskProcesses = new Map<string, HostProcess[]>();
  for (const hp of processes) {
    if (hp.kind === 'lrp' && hp.index !== undefined && hp.instanceGuid) {
      const key = instanceKey(hp.id, hp.index);
      const guids = instances.get(key) ?? new Map<string, number[]>();
      guids.set(hp.instanceGuid, [...(guids.get(hp.instanceGuid) ?? []), hp.pid]);
      instances.set(key, guids);
    } else if (hp.kind === 'task') {
      taskProcesses.set(hp.id, [...(taskProcesses.get(hp.id) ?? []), hp]);
    }
  }
  return { at: Date.now(), processes, instances, taskProcesses };
}

function parseEnv(buf: Buffer): Map<string, string> {
  const vars = new Map<string, string>();
  for (const kv of buf.toString('utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0 && (kv.startsWith('CHAOS_') || kv.startsWith('INSTANCE_'))) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return vars;
}

function statOf(pid: number): { state: string; ppid: number; pgrp: number; sid: number } | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const f = s.slice(s.lastIndexOf(')') + 2).split(' ');
    return { state: f[0] ?? '', ppid: Number(f[1]), pgrp: Number(f[2]), sid: Number(f[3]) };
  } catch {
    return undefined;
  }
}

/**
 * SIGKILLs every process of the run (their process groups too). With `ownerDead`, every process of any run whose
 * harness (CHAOS_OWNER) is no longer alive: what a killed harness left behind. Returns the pids killed.
 */
export function killRunProcesses(runId: string | { ownerDead: true }): number[] {
  const killed: number[] = [];
  const needle = typeof runId === 'string' ? Buffer.from(`CHAOS_RUN=${runId}\0`) : Buffer.from('CHAOS_OWNER=');
  for (const p of readdirSafe('/proc')) {
    if (!/^\d+$/.test(p)) continue;
    const pid = Number(p);
    let env: Buffer;
    try {
      env = readFileSync(`/proc/${pid}/environ`);
    } catch {
      continue;
    }
    if (env.indexOf(needle) < 0) continue;
    if (typeof runId !== 'string') {
      const owner = Number(parseEnvAll(env).get('CHAOS_OWNER'));
      if (!(owner > 0) || alive(owner)) continue;
    }
    const stat = statOf(pid);
    for (const target of [stat && stat.pgrp > 1 ? -stat.pgrp : undefined, pid]) {
      if (target === undefined) continue;
      try {
        process.kill(target, 'SIGKILL');
      } catch {
        // gone
      }
    }
    killed.push(pid);
  }
  return killed;
}

function parseEnvAll(buf: Buffer): Map<string, string> {
  const vars = new Map<string, string>();
  for (const kv of buf.toString('utf8').split('\0')) {
    const i = kv.indexOf('=');
    if (i > 0) vars.set(kv.slice(0, i), kv.slice(i + 1));
  }
  return vars;
}

function readdirSafe(dir: string): string[] {
  try {
    return readdirSync(dir);
  } catch {
    return [];
  }
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
  const s = statOf(pid);
  return s !== undefined && s.state !== 'Z';
}

export interface MarkerRun {
  pid: number;
  /** The directory the task's shell ran in (the container directory names the cell). */
  dir: string;
  startedAt: number;
  endedAt?: number;
}

/**
 * The task runs recorded in a marker file: lines `start <guid> <pid> <dir>` and `end <guid> <pid>`, appended
 * by the tasks themselves (each line is one small O_APPEND write). `seen` keeps first-seen times across calls.
 */
export class MarkerFile {
  readonly path: string;
  readonly #runs = new Map<string, Map<number, MarkerRun>>();
  #offset = 0;

  constructor(path: string) {
    this.path = path;
  }

  /** Reads what was appended since the last call. */
  refresh(): void {
    let buf: Buffer;
    try {
      buf = readFileSync(this.path);
    } catch {
      return;
    }
    const end = buf.lastIndexOf(0x0a) + 1; // only whole lines
    if (end <= this.#offset) return;
    const text = buf.subarray(this.#offset, end).toString('utf8');
    this.#offset = end;
    const now = Date.now();
    for (const line of text.split('\n')) {
      const [what, guid, pidText, ...dir] = line.trim().split(' ');
      if (!guid || !pidText || (what !== 'start' && what !== 'end')) continue;
      const pid = Number(pidText);
      const runs = this.#runs.get(guid) ?? new Map<number, MarkerRun>();
      this.#runs.set(guid, runs);
      const run = runs.get(pid) ?? { pid, dir: dir.join(' '), startedAt: now };
      if (what === 'end') run.endedAt = now;
      runs.set(pid, run);
    }
  }

  runs(taskGuid: string): MarkerRun[] {
    return [...(this.#runs.get(taskGuid)?.values() ?? [])];
  }

  guids(): string[] {
    return [...this.#runs.keys()];
  }
}
