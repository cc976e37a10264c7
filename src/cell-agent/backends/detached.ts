// Container processes that outlive the agent. A process started with `runc exec` as a child of the agent would
// die with it (its output pipes break) and its exit status would be lost. Instead each exec runs under a tiny
// host shell in its own session, started detached: stdout and stderr go to files in the bundle
// (<bundle>/procs/<id>.out/.err, opened O_APPEND), and when `runc exec` returns the shell writes the process's
// exit status (runc's: the status, or 128+n for signal n) to <id>.status. <id>.meta records the host pid and the
// tag. Whoever watches the process — the agent that started it or a restarted one (attach) — tails the files and
// polls the status file. Nothing here depends on the agent staying alive.
//
// Limits: output written while no agent watches is not replayed (a re-attached process is followed from the end
// of its files); the files are truncated once read past OUTPUT_ROTATE_BYTES, and a line written between the last
// read and the truncation is lost.
import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, openSync } from 'node:fs';
import { open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { writeFileAtomic } from '../../lib/files.ts';
import { LineSplitter } from './lines.ts';
import type { ProcessHandle, ProcessIO, ProcessRecord, ProcessSignal } from './types.ts';

/** Longest pause between two looks at a quiet process's output. */
const MAX_IDLE_TAIL_MS = 1000;

/** Files are truncated once this much has been read from them. */
export const OUTPUT_ROTATE_BYTES = 1024 * 1024;

// $1 = status file; the rest is the runc command. `echo $?` runs whatever way runc exec ends.
const WRAPPER = 'status=$1; shift; "$@"; echo $? > "$status.tmp"; mv "$status.tmp" "$status"';

interface Meta {
  id: string;
  /** 0 until the process runs (the record is written before it starts, so a process is never invisible). */
  pid: number;
  /** The host shell that waits for it (known right after the spawn). */
  wrapperPid?: number;
  tag?: string;
  startedAt: string;
}

export interface DetachedOptions {
  /** <bundle>/procs */
  dir: string;
  /** How often output files are read (ms). */
  tailIntervalMs?: number;
  /** How often the status file is looked at when the process is not our child (ms). */
  pollIntervalMs?: number;
  /** After exit, how long wait() lets the last output be read (ms). */
  drainMs?: number;
}

const files = (dir: string, id: string) => {
  const base = path.join(dir, id);
  return {
    spec: `${base}.json`,
    pid: `${base}.pid`,
    out: `${base}.out`,
    err: `${base}.err`,
    status: `${base}.status`,
    meta: `${base}.meta`,
  };
};

/**
 * Starts `runcCmd` (a `runc exec --process <spec> --pid-file <pid> <id>` command line; spec and pid paths come
 * from `paths`) detached. Resolves once the process runs; rejects with runc's messages when it could not start.
 */
export async function startDetached(
  opts: DetachedOptions,
  id: string,
  processSpec: unknown,
  runcCmd: (paths: { spec: string; pidFile: string }) => string[],
  io: ProcessIO,
  tag: string | undefined,
  spawnOptions: { cwd?: string; env?: NodeJS.ProcessEnv } = {},
): Promise<DetachedProcess> {
  const f = files(opts.dir, id);
  await writeFile(f.spec, JSON.stringify(processSpec));
  // The record exists before the process can run: an agent killed from here on leaves a process the next agent
  // finds (and follows through its pid and status files), never one it cannot see. Each version of it replaces
  // the last whole, so a kill in the middle of a write never leaves a record the next agent cannot read.
  const starting: Meta = { id, pid: 0, startedAt: new Date().toISOString(), ...(tag ? { tag } : {}) };
  await writeFileAtomic(f.meta, JSON.stringify(starting));
  const out = openSync(f.out, 'a');
  const err = openSync(f.err, 'a');
  let child: ChildProcess;
  try {
    const [file, ...args] = runcCmd({ spec: f.spec, pidFile: f.pid });
    child = spawn('/bin/sh', ['-c', WRAPPER, 'diego-exec', f.status, file!, ...args], {
      ...spawnOptions,
      detached: true,
      stdio: ['ignore', out, err],
    });
  } finally {
    closeSync(out);
    closeSync(err);
  }
  child.unref();
  if (child.pid) await writeFileAtomic(f.meta, JSON.stringify({ ...starting, wrapperPid: child.pid }));
  let wrapperExited = false;
  child.once('exit', () => (wrapperExited = true));
  child.once('error', () => (wrapperExited = true));

  // Until the process runs, stderr is runc's: keep it for the error rather than passing it on.
  let pid: number | undefined;
  for (;;) {
    pid = await readPid(f.pid);
    if (pid !== undefined || wrapperExited) break;
    await new Promise((r) => setTimeout(r, 5)); // ref'd: the agent must not exit while a process is starting
  }
  pid ??= await readPid(f.pid);
  await rm(f.spec, { force: true });
  if (pid === undefined) {
    const text = await readFile(f.err, 'utf8').catch(() => '');
    await Promise.all(Object.values(f).map((p) => rm(p, { force: true })));
    const status = await readFile(f.status, 'utf8').catch(() => '');
    throw new Error(
      text.trim().split('\n').filter(Boolean).map(runcMessage).join('; ') || `runc exec failed ${status}`,
    );
  }
  const meta: Meta = { ...starting, pid, ...(child.pid ? { wrapperPid: child.pid } : {}) };
  await writeFileAtomic(f.meta, JSON.stringify(meta));
  await rm(f.pid, { force: true });
  // runc writes nothing to stderr once it has started the process, so all of it is the process's.
  return new DetachedProcess(opts, meta, io, 0, 0, child);
}

/**
 * A command line that starts `file args` (with `ulimit -n` first when nofile is set) as the leader of its own
 * session and process group, writes its pid to the pid file, and exits with its status — what `runc exec
 * --pid-file` does for runc, for plain processes (the process backend). SIGTERM/SIGINT sent to the process's
 * group do not reach this shell, which keeps waiting for the status.
 */
export function plainExec(file: string, args: string[], nofile?: number) {
  const script = [
    'pidfile=$1; nofile=$2; shift 2',
    'if [ -n "$nofile" ]; then ulimit -n "$nofile" || exit 126; fi',
    'setsid "$@" & pid=$!',
    'echo $pid > "$pidfile"',
    "trap ':' TERM INT",
    'while :; do wait $pid; code=$?; kill -0 $pid 2>/dev/null || exit $code; done',
  ].join('\n');
  return ({ pidFile }: { spec: string; pidFile: string }) => [
    '/bin/sh',
    '-c',
    script,
    'diego-plain-exec',
    pidFile,
    nofile === undefined ? '' : String(nofile),
    file,
    ...args,
  ];
}

/** Re-attaches to a process started by startDetached (by this agent or a previous one). */
export async function attachDetached(opts: DetachedOptions, id: string, io: ProcessIO): Promise<DetachedProcess> {
  const f = files(opts.dir, id);
  const meta = JSON.parse(await readFile(f.meta, 'utf8')) as Meta;
  if (meta.pid === 0) meta.pid = (await readPid(f.pid)) ?? 0; // started by an agent killed before it recorded the pid
  const size = async (p: string) => (await stat(p).catch(() => undefined))?.size ?? 0;
  return new DetachedProcess(opts, meta, io, await size(f.out), await size(f.err));
}

/** The processes under `dir`, with their exit status once known. */
export async function listDetached(dir: string): Promise<ProcessRecord[]> {
  let names: string[];
  try {
    names = await readdir(dir);
  } catch {
    return [];
  }
  const records: ProcessRecord[] = [];
  for (const name of names.filter((n) => n.endsWith('.meta'))) {
    const id = name.slice(0, -'.meta'.length);
    try {
      const meta = JSON.parse(await readFile(path.join(dir, name), 'utf8')) as Meta;
      const status = await readStatus(files(dir, id).status);
      records.push({
        id,
        pid: meta.pid || ((await readPid(files(dir, id).pid)) ?? 0),
        ...(meta.tag ? { tag: meta.tag } : {}),
        ...(status !== undefined ? { exitStatus: status } : {}),
      });
    } catch {
      // being written or removed
    }
  }
  return records;
}

class Tail {
  readonly #path: string;
  readonly #lines: LineSplitter;
  #offset: number;
  #reading?: Promise<number>;

  constructor(p: string, offset: number, emit: (line: string) => void) {
    this.#path = p;
    this.#offset = offset;
    this.#lines = new LineSplitter(emit);
  }

  /** Reads what was appended since the last read; resolves with the number of bytes. */
  read(): Promise<number> {
    this.#reading ??= this.#read().finally(() => (this.#reading = undefined));
    return this.#reading;
  }

  async #read(): Promise<number> {
    // One stat when nothing was written (the common case for a quiet app).
    const size = (await stat(this.#path).catch(() => undefined))?.size;
    if (size === undefined || size === this.#offset) return 0;
    if (size < this.#offset) this.#offset = 0; // truncated by someone else
    let fh;
    try {
      fh = await open(this.#path, 'r');
    } catch {
      return 0;
    }
    let total = 0;
    try {
      const buf = Buffer.alloc(64 * 1024);
      for (;;) {
        const { bytesRead } = await fh.read(buf, 0, buf.length, this.#offset);
        if (bytesRead === 0) break;
        this.#offset += bytesRead;
        total += bytesRead;
        this.#lines.write(buf.subarray(0, bytesRead));
      }
      if (this.#offset >= OUTPUT_ROTATE_BYTES) {
        await truncate(this.#path, 0);
        this.#offset = 0;
      }
    } finally {
      await fh.close();
    }
    return total;
  }

  end(): void {
    this.#lines.end();
  }
}

export class DetachedProcess implements ProcessHandle {
  readonly id: string;
  /** 0 while unknown (a process whose starter died before recording it: read from its pid file when it appears). */
  #pid: number;
  readonly #pidFile: string;
  readonly #wrapperPid: number | undefined;
  readonly tag: string | undefined;
  /** Resolves once the process has exited and its output was read, or once the watch was dropped. */
  readonly closed: Promise<void>;
  readonly #status: string;
  readonly #waited: Promise<number>;
  #exited = false;
  #timer?: NodeJS.Timeout;
  #wake?: () => void;

  constructor(
    opts: DetachedOptions,
    meta: Meta,
    io: ProcessIO,
    outOffset: number,
    errOffset: number,
    child?: ChildProcess,
  ) {
    this.id = meta.id;
    this.#pid = meta.pid;
    this.#wrapperPid = meta.wrapperPid;
    this.tag = meta.tag;
    const f = files(opts.dir, meta.id);
    this.#pidFile = f.pid;
    this.#status = f.status;
    const out = new Tail(f.out, outOffset, (l) => io.stdout(l));
    const err = new Tail(f.err, errOffset, (l) => io.stderr(l));
    const tailMs = opts.tailIntervalMs ?? 100;
    const pollMs = child ? 1000 : (opts.pollIntervalMs ?? 250);
    // As our child, the wrapper's exit says when to look; otherwise poll.
    child?.once('exit', () => {
      this.#woken = true;
      this.#wake?.();
    });
    this.#waited = this.#watch(out, err, tailMs, pollMs, opts.drainMs ?? 50);
    this.closed = this.#waited.then(() => undefined);
  }

  #woken = false;

  async #watch(out: Tail, err: Tail, tailMs: number, pollMs: number, drainMs: number): Promise<number> {
    let lastPoll = 0;
    let goneSince: number | undefined;
    // A quiet process is looked at less and less often (up to once a second); output brings it back to tailMs.
    let wait = tailMs;
    for (;;) {
      const [o, e] = await Promise.all([out.read(), err.read()]);
      wait = o + e > 0 ? tailMs : Math.min(wait * 2, Math.max(tailMs, MAX_IDLE_TAIL_MS));
      if (Date.now() - lastPoll >= pollMs || this.#woken) {
        lastPoll = Date.now();
        this.#woken = false;
        let status = await readStatus(this.#status);
        if (this.#pid === 0) this.#pid = (await readPid(this.#pidFile)) ?? 0;
        // Neither the process nor its wrapper can say any more (both killed): report it as killed.
        const gone = this.#pid > 0 ? !alive(this.#pid) : !this.#wrapperPid || !alive(this.#wrapperPid);
        if (status === undefined && gone) {
          goneSince ??= Date.now();
          if (Date.now() - goneSince > 5_000 && (await readStatus(this.#status)) === undefined) status = 137;
        } else goneSince = undefined;
        if (status !== undefined) {
          this.#exited = true;
          await new Promise((r) => setTimeout(r, Math.min(drainMs, 1000)));
          await Promise.all([out.read(), err.read()]);
          out.end();
          err.end();
          return status;
        }
      }
      await new Promise<void>((resolve) => {
        this.#wake = () => {
          this.#woken = true;
          clearTimeout(this.#timer);
          resolve();
        };
        this.#timer = setTimeout(resolve, Math.min(wait, pollMs));
        this.#timer.unref(); // an agent that leaves its containers running must be able to exit
      });
    }
  }

  get pid(): number {
    return this.#pid;
  }

  wait(): Promise<number> {
    return this.#waited;
  }

  signal(sig: ProcessSignal): void {
    // Never signal pid 0 (our own process group): a process not yet known has nothing to signal yet.
    if (this.#exited || this.#pid <= 0) return;
    for (const target of [-this.#pid, this.#pid]) {
      try {
        process.kill(target, sig);
        return;
      } catch (err) {
        if ((err as NodeJS.ErrnoException).code !== 'ESRCH') throw err;
      }
    }
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

async function readPid(file: string): Promise<number | undefined> {
  try {
    const pid = Number((await readFile(file, 'utf8')).trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

async function readStatus(file: string): Promise<number | undefined> {
  try {
    const text = (await readFile(file, 'utf8')).trim();
    if (text === '') return undefined;
    const n = Number(text);
    return Number.isInteger(n) ? n : undefined;
  } catch {
    return undefined;
  }
}

/** runc logs errors as `time="..." level=error msg="..."`; keep just the message. */
export function runcMessage(line: string): string {
  const m = /msg="((?:[^"\\]|\\.)*)"/.exec(line);
  return m ? m[1]!.replace(/\\"/g, '"') : line;
}
