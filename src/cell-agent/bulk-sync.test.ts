import pino from 'pino';
import { describe, expect, it } from 'vitest';
import type { ContainerBackend } from './backends/types.ts';
import { BulkSyncLoop } from './bulk-sync.ts';
import type { DiegoClient } from '../lib/resources.ts';

describe('BulkSyncLoop', () => {
  it('never runs two passes side by side, even when asked twice at once', async () => {
    let inPass = 0;
    let most = 0;
    const backend = {
      list: async () => {
        most = Math.max(most, ++inPass);
        await new Promise((r) => setTimeout(r, 20));
        inPass--;
        return [];
      },
    } as unknown as ContainerBackend;
    const loop = new BulkSyncLoop({
      cellId: 'c',
      backend,
      client: {} as DiegoClient,
      log: pino({ level: 'silent' }),
      lrps: () => [],
      tasks: () => [],
      busy: () => ({ handles: new Set(), keys: new Set() }),
    });
    await Promise.all([loop.syncNow(), loop.syncNow(), loop.syncNow()]);
    expect(most).toBe(1);
    await loop.stop();
  });
});
