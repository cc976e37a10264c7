// Processes under a pid, from /proc (Linux): what a test started, and whether it is still running.
import { readdirSync, readFileSync } from 'node:fs';

/** A process as /proc shows it; `start` (clock ticks since boot) tells a reused pid from the original. */
export interface Proc {
  pid: number;
  comm: string;
  start: string;
}

export function stat(pid: number): { comm: string; state: string; start: string } | undefined {
  try {
    const text = readFileSync(`/proc/${pid}/stat`, 'utf8');
    const close = text.lastIndexOf(')');
    const fields = text.slice(close + 2).split(' '); // from field 3 (state) on
    return { comm: text.slice(text.indexOf('(') + 1, close), state: fields[0]!, start: fields[19]! };
  } catch {
    return undefined;
  }
}

export function children(pid: number): number[] {
  try {
    return readdirSync(`/proc/${pid}/task`).flatMap((tid) =>
      readFileSync(`/proc/${pid}/task/${tid}/children`, 'utf8').trim().split(/\s+/).filter(Boolean).map(Number),
    );
  } catch {
    return [];
  }
}

/** Every process below `pid`. */
export function descendants(pid: number): Proc[] {
  const found: Proc[] = [];
  const queue = children(pid);
  for (let p = queue.shift(); p !== undefined; p = queue.shift()) {
    const s = stat(p);
    if (s) found.push({ pid: p, comm: s.comm, start: s.start });
    queue.push(...children(p));
  }
  return found;
}

/** Still running: present, the same process (not a reused pid), and not a zombie waiting to be reaped. */
export function alive(p: Proc): boolean {
  const s = stat(p.pid);
  return s !== undefined && s.start === p.start && s.state !== 'Z';
}

/** SIGKILLs those of `procs` still running (what a test's child started, which a SIGKILLed child cannot stop). */
export function killAlive(procs: Proc[]): void {
  for (const p of procs) {
    try {
      if (alive(p)) process.kill(p.pid, 'SIGKILL');
    } catch {
      // gone meanwhile
    }
  }
}
