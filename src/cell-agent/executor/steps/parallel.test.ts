import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';
import type { StepError } from '../errors.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

describe('parallel step', () => {
  it('runs all actions at once and succeeds when all do', async () => {
    const started = Date.now();
    await buildStep(
      { parallel: { actions: [sh('sleep 0.4; echo a'), sh('sleep 0.4; echo b'), sh('sleep 0.4; echo c')] } },
      cell.ctx(),
    ).perform(new AbortController().signal);
    expect(Date.now() - started).toBeLessThan(1_100); // one after the other would take 1.2 s
    expect(
      cell
        .lines()
        .filter((l) => /^[abc]$/.test(l))
        .sort(),
    ).toEqual(['a', 'b', 'c']);
  });

  it('waits for every action even when one fails, and reports all failures', async () => {
    const err = await failure(() =>
      buildStep(
        {
          parallel: {
            actions: [
              sh('exit 1', { logSource: 'ONE' }),
              sh('sleep 0.3; echo slow done'),
              sh('exit 2', { logSource: 'TWO' }),
            ],
          },
        },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(cell.lines()).toContain('slow done'); // the failure did not stop the slow one
    expect(err).toMatchObject({ code: 'aggregate', emittable: false });
    expect(err.message.split('; ').sort()).toEqual(['ONE: Exited with status 1', 'TWO: Exited with status 2']);
    expect((err as unknown as StepError).errors.map((e) => e.exitStatus).sort()).toEqual([1, 2]);
  });

  it('is ready when all are ready; cancelling cancels all', async () => {
    const controller = new AbortController();
    let ready = false;
    const done = buildStep({ parallel: { actions: [sh('exec sleep 30'), sh('exec sleep 30')] } }, cell.ctx()).perform(
      controller.signal,
      () => (ready = true),
    );
    await eventually(() => ready);
    controller.abort();
    const err = await failure(() => done);
    // Cancellations are not displayable: the combined message is empty.
    expect(err).toMatchObject({ code: 'aggregate', message: '' });
  });
});
