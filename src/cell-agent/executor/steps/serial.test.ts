import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { eventually, failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

describe('serial step', () => {
  it('runs the actions in order', async () => {
    await buildStep({ serial: { actions: [sh('echo one'), sh('echo two'), sh('echo three')] } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    expect(cell.lines().filter((l) => !l.startsWith('Exit status'))).toEqual(['one', 'two', 'three']);
  });

  it('stops at the first failure and fails with its error', async () => {
    const err = await failure(() =>
      buildStep({ serial: { actions: [sh('echo one'), sh('exit 4'), sh('echo never')] } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    expect(err).toMatchObject({ code: 'exit', message: 'LOG: Exited with status 4' });
    expect(cell.lines()).not.toContain('never');
  });

  it('is ready when its last step is, and cancels the running step', async () => {
    const controller = new AbortController();
    let ready = false;
    const done = buildStep(
      { serial: { actions: [sh('echo first'), sh('echo second; exec sleep 30'), sh('echo never')] } },
      cell.ctx(),
    ).perform(controller.signal, () => (ready = true));
    await eventually(() => cell.lines().includes('second'));
    expect(ready).toBe(false); // the second of three steps is running
    controller.abort();
    await expect(done).rejects.toMatchObject({ code: 'cancelled' });
    expect(cell.lines()).not.toContain('never');
  });
});
