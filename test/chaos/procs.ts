// The chaos harness's own child processes (controllers and cell agents run as `node src/main.ts <role>`):
// output appended to a log file, wrapped in `setpriv --pdeathsig KILL` so the kernel kills them if the harness
// dies, and every live one tracked so a failed run can still kill them all (killAllChildren).
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export const REPO = join(import.meta.dirname, '..', '..');
const MAIN = join(REPO, 'src', 'main.ts');
const SETPRIV = ['/usr/bin/setpriv', '/bin/setpriv'].find((p) => existsSync(p));

const live = new Set<Child>();
/** How long a SIGKILLed child may take to be gone (it exits at once unless stuck in the kernel). */
const KILLED_MS = 30_000;

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

/** One OS process the harness started. */
export class Child {
  readonly name: string;
  readonly pid: number;
  readonly logPath: string;
  readonly startedAt = Date.now();
  exitInfo: ExitInfo | undefined;
  readonly exited: Promise<ExitInfo>;

  constructor(name: string, child: ChildProcess, logPath: string) {
    this.name = name;
    this.pid = child.pid ?? -1;
    this.logPath = logPath;
    this.exited = new Promise((resolve) => {
      child.once('exit', (code, signal) => {
        live.delete(this);
        this.exitInfo = { code, signal };
        resolve(this.exitInfo);
      });
    });
    live.add(this);
  }

  get alive(): boolean {
    return this.exitInfo === undefined;
  }

  signal(sig: NodeJS.Signals): void {
    if (!this.alive) return;
    try {
      process.kill(this.pid, sig);
    } catch {
      // exited meanwhile
    }
  }

  /** kill -9, resolved once it is gone (or failed: one stuck in the kernel does not die of it). */
  async kill(): Promise<void> {
    this.signal('SIGCONT'); // a stopped process dies of SIGKILL too, but let it be reaped promptly
    this.signal('SIGKILL');
    await this.exitedWithin(KILLED_MS);
  }

  /** `sig` (default SIGTERM), then SIGKILL after graceMs. */
  async stop(sig: NodeJS.Signals = 'SIGTERM', graceMs = 30_000): Promise<ExitInfo> {
    if (!this.alive) return this.exitInfo!;
    this.signal('SIGCONT');
    this.signal(sig);
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<void>((resolve) => {
      timer = setTimeout(() => {
        this.signal('SIGKILL');
        resolve();
      }, graceMs);
    });
    await Promise.race([this.exited, late]);
    clearTimeout(timer);
    return this.exitedWithin(KILLED_MS);
  }

  /** Its exit, or a failure naming it once `ms` have passed (a wait on a child is never unbounded). */
  private async exitedWithin(ms: number): Promise<ExitInfo> {
    let timer: NodeJS.Timeout | undefined;
    const late = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(new Error(`${this.name} (pid ${this.pid}) still running ${ms} ms later`)), ms);
    });
    try {
      return await Promise.race([this.exited, late]);
    } finally {
      clearTimeout(timer);
    }
  }

  /** Resident memory in bytes (VmRSS), or undefined once gone. */
  rssBytes(): number | undefined {
    return rssOf(this.pid);
  }

  /** The last `n` lines of its log. */
  logTail(n = 30): string {
    try {
      return readFileSync(this.logPath, 'utf8').trimEnd().split('\n').slice(-n).join('\n');
    } catch {
      return '(no log)';
    }
  }
}

/** Starts `node src/main.ts <args>` with output appended to logPath. */
export async function startRole(
  name: string,
  args: string[],
  logPath: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Child> {
  return startProcess(name, process.execPath, [MAIN, ...args], logPath, env);
}

/** Starts `bin args` with output appended to logPath. */
export async function startProcess(
  name: string,
  bin: string,
  args: string[],
  logPath: string,
  env: NodeJS.ProcessEnv = {},
): Promise<Child> {
  const fd = openSync(logPath, 'a');
  const [cmd, argv] = SETPRIV ? [SETPRIV, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  let child: ChildProcess;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], env: { ...process.env, ...env }, cwd: REPO });
  } finally {
    closeSync(fd);
  }
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${name}: ${err.message}`, { cause: err })));
  });
  child.unref();
  return new Child(name, child, logPath);
}

/** SIGKILLs every child still running (a failed or interrupted run). */
export async function killAllChildren(): Promise<void> {
  await Promise.all([...live].map((c) => c.kill()));
}

process.once('exit', () => {
  for (const c of live) {
    try {
      process.kill(c.pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
});

/** VmRSS of a pid in bytes, or undefined. */
export function rssOf(pid: number): number | undefined {
  try {
    const m = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : undefined;
  } catch {
    return undefined;
  }
}
