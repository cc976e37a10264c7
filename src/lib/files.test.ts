import { mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { writeFileAtomic } from './files.ts';

const dir = mkdtempSync(path.join(tmpdir(), 'files-test-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Writes `n` versions of a large record with `write` while reading it back; counts the reads that do not parse. */
async function tornReads(write: (file: string, data: string) => Promise<void>, n = 30): Promise<number> {
  const file = path.join(dir, `record-${Math.random()}`);
  await writeFileAtomic(file, JSON.stringify({ v: -1 }));
  let writing = true;
  let torn = 0;
  const reader = (async () => {
    while (writing) {
      try {
        JSON.parse(readFileSync(file, 'utf8'));
      } catch {
        torn++;
      }
      await new Promise((r) => setImmediate(r));
    }
  })();
  for (let v = 0; v < n; v++) await write(file, JSON.stringify({ v, pad: 'x'.repeat(1 << 20) }));
  writing = false;
  await reader;
  return torn;
}

describe('writeFileAtomic', () => {
  it('never lets a reader see a half-written file, where a plain write does', { timeout: 120_000 }, async () => {
    expect(await tornReads((f, d) => writeFileAtomic(f, d))).toBe(0);
    // The control: the same with writeFile (truncate, then write) shows torn content.
    expect(await tornReads((f, d) => writeFile(f, d), 200)).toBeGreaterThan(0);
  });

  it('keeps the mode it is given', async () => {
    const file = path.join(dir, 'secret');
    await writeFileAtomic(file, 'x', { mode: 0o600 });
    expect(statSync(file).mode & 0o777).toBe(0o600);
  });
});
