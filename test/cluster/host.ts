// The cluster node's host, as the cluster suite inspects it: the containers, processes, network namespaces, cgroups
// and mounts the cell agent made. The suite's own node shares this machine's mount and PID namespaces, so a shell
// here sees them; a kind node is a Docker container, reached with `docker exec` (hack/kind-e2e.sh).
import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { inject } from 'vitest';

const run = promisify(execFile);

/** Runs a POSIX shell script on the node's host; resolves with its stdout. */
export function nodeSh(script: string): Promise<string> {
  const { container } = inject('clusterHost');
  const [cmd, args] = container ? ['docker', ['exec', container, 'sh', '-c', script]] : ['sh', ['-c', script]];
  return run(cmd, args, { timeout: 60_000, maxBuffer: 16 << 20 }).then((r) => r.stdout);
}

/** Each runc container under `runcRoot` and its init process id. */
export async function containerPids(runcRoot: string): Promise<Record<string, number>> {
  const out = await nodeSh(
    `for f in ${runcRoot}/*/state.json; do [ -f "$f" ] || continue; ` +
      `printf '%s %s\\n' "$(basename "$(dirname "$f")")" "$(grep -o '"init_process_pid":[0-9]*' "$f" | cut -d: -f2)"; done`,
  );
  const pids: Record<string, number> = {};
  for (const line of out.split('\n')) {
    const [id, pid] = line.trim().split(' ');
    if (id && pid) pids[id] = Number(pid);
  }
  return pids;
}

/** Whether each process still exists on the node. */
export async function alive(pids: number[]): Promise<boolean[]> {
  if (pids.length === 0) return [];
  const out = await nodeSh(pids.map((p) => `[ -d /proc/${p} ] && echo 1 || echo 0`).join('; '));
  return out
    .trim()
    .split('\n')
    .map((l) => l === '1');
}

/** What of an instance (by instance guid) is left on the node: network namespaces, cgroups, mounts. */
export async function leftOf(guid: string): Promise<string[]> {
  const out = await nodeSh(
    `ls /run/netns 2>/dev/null | grep -F '${guid}' | sed 's/^/netns /'; ` +
      `find /sys/fs/cgroup -maxdepth 3 -name '*${guid}*' 2>/dev/null | sed 's/^/cgroup /'; ` +
      `grep -F '${guid}' /proc/self/mountinfo | sed 's/^/mount /'; true`,
  );
  return out.split('\n').filter(Boolean);
}

/** `ctr` talking to the node's containerd, for faults (killing a pod's container as a crash would). */
export function ctr(...args: string[]): Promise<string> {
  const { bin, socket } = inject('clusterCtr');
  return nodeSh([bin, '--address', socket, ...args].join(' '));
}
