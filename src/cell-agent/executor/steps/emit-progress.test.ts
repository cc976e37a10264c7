import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { failure, sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

const messages = { startMessage: 'Starting app', successMessage: 'App started', failureMessagePrefix: 'App failed' };

describe('emit_progress step', () => {
  it('logs the start and success messages around its action', async () => {
    await buildStep({ emitProgress: { action: sh('echo working'), ...messages } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    expect(cell.logs.map((m) => `${m.stream}: ${m.line}`)).toEqual([
      'stdout: Starting app',
      'stdout: working',
      'stdout: Exit status 0',
      'stdout: App started',
    ]);
  });

  it('logs "<prefix>: <error>" for an emittable error and passes the error on', async () => {
    const err = await failure(() =>
      buildStep({ emitProgress: { action: sh('exit 5', { logSource: 'APP' }), ...messages } }, cell.ctx()).perform(
        new AbortController().signal,
      ),
    );
    expect(err.message).toBe('APP: Exited with status 5');
    expect(cell.logs.at(-1)).toEqual({
      source: 'LOG',
      stream: 'stderr',
      line: 'App failed: APP: Exited with status 5',
    });
    expect(cell.lines()).not.toContain('App started');
  });

  it('logs only the prefix for an error that is not emittable', async () => {
    await failure(() =>
      buildStep(
        { emitProgress: { action: { parallel: { actions: [sh('exit 1')] } }, ...messages } },
        cell.ctx(),
      ).perform(new AbortController().signal),
    );
    expect(cell.lines('stderr')).toEqual(['App failed']);
  });

  it('uses its own log source for its messages only', async () => {
    await buildStep(
      { emitProgress: { action: sh('echo inner'), startMessage: 'go', logSource: 'STG' } },
      cell.ctx(),
    ).perform(new AbortController().signal);
    expect(cell.logs.slice(0, 2)).toEqual([
      { source: 'STG', stream: 'stdout', line: 'go' },
      { source: 'LOG', stream: 'stdout', line: 'inner' },
    ]);
  });
});
