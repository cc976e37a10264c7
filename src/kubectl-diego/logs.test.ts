import { describe, expect, it } from 'vitest';
import {
  cfTime,
  formatLogLine,
  keepInstance,
  type LogLine,
  logSources,
  lrpLogTarget,
  mergeByTime,
  parseLogLine,
  ReorderBuffer,
  taskLogTarget,
  vouchedFor,
} from './logs.ts';
import { actual, cell, desired, task } from './testing.ts';

const at = (iso: string, extraNs = 0n) => (BigInt(Date.parse(iso)) * 1_000_000n + extraNs).toString();
const line = (
  ts: string,
  instance: string,
  payload: string,
  type: 'OUT' | 'ERR' = 'OUT',
  source = 'APP/PROC/WEB',
): LogLine => ({
  timestamp: ts,
  source_id: 'web-guid',
  instance_id: instance,
  tags: { source_type: source },
  log: { payload, type },
});

describe('log lines as cf logs prints them', () => {
  it('labels each line with its source type and instance index', () => {
    expect(formatLogLine(line(at('2026-12-06T10:00:00.123Z'), '0', 'hello\n'))).toBe(
      '   2026-12-06T10:00:00.12+0000 [APP/PROC/WEB/0] OUT hello',
    );
    expect(formatLogLine(line(at('2026-12-06T10:00:01Z'), '3', 'boom', 'ERR', 'CELL'))).toBe(
      '   2026-12-06T10:00:01.00+0000 [CELL/3] ERR boom',
    );
  });
  it('truncates the time to hundredths, as cf does', () => {
    expect(cfTime(at('2026-12-06T10:00:00.999Z', 999_999n))).toBe('2026-12-06T10:00:00.99+0000');
  });
  it('colours only when asked', () => {
    expect(formatLogLine(line(at('2026-12-06T10:00:00Z'), '0', 'x', 'ERR'), true)).toContain('\u001b[31mERR\u001b[39m');
  });
});

describe('parseLogLine', () => {
  it('reads an envelope and skips what is not one', () => {
    const e = line(at('2026-12-06T10:00:00Z'), '1', 'hi');
    expect(parseLogLine(JSON.stringify(e))).toEqual(e);
    expect(parseLogLine('')).toBeUndefined();
    expect(parseLogLine('not json')).toBeUndefined();
    expect(parseLogLine('{"timestamp":"soon","log":{"payload":"x"}}')).toBeUndefined();
  });
});

describe('merging the cells', () => {
  it('puts the lines of several cells in one time order', () => {
    const a = [line('100', '0', 'a1'), line('300', '0', 'a2')];
    const b = [line('200', '1', 'b1'), line('400', '1', 'b2')];
    expect(mergeByTime([a, b]).map((e) => e.log.payload)).toEqual(['a1', 'b1', 'a2', 'b2']);
  });
  it('compares nanosecond timestamps beyond a double', () => {
    const x = line('1796551200000000001', '0', 'later');
    const y = line('1796551200000000000', '0', 'earlier');
    expect(mergeByTime([[x], [y]]).map((e) => e.log.payload)).toEqual(['earlier', 'later']);
  });
  it('keeps one instance when asked', () => {
    expect(keepInstance(line('1', '2', ''), 2)).toBe(true);
    expect(keepInstance(line('1', '2', ''), 0)).toBe(false);
    expect(keepInstance(line('1', '2', ''), undefined)).toBe(true);
  });
  it('holds followed lines for a window, then releases them in time order', () => {
    const buf = new ReorderBuffer(300);
    buf.push(line('200', '1', 'b'), 1000);
    buf.push(line('100', '0', 'a'), 1100);
    expect(buf.release(1200)).toEqual([]);
    expect(buf.release(1300).map((e) => e.log.payload)).toEqual(['b']);
    buf.push(line('50', '0', 'c'), 1350);
    expect(buf.release(1400).map((e) => e.log.payload)).toEqual(['a']);
    expect(buf.release(1400, true).map((e) => e.log.payload)).toEqual(['c']);
    expect(buf.size).toBe(0);
  });
});

describe('where the lines are', () => {
  const web = desired('web', { logGuid: 'web-logs' });
  const actuals = [
    actual(web, 0, 'cell-a', { state: 'RUNNING', cellId: 'cell-a' }),
    actual(web, 1, 'cell-b', { state: 'RUNNING', cellId: 'cell-b' }),
    actual(web, 1, 'cell-c', { state: 'RUNNING', presence: 'EVACUATING', cellId: 'cell-c' }, 'web-1-evacuating'),
    actual(web, 2, undefined),
    actual(desired('other'), 0, 'cell-d', { cellId: 'cell-d' }),
  ];

  it("reads every cell holding one of the app's instances (copies too)", () => {
    expect(lrpLogTarget(web, actuals)).toEqual({
      kind: 'DesiredLRP',
      namespace: 'apps',
      name: 'web',
      logGuid: 'web-logs',
      cellIds: ['cell-a', 'cell-b', 'cell-c'],
    });
    expect(lrpLogTarget(web, actuals, 1).cellIds).toEqual(['cell-b', 'cell-c']);
    expect(lrpLogTarget(desired('plain'), []).logGuid).toBe('plain-guid');
  });

  it("reads a task's cell, its log guid defaulting to the task guid", () => {
    expect(taskLogTarget(task('t', {}, { state: 'Running', cellId: 'cell-a' }))).toMatchObject({
      kind: 'Task',
      logGuid: 't-guid',
      cellIds: ['cell-a'],
    });
    expect(taskLogTarget(task('p')).cellIds).toEqual([]);
  });

  it("builds each cell's stream URL, and says which cells cannot be read", () => {
    const cells = [
      cell('cell-a', { opsUrl: 'https://10.0.0.1:17008/' }),
      cell('cell-b', { opsUrl: 'http://127.0.0.1:17009' }),
      cell('cell-c'),
    ];
    const target = lrpLogTarget(web, actuals);
    const { sources, problems } = logSources({ ...target, cellIds: [...target.cellIds, 'cell-x'] }, cells, {
      follow: true,
      recent: true,
    });
    expect(sources).toEqual([
      { cellId: 'cell-a', url: 'https://10.0.0.1:17008/v1/namespaces/apps/logs/web-logs?recent=true&follow=true' },
      { cellId: 'cell-b', url: 'http://127.0.0.1:17009/v1/namespaces/apps/logs/web-logs?recent=true&follow=true' },
    ]);
    expect(problems).toEqual([
      'cell cell-c does not advertise its log stream (spec.opsUrl): its lines are not read',
      'cell cell-x is not registered (no Cell object): its lines are not read',
    ]);
    const bounded = logSources(target, cells, { follow: false, recent: true, max: 1 });
    expect(bounded.sources.map((s) => s.url)).toEqual([
      'https://10.0.0.1:17008/v1/namespaces/apps/logs/web-logs?recent=true',
    ]);
    expect(bounded.problems[0]).toBe('cell cell-b not read: at most 1 cells are read at once');
  });
});

describe('vouchedFor (may the token go to a cell’s log stream?)', () => {
  it('only to a host that is an address of the cell’s Node', () => {
    expect(vouchedFor('https://10.0.0.7:17008/v1/logs/x', ['10.0.0.7', 'node-1'])).toBe(true);
    expect(vouchedFor('https://[fd00::7]:17008/v1/logs/x', ['fd00::7'])).toBe(true);
    expect(vouchedFor('https://evil.example:17008/v1/logs/x', ['10.0.0.7'])).toBe(false);
    expect(vouchedFor('https://10.0.0.7:17008/', undefined)).toBe(false); // no Node to ask
  });
});
