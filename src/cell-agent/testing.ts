// Helpers for the cell-agent unit tests: a process backend in a temp dir, a log collector, loopback servers.
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { ProcessBackend } from './backends/process.ts';
import type { Container } from './backends/types.ts';
import type { ExecutorContext } from './executor/build.ts';
import { LogStreamer, type LogMessage } from './executor/log.ts';

export interface TestCell {
  dir: string;
  backend: ProcessBackend;
  container: Container;
  logs: LogMessage[];
  log: LogStreamer;
  /** An executor context for the container, with a short grace period unless overridden. */
  ctx(overrides?: Partial<ExecutorContext>): ExecutorContext;
  /** Lines logged so far, optionally only those of one stream. */
  lines(stream?: 'stdout' | 'stderr'): string[];
  cleanup(): Promise<void>;
}

let counter = 0;

export async function testCell(opts: { env?: { name: string; value: string }[] } = {}): Promise<TestCell> {
  const dir = await mkdtemp(path.join(tmpdir(), 'cell-agent-test-'));
  const backend = new ProcessBackend({ baseDir: path.join(dir, 'containers'), outputDrainMs: 100 });
  const container = await backend.create({ handle: `c${process.pid}-${++counter}`, env: opts.env });
  const logs: LogMessage[] = [];
  const log = new LogStreamer((m) => logs.push(m));
  return {
    dir,
    backend,
    container,
    logs,
    log,
    ctx: (overrides = {}) => ({
      container,
      log,
      gracefulShutdownMs: 2_000,
      tempDir: dir,
      downloadRetryWaitMs: 10,
      ...overrides,
    }),
    lines: (stream) => logs.filter((m) => !stream || m.stream === stream).map((m) => m.line),
    async cleanup() {
      for (const handle of await backend.list()) await backend.destroy(handle);
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** sh -c script as a run action. */
export function sh(script: string, extra: Record<string, unknown> = {}) {
  return { run: { path: '/bin/sh', args: ['-c', script], user: 'vcap', ...extra } };
}

/**
 * Whether a process (or, for a negative pid, any process of that group) is still running. Zombies count as
 * gone: an orphan killed with its group waits for init to reap it, which may take a while in a container.
 */
export function alive(pid: number): boolean {
  const entries = pid > 0 ? [String(pid)] : readdirSync('/proc').filter((e) => /^\d+$/.test(e));
  for (const entry of entries) {
    let stat: string;
    try {
      stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
    } catch {
      continue;
    }
    // pid (comm) state ppid pgrp ...; comm may contain spaces, so split after the last ')'.
    const [state, , pgrp] = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    if (state === 'Z' || state === 'X') continue;
    if (pid > 0 || Number(pgrp) === -pid) return true;
  }
  return false;
}

export async function eventually(check: () => boolean, timeoutMs = 2_000): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 10));
  }
}

export interface Loopback {
  server: Server;
  port: number;
  url: (p?: string) => string;
  close(): Promise<void>;
}

/** An HTTP server on 127.0.0.1 with a random port. */
export async function loopback(handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<Loopback> {
  const server = createServer(handler);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (address === null || typeof address === 'string') throw new Error('no port');
  return {
    server,
    port: address.port,
    url: (p = '/') => `http://127.0.0.1:${address.port}${p}`,
    close: () =>
      new Promise<void>((resolve) => {
        server.closeAllConnections();
        server.close(() => resolve());
      }),
  };
}

export async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  return Buffer.concat(chunks);
}

/** Runs fn and returns what it threw (fails the test if it did not throw). */
export async function failure(fn: () => Promise<unknown>): Promise<Error & Record<string, unknown>> {
  try {
    await fn();
  } catch (err) {
    return err as Error & Record<string, unknown>;
  }
  throw new Error('expected a failure');
}
