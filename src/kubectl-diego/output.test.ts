import { describe, expect, it } from 'vitest';
import { ageOf, humanDuration, renderData, renderTable, useColour } from './output.ts';

describe('renderTable', () => {
  it('aligns columns as kubectl does: capitals, three spaces, last column unpadded', () => {
    const out = renderTable(
      ['name', 'state', 'cell'],
      [
        ['web-0', 'RUNNING', 'cell-a'],
        ['web-10', { text: 'CRASHED', colour: 'red' }, ''],
      ],
    );
    expect(out).toBe(['NAME     STATE     CELL', 'web-0    RUNNING   cell-a', 'web-10   CRASHED'].join('\n') + '\n');
  });

  it('colours without letting the escape codes move the columns', () => {
    const plain = renderTable(['a', 'b'], [[{ text: 'x', colour: 'green' }, 'y']]);
    const coloured = renderTable(['a', 'b'], [[{ text: 'x', colour: 'green' }, 'y']], true);
    expect(coloured).toContain('\u001b[32mx\u001b[39m   y');
    expect(coloured.replaceAll('\u001b[32m', '').replaceAll('\u001b[39m', '')).toBe(plain);
  });
});

describe('useColour', () => {
  it('colours a terminal only, and never when NO_COLOR is set', () => {
    expect(useColour(true, {})).toBe(true);
    expect(useColour(false, {})).toBe(false);
    expect(useColour(undefined, {})).toBe(false);
    expect(useColour(true, { NO_COLOR: '1' })).toBe(false);
  });
});

describe('ages', () => {
  it("prints kubectl's short durations", () => {
    expect(humanDuration(42_000)).toBe('42s');
    expect(humanDuration(200_000)).toBe('3m20s');
    expect(humanDuration(95 * 60_000)).toBe('95m');
    expect(humanDuration((5 * 60 + 10) * 60_000)).toBe('5h10m');
    expect(humanDuration(30 * 3600_000)).toBe('30h');
    expect(humanDuration(76 * 3600_000)).toBe('3d4h');
    expect(humanDuration(400 * 86400_000)).toBe('400d');
    expect(humanDuration(800 * 86400_000)).toBe('2y');
    expect(humanDuration(-5)).toBe('0s');
  });
  it('says <unknown> for a missing or bad timestamp', () => {
    expect(ageOf(undefined, 0)).toBe('<unknown>');
    expect(ageOf('yesterday', 0)).toBe('<unknown>');
    expect(ageOf('2026-12-06T10:00:00Z', Date.parse('2026-12-06T10:01:00Z'))).toBe('60s');
  });
});

describe('renderData', () => {
  it('prints JSON and YAML that parse back', async () => {
    const records = [{ cellId: 'a', capacity: { memoryMb: 1 } }];
    expect(JSON.parse(renderData(records, 'json'))).toEqual(records);
    const { parse } = await import('yaml');
    expect(parse(renderData(records, 'yaml'))).toEqual(records);
  });
});
