import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { alive, eventually, failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';
import type { Step } from '../step.ts';
import { CodependentStep } from './codependent.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

describe('codependent step', () => {
  it('cancels the others when one exits, and errors even on a clean exit', async () => {
    const started = Date.now();
    const err = await failure(() =>
      buildStep(
        { codependent: { actions: [sh('echo $$; exec sleep 30'), sh('sleep 0.2; exit 0')] } },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(Date.now() - started).toBeLessThan(2_000);
    expect(err).toMatchObject({ code: 'aggregate', message: 'Codependent step exited' });
    const sleeper = Number(cell.lines()[0]);
    expect(alive(sleeper)).toBe(false);
  });

  it('names the failing child, not the cancelled siblings', async () => {
    const err = await failure(() =>
      buildStep(
        { codependent: { actions: [sh('exec sleep 30'), sh('sleep 0.1; exit 3', { logSource: 'APP' })] } },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(err.message).toBe('APP: Exited with status 3');
  });

  it('without errorOnExit a clean exit is not an error, and need not stop the others', async () => {
    const quick: Step = { perform: () => Promise.resolve() };
    const slow: Step = { perform: () => new Promise((r) => setTimeout(r, 50)) };
    await new CodependentStep([quick, slow], { errorOnExit: false, cancelOthersOnExit: false }).perform(
      new AbortController().signal,
    );
    let slowCancelled = false;
    const watcher: Step = {
      perform: (signal) =>
        new Promise((resolve) =>
          signal.addEventListener('abort', () => {
            slowCancelled = true;
            resolve();
          }),
        ),
    };
    await new CodependentStep([quick, watcher], { errorOnExit: false, cancelOthersOnExit: true }).perform(
      new AbortController().signal,
    );
    expect(slowCancelled).toBe(true);
  });

  it('is ready when all children are', async () => {
    const controller = new AbortController();
    let ready = false;
    const done = buildStep(
      { codependent: { actions: [sh('exec sleep 30'), sh('exec sleep 30')] } },
      cell.ctx(),
    ).perform(controller.signal, () => (ready = true));
    await eventually(() => ready);
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'aggregate' });
  });
});
