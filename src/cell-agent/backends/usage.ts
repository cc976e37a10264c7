// What a container uses right now — CPU time, memory, disk — read from the kernel the way Garden's Metrics
// does for Diego's container metrics: the container's cgroups for runc (v1 controllers first, as on our
// machines, then the v2 unified names), /proc for plain processes, and the blocks of the files a container
// wrote for disk.
import { execFileSync } from 'node:child_process';
import { lstat, readdir, readFile } from 'node:fs/promises';
import path from 'node:path';
import type { ContainerUsage } from './types.ts';

// Memory is what counts against the limit: usage without the inactive page cache (Garden's
// TotalUsageTowardLimit). CPU is the time used since the container started (Diego's absolute_usage).
export type { ContainerUsage };

async function readText(file: string): Promise<string | undefined> {
  try {
    return await readFile(file, 'utf8');
  } catch {
    return undefined;
  }
}

function statField(text: string | undefined, key: string): number | undefined {
  if (text === undefined) return undefined;
  const m = new RegExp(`^${key} (\\d+)$`, 'm').exec(text);
  return m ? Number(m[1]) : undefined;
}

/** CPU ns and memory bytes of the cgroup `/<id>` (v1: cpuacct + memory controllers; v2: the unified group). */
export async function cgroupUsage(
  id: string,
  root = '/sys/fs/cgroup',
): Promise<{ cpuNanos: number; memoryBytes: number }> {
  const v1Cpu = await readText(path.join(root, 'cpuacct', id, 'cpuacct.usage'));
  const v1Mem = await readText(path.join(root, 'memory', id, 'memory.usage_in_bytes'));
  if (v1Cpu !== undefined || v1Mem !== undefined) {
    const inactive =
      statField(await readText(path.join(root, 'memory', id, 'memory.stat')), 'total_inactive_file') ?? 0;
    const usage = Number(v1Mem?.trim() ?? 0);
    return {
      cpuNanos: Number(v1Cpu?.trim() ?? 0),
      memoryBytes: Math.max(0, usage - (inactive < usage ? inactive : 0)),
    };
  }
  const usec = statField(await readText(path.join(root, id, 'cpu.stat')), 'usage_usec') ?? 0;
  const current = Number((await readText(path.join(root, id, 'memory.current')))?.trim() ?? 0);
  const inactive = statField(await readText(path.join(root, id, 'memory.stat')), 'inactive_file') ?? 0;
  return { cpuNanos: usec * 1000, memoryBytes: Math.max(0, current - (inactive < current ? inactive : 0)) };
}

let sysconf: { clockTicks: number; pageSize: number } | undefined;
function kernelUnits(): { clockTicks: number; pageSize: number } {
  if (!sysconf) {
    const get = (name: string, fallback: number) => {
      try {
        return Number(execFileSync('getconf', [name], { encoding: 'utf8' }).trim()) || fallback;
      } catch {
        return fallback;
      }
    };
    sysconf = { clockTicks: get('CLK_TCK', 100), pageSize: get('PAGESIZE', 4096) };
  }
  return sysconf;
}

/**
 * CPU ns and resident memory of every live process in the given process groups (the process backend's
 * containers are process groups). CPU of processes already reaped by someone outside the groups is lost, so
 * the figure can go down when a process exits; the children a process waited for are counted.
 */
export async function processGroupUsage(groups: Iterable<number>): Promise<{ cpuNanos: number; memoryBytes: number }> {
  const wanted = new Set(groups);
  const { clockTicks, pageSize } = kernelUnits();
  let ticks = 0;
  let pages = 0;
  if (wanted.size === 0) return { cpuNanos: 0, memoryBytes: 0 };
  for (const entry of await readdir('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const stat = await readText(`/proc/${entry}/stat`);
    if (!stat) continue;
    // pid (comm) state ppid pgrp ...: comm may hold spaces, so split after the last ')'.
    const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (!wanted.has(Number(f[2]))) continue;
    ticks += Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14]); // utime stime cutime cstime
    pages += Number(f[21]); // rss
  }
  return { cpuNanos: Math.round((ticks / clockTicks) * 1e9), memoryBytes: pages * pageSize };
}

/** Bytes allocated to the files under `dir` (like `du -s`), not following symlinks nor crossing mounts. */
export async function dirBytes(dir: string): Promise<number> {
  let root;
  try {
    root = await lstat(dir);
  } catch {
    return 0;
  }
  let total = 0;
  const seen = new Set<number>(); // hard links count once
  const walk = async (p: string): Promise<void> => {
    let entries: string[];
    try {
      entries = await readdir(p);
    } catch {
      return;
    }
    for (const name of entries) {
      const child = path.join(p, name);
      let st;
      try {
        st = await lstat(child);
      } catch {
        continue; // removed meanwhile
      }
      if (st.dev !== root.dev) continue;
      if (st.nlink > 1) {
        if (seen.has(st.ino)) continue;
        seen.add(st.ino);
      }
      total += st.blocks * 512;
      if (st.isDirectory()) await walk(child);
    }
  };
  total += root.blocks * 512;
  if (root.isDirectory()) await walk(dir);
  return total;
}
