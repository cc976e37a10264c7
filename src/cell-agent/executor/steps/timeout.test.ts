import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, eventually, failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';
import { emittableError } from '../errors.ts';
import { TimeoutStep } from './timeout.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

describe('timeout step', () => {
  it('fails on time with "exceeded 200ms timeout" and kills the child', async () => {
    const started = Date.now();
    const err = await failure(() =>
      buildStep({ timeout: { action: sh('echo $$; exec sleep 30'), timeoutMs: 200 } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    const took = Date.now() - started;
    expect(err).toMatchObject({ code: 'timeout', emittable: true, message: 'exceeded 200ms timeout' });
    expect(took).toBeGreaterThanOrEqual(195);
    expect(took).toBeLessThan(1_500);
    const pid = Number(cell.lines()[0]);
    expect(pid).toBeGreaterThan(0);
    expect(alive(pid)).toBe(false);
    expect(cell.lines().at(-1)).toBe('Exit status 143'); // SIGTERM
  });

  it('kills a child that ignores SIGTERM after the grace period', async () => {
    const err = await failure(() =>
      buildStep(
        { timeout: { action: sh('trap "" TERM; echo $$; exec sleep 30'), timeoutMs: 100 } },
        cell.ctx({ gracefulShutdownMs: 200 }),
      ).perform(new AbortController().signal),
    );
    expect(err.message).toBe('exceeded 100ms timeout');
    expect(alive(Number(cell.lines()[0]))).toBe(false);
    expect(cell.lines().at(-1)).toBe('Exit status 137 (exceeded 200ms graceful shutdown interval)');
  });

  it('passes when the action finishes in time', async () => {
    await buildStep({ timeout: { action: sh('echo quick'), timeoutMs: 5_000 } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    expect(cell.lines()[0]).toBe('quick');
  });

  it('passes on an earlier failure unchanged', async () => {
    const err = await failure(() =>
      buildStep({ timeout: { action: sh('exit 2'), timeoutMs: 5_000 } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    expect(err.message).toBe('LOG: Exited with status 2');
  });

  it('appends the emittable error of the interrupted child', async () => {
    const child = {
      perform: (signal: AbortSignal) =>
        new Promise<void>((_, reject) =>
          signal.addEventListener('abort', () => reject(emittableError('download', 'Downloading app failed'))),
        ),
    };
    const err = await failure(() => new TimeoutStep(child, 100).perform(new AbortController().signal));
    expect(err.message).toBe('exceeded 100ms timeout; Downloading app failed');
  });

  it('is cancelled, not timed out, when its parent is', async () => {
    const controller = new AbortController();
    const done = buildStep(
      { timeout: { action: sh('echo go; exec sleep 30'), timeoutMs: 10_000 } },
      cell.ctx(),
    ).perform(controller.signal);
    await eventually(() => cell.lines().includes('go'));
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
  });
});
