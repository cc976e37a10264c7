// A process a test started and never stopped (a test that timed out before its cleanup, a helper that forgot one)
// outlives the run: if it holds the run's output pipe, the test command never ends (CI once waited out its 90
// minutes on one). Each run marks the processes it starts with an environment variable; the global teardown ends
// those still alive and names them, so the run ends and the culprit shows.
import { randomUUID } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';

const MARK = 'DIEGO_TEST_RUN';

/** Marks every process this run starts from now on (test workers inherit the environment, and their children). */
export function markRun(): void {
  process.env[MARK] ??= randomUUID();
}

/**
 * SIGKILLs the processes started by this run that are still alive, except this one and its own children (the test
 * workers, the control plane); returns their command lines.
 */
export function killStrays(): string[] {
  const mark = process.env[MARK];
  if (!mark) return [];
  const killed: string[] = [];
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry);
    if (!Number.isInteger(pid) || pid === process.pid) continue;
    try {
      const env = readFileSync(`/proc/${pid}/environ`, 'latin1').split('\0');
      if (!env.includes(`${MARK}=${mark}`)) continue;
      // "pid (comm) state ppid …": comm may hold spaces and parentheses, so read after the last ')'.
      const stat = readFileSync(`/proc/${pid}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) continue;
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'latin1').split('\0').join(' ').trim();
      process.kill(pid, 'SIGKILL');
      killed.push(`${pid}: ${cmdline.slice(0, 200)}`);
    } catch {
      // Gone meanwhile, or not ours to read.
    }
  }
  return killed;
}

/** Names the processes killStrays ended on stderr (a test's bug to fix, but not one that may hang the run). */
export function reportStrays(killed: string[]): void {
  if (killed.length === 0) return;
  process.stderr.write(
    `\nA test left ${killed.length} process(es) running; killed them so the run can end:\n  ${killed.join('\n  ')}\n`,
  );
}
