import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure, sh, testCell, type TestCell } from './testing.ts';
import pino from 'pino';
import { adoptContainers, reattachAction, tagProcesses, waitForAction } from './adopt.ts';
import type { ContainerBackend, ProcessSpec } from './backends/types.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

const io = { stdout: () => {}, stderr: () => {} };
const spec = (script: string): ProcessSpec => ({ path: '/bin/sh', args: ['-c', script] });

describe('re-attached action', () => {
  it('fails like a run step when a process exits non-zero', async () => {
    const p = await cell.container.run(spec('exit 4'), io);
    const err = await failure(() => waitForAction([p], cell.log, 1_000)(new AbortController().signal, undefined));
    expect(err.message).toBe('LOG: Exited with status 4');
    expect(cell.lines('stdout')).toEqual(['Exit status 4']);
  });

  it('is ready at once and stops its processes with SIGTERM, then SIGKILL after the grace period', async () => {
    const stubborn = await cell.container.run(spec("trap '' TERM; sleep 30 & wait"), io);
    const polite = await cell.container.run(spec('sleep 30'), io);
    const stop = new AbortController();
    let ready = false;
    const run = waitForAction([stubborn, polite], cell.log, 300)(stop.signal, () => (ready = true));
    expect(ready).toBe(true);
    await new Promise((r) => setTimeout(r, 100));
    const started = Date.now();
    stop.abort();
    expect((await failure(() => run)).message).toBe('cancelled');
    expect(await polite.wait()).toBe(143);
    expect(await stubborn.wait()).toBe(137);
    expect(Date.now() - started).toBeGreaterThanOrEqual(250);
  });
});

describe('tagged processes', () => {
  it('passes the tag with every process the action starts', async () => {
    const seen: (string | undefined)[] = [];
    const inner = cell.container;
    const spy = { ...inner, run: (p: ProcessSpec, i: typeof io) => (seen.push(p.tag), inner.run(p, i)) };
    const tagged = tagProcesses(spy);
    await (await tagged.run(sh('true').run, io)).wait();
    expect(seen).toEqual(['action']);
    expect(tagged.handle).toBe(inner.handle);
  });

  it('finds nothing to re-attach to where the backend keeps no processes (process backend)', async () => {
    expect(await reattachAction(cell.container, cell.log)).toEqual({ kind: 'none' });
  });
});

describe('containers found at start', () => {
  it('reports a container it could not destroy as not destroyed', async () => {
    const backend = {
      list: () => Promise.resolve(['stuck']),
      lookup: () => Promise.resolve(undefined),
      destroy: () => Promise.reject(new Error('device busy')),
    } as unknown as ContainerBackend;
    const result = await adoptContainers({
      cellId: 'c',
      backend,
      log: pino({ level: 'silent' }),
      lrp: () => undefined,
      task: () => undefined,
      adoptLRP: () => {},
      adoptTask: () => {},
    });
    expect(result).toEqual({ adopted: [], destroyed: [] });
  });
});
