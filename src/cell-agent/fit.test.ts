import { describe, expect, it } from 'vitest';
import { pino } from 'pino';
import type { DiegoClient } from '../lib/resources.ts';
import { CellResources, CellStatusPublisher, insufficient } from './fit.ts';

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

describe('cell status publisher', () => {
  it('tries again after a failed write, so the auction does not keep seeing a stale, too-low status', async () => {
    const writes: Record<string, unknown>[] = [];
    let failures = 1;
    const client = {
      patchStatus: (_kind: string, _ref: unknown, status: Record<string, unknown>) => {
        writes.push(status);
        return failures-- > 0 ? Promise.reject(new Error('apiserver unavailable')) : Promise.resolve({});
      },
    } as unknown as DiegoClient;
    const log = pino({ level: 'silent' });
    const publisher = new CellStatusPublisher(client, 'cell-1', () => ({ available: { memoryMb: 512 } }), log, 10, 20);
    await publisher.publish();
    expect(writes).toHaveLength(1);
    await new Promise((r) => setTimeout(r, 200));
    expect(writes).toHaveLength(2); // retried once, then succeeded: no more writes
    await publisher.stop();
  });
});
