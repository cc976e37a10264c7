// One control-plane child process: output to a log file, tracked for emergency cleanup,
// stopped with SIGTERM then SIGKILL.
import { spawn } from 'node:child_process';
import { accessSync, closeSync, constants, openSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { delimiter, join } from 'node:path';
import { trackPid, untrackPid } from './cleanup.ts';

export interface ExitInfo {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface ManagedProcess {
  name: string;
  pid: number;
  logPath: string;
  /** Set once the process has exited. */
  exitInfo: ExitInfo | undefined;
  exited: Promise<ExitInfo>;
}

/**
 * Starts `bin args...` with stdout+stderr appended to `logPath`. Not detached, so Ctrl-C in
 * a terminal reaches it too; on Linux it is wrapped in `setpriv --pdeathsig KILL` so the
 * kernel kills it if we die without running any cleanup (e.g. SIGKILL, OOM).
 * Note: pdeathsig fires when the spawning *thread* exits, so spawn from the main thread
 * or a worker that lives as long as the control plane.
 */
export async function startProcess(
  name: string,
  bin: string,
  args: string[],
  logPath: string,
  opts: { env?: NodeJS.ProcessEnv } = {},
): Promise<ManagedProcess> {
  const fd = openSync(logPath, 'a');
  const setpriv = setprivPath();
  const [cmd, argv] = setpriv ? [setpriv, ['--pdeathsig', 'KILL', '--', bin, ...args]] : [bin, args];
  let child;
  try {
    child = spawn(cmd, argv, { stdio: ['ignore', fd, fd], ...(opts.env ? { env: opts.env } : {}) });
  } finally {
    closeSync(fd); // the child has its own copy
  }
  // spawn reports ENOENT/EACCES asynchronously through 'error', before 'spawn'.
  await new Promise<void>((resolve, reject) => {
    child.once('spawn', resolve);
    child.once('error', (err) => reject(new Error(`cannot start ${name} (${bin}): ${err.message}`, { cause: err })));
  });
  // Don't keep Node alive just for the children: a script that forgets stop() then exits
  // normally, and the exit hook (cleanup.ts) kills them, instead of hanging forever.
  child.unref();
  const pid = child.pid!;
  trackPid(pid);
  const proc: ManagedProcess = {
    name,
    pid,
    logPath,
    exitInfo: undefined,
    exited: new Promise<ExitInfo>((resolve) => {
      child.once('exit', (code, signal) => {
        untrackPid(pid);
        proc.exitInfo = { code, signal };
        resolve(proc.exitInfo);
      });
    }),
  };
  return proc;
}

/** SIGTERM, then SIGKILL after `graceMs`; resolves once the process has exited. */
export async function stopProcess(proc: ManagedProcess, graceMs = 10_000): Promise<ExitInfo> {
  if (proc.exitInfo) return proc.exitInfo;
  signal(proc.pid, 'SIGTERM');
  let timer: NodeJS.Timeout | undefined;
  const killed = new Promise<void>((resolve) => {
    timer = setTimeout(() => {
      signal(proc.pid, 'SIGKILL');
      resolve();
    }, graceMs);
  });
  await Promise.race([proc.exited, killed]);
  clearTimeout(timer);
  return proc.exited;
}

/** The last `n` lines of the process log, for error messages. */
export async function logTail(proc: ManagedProcess, n = 40): Promise<string> {
  try {
    const text = await readFile(proc.logPath, 'utf8');
    return text.trimEnd().split('\n').slice(-n).join('\n');
  } catch {
    return '(no log output)';
  }
}

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(pid, sig);
  } catch {
    // exited in the meantime
  }
}

let cachedSetpriv: string | null | undefined;

function setprivPath(): string | null {
  if (cachedSetpriv !== undefined) return cachedSetpriv;
  cachedSetpriv = null;
  if (process.platform === 'linux') {
    for (const dir of (process.env.PATH ?? '').split(delimiter).concat(['/usr/bin', '/bin'])) {
      try {
        accessSync(join(dir, 'setpriv'), constants.X_OK);
        cachedSetpriv = join(dir, 'setpriv');
        break;
      } catch {
        // not here
      }
    }
  }
  return cachedSetpriv;
}
