// Helpers for the container backend tests (process, runc, containerd, detached): collecting a process's output
// lines, running a shell script or executor run actions in a container, the env/cwd/user contract script,
// building and reading tar streams, and GETs of a container's HTTP server.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { buildStep } from '../executor/build.ts';
import { LogStreamer, type LogMessage } from '../executor/log.ts';
import type { Container, ContainerBackend, ProcessIO } from './types.ts';

/** A ProcessIO that keeps the stdout and stderr lines. */
export function collect(): ProcessIO & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return { out, err, stdout: (l) => out.push(l), stderr: (l) => err.push(l) };
}

/** Runs `/bin/sh -c script` in the container; resolves with its exit status and output lines. */
export async function sh(c: Container, script: string, extra: { user?: string; dir?: string } = {}) {
  const io = collect();
  const p = await c.run({ path: '/bin/sh', args: ['-c', script], ...extra }, io);
  return { status: await p.wait(), ...io };
}

/**
 * The env, cwd and user contract of an isolating backend: creates container 'env' (A and B set to 'container')
 * and runs a script printing "$A $B $1", pwd, uid, $HOME and `ulimit -n`, with B=`processB`, in /tmp, as vcap,
 * with nofile 321. Resolves the container, the exit status and the stdout lines.
 */
export async function runEnvScript(backend: ContainerBackend, processB: string) {
  const c = await backend.create({
    handle: 'env',
    env: [
      { name: 'A', value: 'container' },
      { name: 'B', value: 'container' },
    ],
  });
  const io = collect();
  const p = await c.run(
    {
      path: '/bin/sh',
      args: ['-c', 'echo "$A $B $1"; pwd; id -u; echo "$HOME"; ulimit -n', 'sh', 'arg1'],
      env: [{ name: 'B', value: processB }],
      dir: '/tmp',
      user: 'vcap',
      limits: { nofile: 321 },
    },
    io,
  );
  return { c, status: await p.wait(), out: io.out };
}

/** Executor run actions (`/bin/sh -c script` as vcap) in `c`; `logs` collects what they log. */
export function runActions(c: Container) {
  const logs: LogMessage[] = [];
  const ctx = { container: c, log: new LogStreamer((m) => logs.push(m)), gracefulShutdownMs: 1_000 };
  const run = (script: string) =>
    buildStep({ run: { path: '/bin/sh', args: ['-c', script], user: 'vcap' } }, ctx).perform(
      new AbortController().signal,
    );
  return { logs, run };
}

/** A tar archive of `files` (path → content). */
export function tarOf(files: Record<string, string>): Buffer {
  const src = execFileSync('mktemp', ['-d']).toString().trim();
  for (const [name, content] of Object.entries(files)) {
    execFileSync('sh', [
      '-c',
      'mkdir -p "$(dirname "$1")" && printf %s "$2" > "$1"',
      'sh',
      path.join(src, name),
      content,
    ]);
  }
  const tar = execFileSync('tar', ['-c', '-f', '-', '-C', src, '.']);
  execFileSync('rm', ['-rf', src]);
  return tar;
}

/** The regular files of a tar stream (path → content). */
export async function untar(stream: Readable): Promise<Record<string, string>> {
  const chunks: Buffer[] = [];
  for await (const chunk of stream) chunks.push(chunk as Buffer);
  const out = execFileSync('mktemp', ['-d']).toString().trim();
  execFileSync('tar', ['-x', '-f', '-', '-C', out], { input: Buffer.concat(chunks) });
  const files: Record<string, string> = {};
  for (const f of execFileSync('find', [out, '-type', 'f']).toString().trim().split('\n')) {
    if (f) files[path.relative(out, f)] = readFileSync(f, 'utf8');
  }
  execFileSync('rm', ['-rf', out]);
  return files;
}

/** The body of a 200 response, undefined when the request fails. */
export async function get(url: string): Promise<string | undefined> {
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(1_000) });
    return res.ok ? await res.text() : undefined;
  } catch {
    return undefined;
  }
}

/** get() every `everyMs` until it answers or `timeoutMs` passed. */
export async function getEventually(url: string, timeoutMs = 5_000, everyMs = 50): Promise<string | undefined> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const body = await get(url);
    if (body !== undefined || Date.now() > deadline) return body;
    await new Promise((r) => setTimeout(r, everyMs));
  }
}
