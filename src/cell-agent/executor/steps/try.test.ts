import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { sh, testCell, type TestCell } from '../../testing.ts';
import { buildStep } from '../build.ts';

let cell: TestCell;
beforeEach(async () => {
  cell = await testCell();
});
afterEach(() => cell.cleanup());

describe('try step', () => {
  it('swallows the failure of its action and logs it to the operator log', async () => {
    const logged: unknown[] = [];
    const logger = { debug() {}, info: (o: object) => logged.push(o), warn() {}, error() {} };
    await buildStep(
      { serial: { actions: [{ try: { action: sh('echo trying; exit 9') } }, sh('echo after')] } },
      cell.ctx({ logger }),
    ).perform(new AbortController().signal);
    expect(cell.lines()).toEqual(['trying', 'Exit status 9', 'after', 'Exit status 0']);
    expect(logged).toContainEqual({ error: 'LOG: Exited with status 9' });
  });

  it('passes its log source to its action', async () => {
    await buildStep({ try: { action: sh('echo hi'), logSource: 'TRY' } }, cell.ctx()).perform(
      new AbortController().signal,
    );
    expect(cell.logs[0]).toEqual({ source: 'TRY', stream: 'stdout', line: 'hi' });
  });
});
