// Last-resort cleanup when the Node process goes away without calling stop():
// a failed test that never reaches afterAll, an uncaught exception, Ctrl-C, SIGTERM
// from a test runner. The hooks are synchronous because 'exit' handlers cannot await.
// A SIGKILLed Node process runs nothing: setpriv's pdeathsig kills the children, and
// the next start sweeps the directory (its owner.pid names a dead process).
import { readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { rm } from 'node:fs/promises';
import { join } from 'node:path';

const OWNER_FILE = 'owner.pid';
const pids = new Set<number>();
const dirs = new Set<string>();
let installed = false;

const keep = () => process.env.DIEGO_KEEP_CONTROL_PLANE === '1';

export function trackPid(pid: number): void {
  install();
  pids.add(pid);
}

export function untrackPid(pid: number): void {
  pids.delete(pid);
}

/** Marks `dir` as ours: removed at exit unless released first. */
export function trackDir(dir: string): void {
  install();
  writeFileSync(join(dir, OWNER_FILE), String(process.pid));
  dirs.add(dir);
}

/**
 * Removes `dir`, or with DIEGO_KEEP_CONTROL_PLANE=1 keeps it (dropping the owner mark so
 * sweeps leave it alone). Returns true if kept.
 */
export async function releaseDir(dir: string): Promise<boolean> {
  dirs.delete(dir);
  if (keep()) {
    await rm(join(dir, OWNER_FILE), { force: true });
    return true;
  }
  await rm(dir, { recursive: true, force: true, maxRetries: 3 });
  return false;
}

/** Removes `<parent>/<prefix>*` directories left by processes that died without cleanup. */
export function sweepStaleDirs(parent: string, prefix: string): void {
  if (keep()) return;
  let names: string[];
  try {
    names = readdirSync(parent).filter((n) => n.startsWith(prefix));
  } catch {
    return;
  }
  for (const name of names) {
    const dir = join(parent, name);
    try {
      const owner = Number(readFileSync(join(dir, OWNER_FILE), 'utf8'));
      if (owner > 0 && !isAlive(owner)) rmSync(dir, { recursive: true, force: true });
    } catch {
      // no owner mark (kept on purpose, or not ours), or not readable: leave it
    }
  }
}

/** SIGKILLs every tracked child and removes (or releases) every tracked directory, synchronously. */
export function cleanupNow(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
  for (const dir of dirs) {
    try {
      rmSync(keep() ? join(dir, OWNER_FILE) : dir, { recursive: true, force: true, maxRetries: 3 });
    } catch {
      // best effort: nothing more we can do while exiting
    }
  }
  dirs.clear();
}

function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM'; // alive, someone else's
  }
  try {
    // A killed owner can linger as a zombie until its parent reaps it; that counts as dead.
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return true; // no /proc (macOS): kill(0) said it exists
  }
}

const signals = ['SIGINT', 'SIGTERM', 'SIGHUP'] as const;

function install(): void {
  if (installed) return;
  installed = true;
  process.on('exit', cleanupNow);
  for (const sig of signals) process.on(sig, onSignal);
}

function onSignal(sig: NodeJS.Signals): void {
  // If someone else listens for this signal (e.g. hack/controlplane.ts, vitest's main
  // process), they own shutdown and may want a graceful stop(); if they end up calling
  // process.exit, the 'exit' hook still cleans up.
  if (process.listenerCount(sig) > 1) return;
  cleanupNow();
  // Our listener suppressed Node's default "die on signal"; restore it by re-raising.
  for (const s of signals) process.off(s, onSignal);
  process.kill(process.pid, sig);
}
