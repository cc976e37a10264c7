import { afterEach, describe, expect, it } from 'vitest';
import { registry } from '../lib/metrics.ts';
import type { Container, ContainerUsage } from './backends/types.ts';
import { ContainerMetrics } from './container-metrics.ts';

/** A container whose usage the test sets. */
function fakeContainer(handle: string, usage: ContainerUsage): Container & { usage: () => Promise<ContainerUsage> } {
  return {
    handle,
    properties: {},
    run: () => Promise.reject(new Error('not here')),
    streamIn: () => Promise.resolve(),
    streamOut: () => Promise.reject(new Error('not here')),
    info: () => Promise.resolve({ ports: [] }),
    netIn: () => Promise.reject(new Error('not here')),
    usage: () => Promise.resolve({ ...usage }),
  };
}

const MiB = 1024 * 1024;
let metrics: ContainerMetrics | undefined;
afterEach(() => metrics?.stop());

const value = async (name: string, labels: Record<string, string>) => {
  const m = (await registry.getSingleMetric(name)!.get()).values.find((v) =>
    Object.entries(labels).every(([k, l]) => v.labels[k] === l),
  );
  return m?.value;
};

describe('ContainerMetrics', () => {
  it("shows each container's usage and quotas with Diego's labels, and the cell's capacity, until untracked", async () => {
    let t = 1_000_000;
    metrics = new ContainerMetrics({
      cellId: 'cm-cell',
      capacity: { memoryMb: 1024, diskMb: 4096, containers: 10 },
      now: () => t,
      intervalMs: 60_000,
    });
    metrics.start();
    const usage = { cpuNanos: 1e9, memoryBytes: 30 * MiB, diskBytes: 5 * MiB };
    const c = fakeContainer('ig-7', usage);
    let logBytes = 0;
    metrics.track({
      container: c,
      labels: { source_id: 'app', instance_id: '1', process_guid: 'pg', instance_guid: 'ig-7' },
      memoryMb: 256,
      diskMb: 1024,
      log: { bytesEmitted: () => logBytes, bytesPerSecondLimit: 4096 },
    });
    await metrics.sample();
    usage.cpuNanos += 5e8; // half a core over the next second
    logBytes += 3000;
    t += 1000;
    await metrics.sample();

    const labels = { instance_guid: 'ig-7' };
    expect(await value('container_memory', labels)).toBe(30 * MiB);
    expect(await value('container_memory_quota', labels)).toBe(256 * MiB);
    expect(await value('container_disk', labels)).toBe(5 * MiB);
    expect(await value('container_disk_quota', labels)).toBe(1024 * MiB);
    expect(await value('container_absolute_usage', labels)).toBe(1.5e9);
    expect(await value('container_cpu', labels)).toBeCloseTo(50);
    expect(await value('container_log_rate', labels)).toBe(3000);
    expect(await value('container_log_rate_limit', labels)).toBe(4096);
    const text = await registry.metrics();
    expect(text).toMatch(
      /container_memory\{source_id="app",instance_id="1",process_guid="pg",instance_guid="ig-7"\} 31457280/,
    );

    const cell = { cell_id: 'cm-cell' };
    expect(await value('CapacityTotalMemory', cell)).toBe(1024);
    expect(await value('CapacityRemainingMemory', cell)).toBe(768);
    expect(await value('CapacityRemainingDisk', cell)).toBe(3072);
    expect(await value('CapacityRemainingContainers', cell)).toBe(9);
    expect(await value('ContainerCount', cell)).toBe(1);
    expect(await value('StartingContainerCount', cell)).toBe(1);
    metrics.running('ig-7');
    expect(await value('StartingContainerCount', cell)).toBe(0);

    metrics.untrack('ig-7');
    expect(await value('container_memory', labels)).toBeUndefined();
    expect(await value('ContainerCount', cell)).toBe(0);
    metrics.stop();
    expect(await value('CapacityTotalMemory', cell)).toBeUndefined();
  });
});
