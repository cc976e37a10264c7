import { describe, expect, it } from 'vitest';
import { CellResources, insufficient } from './fit.ts';

describe('cell resources', () => {
  it('reserves until memory, disk or containers run out, and frees on release', () => {
    const cell = new CellResources({ memoryMb: 256, diskMb: 1024, containers: 2 });
    let changes = 0;
    cell.onChange(() => changes++);
    expect(cell.reserve('a', { memoryMb: 200, diskMb: 100 })).toEqual([]);
    expect(cell.reserve('a', { memoryMb: 200, diskMb: 100 })).toEqual([]); // idempotent
    expect(cell.remaining()).toEqual({ memoryMb: 56, diskMb: 924, containers: 1 });
    expect(cell.reserve('b', { memoryMb: 100, diskMb: 2000 })).toEqual(['disk', 'memory']);
    expect(cell.reserve('b', { memoryMb: 56 })).toEqual([]);
    expect(cell.reserve('c', {})).toEqual(['containers']);
    cell.release('a');
    cell.release('a');
    expect(cell.remaining()).toEqual({ memoryMb: 200, diskMb: 1024, containers: 1 });
    expect(changes).toBe(3);
  });

  it('words problems as the auction does', () => {
    expect(insufficient(['memory', 'disk'])).toBe('insufficient resources: disk, memory');
    expect(insufficient([])).toBe('insufficient resources');
  });
});
