import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { ProcessBackend } from './process.ts';
import { cgroupUsage, dirBytes } from './usage.ts';

let dir: string;

beforeEach(async () => {
  dir = await mkdtemp(path.join(tmpdir(), 'usage-'));
});

afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('container usage', () => {
  it('reads cgroup v1 cpuacct and memory, without the inactive page cache', async () => {
    await mkdir(path.join(dir, 'cpuacct', 'c1'), { recursive: true });
    await mkdir(path.join(dir, 'memory', 'c1'), { recursive: true });
    await writeFile(path.join(dir, 'cpuacct', 'c1', 'cpuacct.usage'), '123456789\n');
    await writeFile(path.join(dir, 'memory', 'c1', 'memory.usage_in_bytes'), '10000000\n');
    await writeFile(path.join(dir, 'memory', 'c1', 'memory.stat'), 'cache 5\ntotal_inactive_file 2000000\n');
    expect(await cgroupUsage('c1', dir)).toEqual({ cpuNanos: 123456789, memoryBytes: 8000000 });
  });

  it('falls back to the cgroup v2 names', async () => {
    await mkdir(path.join(dir, 'c2'), { recursive: true });
    await writeFile(path.join(dir, 'c2', 'cpu.stat'), 'usage_usec 1500\nuser_usec 1000\n');
    await writeFile(path.join(dir, 'c2', 'memory.current'), '4096000\n');
    await writeFile(path.join(dir, 'c2', 'memory.stat'), 'anon 1\ninactive_file 96000\n');
    expect(await cgroupUsage('c2', dir)).toEqual({ cpuNanos: 1_500_000, memoryBytes: 4_000_000 });
  });

  it('measures the blocks of the files under a directory', async () => {
    const empty = await dirBytes(dir);
    await writeFile(path.join(dir, 'big'), Buffer.alloc(1024 * 1024, 1));
    expect((await dirBytes(dir)) - empty).toBeGreaterThanOrEqual(1024 * 1024);
    expect(await dirBytes(path.join(dir, 'missing'))).toBe(0);
  });

  it("reports a process container's cpu, memory and disk from /proc and its directory", async () => {
    const backend = new ProcessBackend({ baseDir: path.join(dir, 'containers'), outputDrainMs: 100 });
    const c = await backend.create({ handle: 'busy' });
    try {
      // Burn some CPU, write 256 KiB, then sleep so the group stays alive while we look.
      await c.run(
        {
          path: '/bin/sh',
          args: ['-c', 'i=0; while [ $i -lt 200000 ]; do i=$((i+1)); done; head -c 262144 /dev/zero > data; sleep 30'],
        },
        { stdout: () => {}, stderr: () => {} },
      );
      let usage = await c.usage!();
      const deadline = Date.now() + 20_000;
      while ((usage.cpuNanos === 0 || usage.diskBytes < 262144) && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        usage = await c.usage!();
      }
      expect(usage.cpuNanos).toBeGreaterThan(0);
      expect(usage.memoryBytes).toBeGreaterThan(0);
      expect(usage.diskBytes).toBeGreaterThanOrEqual(262144);
    } finally {
      await backend.destroy('busy');
    }
  }, 30_000);
});
