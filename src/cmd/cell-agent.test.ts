import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir, totalmem } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { capacityMb } from './cell-agent.ts';

describe('cell-agent capacity flags', () => {
  const dir = mkdtempSync(join(tmpdir(), 'capacity-'));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('takes a number of MB as given', async () => {
    await expect(capacityMb('--memory-mb', '2048', dir)).resolves.toBe(2048);
  });

  it('auto: the node memory, and the size of the filesystem the (not yet created) state dir will be on', async () => {
    await expect(capacityMb('--memory-mb', 'auto', dir)).resolves.toBe(Math.floor(totalmem() / 2 ** 20));
    const disk = await capacityMb('--disk-mb', 'auto', join(dir, 'not', 'yet'));
    expect(disk).toBeGreaterThan(0);
    await expect(capacityMb('--disk-mb', 'auto', dir)).resolves.toBe(disk);
  });

  it('names the flag and the accepted forms when the value is wrong', async () => {
    await expect(capacityMb('--disk-mb', '10GB', dir)).rejects.toThrow(
      '--disk-mb must be a whole number of MB or "auto" (got "10GB")',
    );
    await expect(capacityMb('--memory-mb', '0', dir)).rejects.toThrow(/--memory-mb/);
  });
});
