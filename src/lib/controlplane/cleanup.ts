// Last-resort cleanup when the Node process goes away without calling stop():
// a failed test that never reaches afterAll, an uncaught exception, Ctrl-C, SIGTERM
// from a test runner. Everything here is synchronous because 'exit' handlers cannot
// await. (A SIGKILLed Node process runs nothing; setpriv's pdeathsig covers that.)
import { rmSync } from 'node:fs';

const pids = new Set<number>();
const dirs = new Set<string>();
let installed = false;

export function trackPid(pid: number): void {
  install();
  pids.add(pid);
}

export function untrackPid(pid: number): void {
  pids.delete(pid);
}

export function trackDir(dir: string): void {
  install();
  dirs.add(dir);
}

export function untrackDir(dir: string): void {
  dirs.delete(dir);
}

/** SIGKILLs every tracked child and removes every tracked directory, synchronously. */
export function cleanupNow(): void {
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  pids.clear();
  if (process.env.DIEGO_KEEP_CONTROL_PLANE !== '1') {
    for (const dir of dirs) {
      try {
        rmSync(dir, { recursive: true, force: true, maxRetries: 3 });
      } catch {
        // best effort: nothing more we can do while exiting
      }
    }
  }
  dirs.clear();
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
