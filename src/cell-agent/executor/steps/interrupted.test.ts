// No step can end the agent: every step type, interrupted mid-way (cancelled, or its server going away), settles
// with a step error and leaves no unhandled rejection or uncaught exception behind.
import { createServer, type Server, type Socket } from 'node:net';
import { afterAll, afterEach, beforeAll, beforeEach, describe, expect, it } from 'vitest';
import type { Action } from '../../../crds/actions.ts';
import { sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';

let cell: TestCell;
let server: Server;
let base = '';
const sockets = new Set<Socket>();
const received: string[] = [];
const unhandled: unknown[] = [];
const onUnhandled = (err: unknown) => unhandled.push(err);

/** A server that answers slowly and never finishes: headers, some bytes, then nothing (or a reset on /reset). */
beforeAll(async () => {
  server = createServer((sock) => {
    sockets.add(sock);
    sock.on('close', () => sockets.delete(sock));
    sock.on('error', () => undefined);
    sock.once('data', (chunk: Buffer) => {
      const path = chunk.toString('latin1').split(' ')[1] ?? '';
      received.push(path);
      if (path === '/http10') {
        sock.write('HTTP/1.0 200 OK\r\n\r\n');
        sock.write(Buffer.alloc(32 * 1024, 1));
        setTimeout(() => sock.end(), 100);
        return;
      }
      sock.write('HTTP/1.1 200 OK\r\nContent-Length: 100000000\r\n\r\n');
      sock.write(Buffer.alloc(64 * 1024, 1));
      if (path === '/reset') setTimeout(() => sock.resetAndDestroy(), 100);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const a = server.address();
  base = `http://127.0.0.1:${typeof a === 'object' && a ? a.port : 0}`;
  process.on('unhandledRejection', onUnhandled);
  process.on('uncaughtException', onUnhandled);
});

afterAll(async () => {
  process.off('unhandledRejection', onUnhandled);
  process.off('uncaughtException', onUnhandled);
  for (const s of sockets) s.destroy();
  await new Promise<void>((resolve) => server.close(() => resolve()));
});

beforeEach(async () => {
  cell = await testCell();
  received.length = 0;
  unhandled.length = 0;
});
afterEach(() => cell.cleanup());

const download = (path: string): Action => ({ download: { from: `${base}${path}`, to: '/d', user: 'vcap' } });
const longRun = sh('sleep 30');

const cases: [string, () => Action][] = [
  ['download (mid-body)', () => download('/slow')],
  [
    'upload',
    () => ({
      serial: {
        actions: [sh('head -c 1000000 /dev/zero > big'), { upload: { from: 'big', to: `${base}/slow`, user: 'vcap' } }],
      },
    }),
  ],
  ['run', () => longRun],
  ['timeout', () => ({ timeout: { action: longRun, timeoutMs: 60_000 } })],
  [
    'emitProgress',
    () => ({ emitProgress: { action: longRun, startMessage: 's', successMessage: 'ok', failureMessagePrefix: 'f' } }),
  ],
  ['try', () => ({ try: { action: longRun } })],
  ['parallel', () => ({ parallel: { actions: [longRun, download('/slow')] } })],
  ['serial', () => ({ serial: { actions: [sh('true'), longRun] } })],
  ['codependent', () => ({ codependent: { actions: [longRun, download('/slow')] } })],
];

describe('interrupted steps', () => {
  it.each(cases)('%s: cancelled mid-way, it settles and nothing is left unhandled', async (_name, action) => {
    const controller = new AbortController();
    const performing = buildStep(action(), cell.ctx({ gracefulShutdownMs: 500 })).perform(controller.signal);
    const settled = performing.then(
      () => 'resolved',
      (err: unknown) => (err as { code?: string }).code ?? 'rejected',
    );
    await new Promise((r) => setTimeout(r, 400)); // the process runs, the transfer is under way
    controller.abort();
    const outcome = await settled;
    // A step error (cancelled; aggregate for parallel/codependent; the transfer's own for upload), or success for
    // try, which swallows its child's cancellation: any settled outcome, never a hang or a crash.
    expect(['cancelled', 'resolved', 'aggregate', 'upload']).toContain(outcome);
    await new Promise((r) => setTimeout(r, 300));
    expect(unhandled).toEqual([]);
  });

  it.each([
    ['a server resetting the connection', '/reset'],
    ['an HTTP/1.0 server closing early', '/http10'],
  ])('download from %s fails the step only', async (_name, path) => {
    const err = await buildStep(download(path), cell.ctx({ downloadRetryWaitMs: 10 }))
      .perform(new AbortController().signal)
      .then(
        () => undefined,
        (e: unknown) => e as { code?: string },
      );
    expect(err?.code).toBe('download');
    await new Promise((r) => setTimeout(r, 300));
    expect(unhandled).toEqual([]);
  });
});
