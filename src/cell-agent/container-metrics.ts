// The cell's metrics on the agent's /metrics: Diego's container metrics for every container it runs
// (executor containermetrics: cpu, memory, disk and their quotas, emitted every
// container_metrics_report_interval = 15 s) and its cell metrics (executor depot/metrics/reporter.go:
// Capacity{Total,Remaining,Allocated}{Memory,Disk,Containers} in MiB, ContainerUsage{Memory,Disk},
// ContainerCount, StartingContainerCount). Containers are sampled on that interval, which is also the
// period of the cpu percentage (as Diego computes it between two samples), and again on each scrape when
// the last sample is older than a second, so a scrape never shows a container that is gone. log_rate and
// log_rate_limit (bytes/s) are the instance's app log output, as the executor's log rate limiter reports them.
//
// Prometheus names: Diego's container metric names get a `container_` prefix (container_memory,
// container_cpu, container_absolute_usage = cpu ns, ...); the labels are Diego's envelope fields: source_id
// (the metric tags' source_id, else the log guid), instance_id (the index), plus process_guid and
// instance_guid. Cell metrics keep Diego's names with a cell_id label.
import type { Logger } from 'pino';
import { Counter, Gauge } from 'prom-client';
import { registry } from '../lib/metrics.ts';
import type { Container, ContainerUsage } from './backends/types.ts';

export interface ContainerLabels {
  source_id: string;
  instance_id: string;
  process_guid: string;
  instance_guid: string;
}

export interface TrackedContainer {
  container: Container;
  labels: ContainerLabels;
  memoryMb: number;
  diskMb: number;
  /** The instance's log: bytes let through so far, and its bytes-per-second limit (-1: none). */
  log?: { bytesEmitted(): number; bytesPerSecondLimit: number };
}

export interface CellCapacity {
  memoryMb: number;
  diskMb: number;
  containers: number;
}

export interface ContainerMetricsOptions {
  cellId: string;
  capacity: CellCapacity;
  /** Diego's container_metrics_report_interval (default 15 s); 0: only on scrapes. */
  intervalMs?: number;
  log?: Logger;
  now?: () => number;
}

interface Entry extends TrackedContainer {
  createdAt: number;
  running: boolean;
  last?: { at: number; usage: ContainerUsage; cpuPercent: number; logBytes: number; logRate: number };
}

const MiB = 1024 * 1024;
const CONTAINER_LABELS = ['source_id', 'instance_id', 'process_guid', 'instance_guid'] as const;

/** Every ContainerMetrics of this process (tests run several cells in one process): scrapes read them all. */
const sources = new Set<ContainerMetrics>();

const reuse = <M>(name: string, make: () => M): M => (registry.getSingleMetric(name) as M | undefined) ?? make();

function containerGauge(name: string, help: string, value: (e: Entry) => number | undefined): Gauge<string> {
  return reuse(
    name,
    () =>
      new Gauge({
        name,
        help,
        labelNames: CONTAINER_LABELS,
        registers: [registry],
        async collect() {
          this.reset();
          for (const source of sources) {
            for (const e of await source.fresh()) {
              const v = value(e);
              if (v !== undefined) this.set(e.labels as unknown as Record<string, string>, v);
            }
          }
        },
      }),
  );
}

function cellGauge(name: string, help: string, value: (m: ContainerMetrics) => number): Gauge<string> {
  return reuse(
    name,
    () =>
      new Gauge({
        name,
        help,
        labelNames: ['cell_id'],
        registers: [registry],
        collect() {
          this.reset();
          for (const source of sources) this.set({ cell_id: source.cellId }, value(source));
        },
      }),
  );
}

/** Created once per process, whatever the number of cells. */
let metricsCreated = false;
function createMetrics(): void {
  if (metricsCreated) return;
  metricsCreated = true;
  containerGauge(
    'container_cpu',
    'CPU use of the container over the last interval, in % of one core (Diego: cpu)',
    (e) => e.last?.cpuPercent,
  );
  containerGauge(
    'container_absolute_usage',
    'CPU time used by the container, ns (Diego: absolute_usage)',
    (e) => e.last?.usage.cpuNanos,
  );
  containerGauge(
    'container_memory',
    'Memory used by the container, bytes (Diego: memory)',
    (e) => e.last?.usage.memoryBytes,
  );
  containerGauge(
    'container_memory_quota',
    'Memory limit of the container, bytes; 0: none (Diego: memory_quota)',
    (e) => e.memoryMb * MiB,
  );
  containerGauge(
    'container_disk',
    'Disk written by the container, bytes (Diego: disk)',
    (e) => e.last?.usage.diskBytes,
  );
  containerGauge(
    'container_disk_quota',
    'Disk limit of the container, bytes; 0: none (Diego: disk_quota)',
    (e) => e.diskMb * MiB,
  );
  containerGauge('container_age', 'Time since the container was created, ns (Diego: container_age)', (e) =>
    e.last ? (e.last.at - e.createdAt) * 1e6 : undefined,
  );
  containerGauge('container_log_rate', 'App log bytes per second over the last interval (Diego: log_rate)', (e) =>
    e.log ? e.last?.logRate : undefined,
  );
  containerGauge(
    'container_log_rate_limit',
    'App log bytes per second allowed; -1: none (Diego: log_rate_limit)',
    (e) => e.log?.bytesPerSecondLimit,
  );
  cellGauge('CapacityTotalMemory', 'Memory the cell offers, MiB', (m) => m.capacity.memoryMb);
  cellGauge('CapacityTotalDisk', 'Disk the cell offers, MiB', (m) => m.capacity.diskMb);
  cellGauge('CapacityTotalContainers', 'Containers the cell can hold', (m) => m.capacity.containers);
  cellGauge(
    'CapacityRemainingMemory',
    'Memory not allocated to containers, MiB',
    (m) => m.capacity.memoryMb - m.allocated().memoryMb,
  );
  cellGauge(
    'CapacityRemainingDisk',
    'Disk not allocated to containers, MiB',
    (m) => m.capacity.diskMb - m.allocated().diskMb,
  );
  cellGauge(
    'CapacityRemainingContainers',
    'More containers the cell can hold',
    (m) => m.capacity.containers - m.count(),
  );
  cellGauge('CapacityAllocatedMemory', 'Memory allocated to containers, MiB', (m) => m.allocated().memoryMb);
  cellGauge('CapacityAllocatedDisk', 'Disk allocated to containers, MiB', (m) => m.allocated().diskMb);
  cellGauge('ContainerUsageMemory', 'Memory used by all containers, MiB', (m) => m.used().memoryMb);
  cellGauge('ContainerUsageDisk', 'Disk used by all containers, MiB', (m) => m.used().diskMb);
  cellGauge('ContainerCount', 'Containers on the cell', (m) => m.count());
  cellGauge('StartingContainerCount', 'Containers created but not yet running (healthy)', (m) =>
    m.count((e) => !e.running),
  );
}

export const exceededLogRateLimit = reuse(
  'AppInstanceExceededLogRateLimitCount',
  () =>
    new Counter({
      name: 'AppInstanceExceededLogRateLimitCount',
      help: 'Times an app instance was told it exceeded its log rate limit',
      registers: [registry],
    }),
);

export class ContainerMetrics {
  readonly cellId: string;
  readonly capacity: CellCapacity;
  readonly intervalMs: number;
  readonly #log?: Logger;
  readonly #now: () => number;
  readonly #entries = new Map<string, Entry>();
  #timer?: NodeJS.Timeout;
  #sampling?: Promise<void>;

  constructor(opts: ContainerMetricsOptions) {
    this.cellId = opts.cellId;
    this.capacity = opts.capacity;
    this.intervalMs = opts.intervalMs ?? 15_000;
    this.#log = opts.log;
    this.#now = opts.now ?? Date.now;
    createMetrics();
  }

  /** Starts the periodic sampling and makes this cell's metrics appear on /metrics. */
  start(): void {
    sources.add(this);
    if (this.intervalMs <= 0) return; // sampled on scrapes only
    this.#timer ??= setInterval(() => void this.sample(), this.intervalMs);
    this.#timer.unref();
  }

  stop(): void {
    clearInterval(this.#timer);
    this.#timer = undefined;
    sources.delete(this);
  }

  track(c: TrackedContainer): void {
    this.#entries.set(c.container.handle, { ...c, createdAt: this.#now(), running: false });
  }

  /** The container passed its startup checks (no longer counted in StartingContainerCount). */
  running(handle: string): void {
    const e = this.#entries.get(handle);
    if (e) e.running = true;
  }

  untrack(handle: string): void {
    this.#entries.delete(handle);
  }

  count(filter: (e: Entry) => boolean = () => true): number {
    return [...this.#entries.values()].filter(filter).length;
  }

  allocated(): { memoryMb: number; diskMb: number } {
    let memoryMb = 0;
    let diskMb = 0;
    for (const e of this.#entries.values()) {
      memoryMb += e.memoryMb;
      diskMb += e.diskMb;
    }
    return { memoryMb, diskMb };
  }

  used(): { memoryMb: number; diskMb: number } {
    let memory = 0;
    let disk = 0;
    for (const e of this.#entries.values()) {
      memory += e.last?.usage.memoryBytes ?? 0;
      disk += e.last?.usage.diskBytes ?? 0;
    }
    return { memoryMb: Math.floor(memory / MiB), diskMb: Math.floor(disk / MiB) };
  }

  /** The last sample of each tracked container. */
  snapshot(): (TrackedContainer & { usage?: ContainerUsage; cpuPercent?: number })[] {
    return [...this.#entries.values()].map((e) => ({ ...e, usage: e.last?.usage, cpuPercent: e.last?.cpuPercent }));
  }

  /** The entries, resampled first when the last sample is older than a second (for scrapes). */
  async fresh(): Promise<Entry[]> {
    const now = this.#now();
    // Containers that cannot report usage are never sampled: they do not make every scrape resample the others.
    const stale = (e: Entry) => e.container.usage !== undefined && (!e.last || now - e.last.at > 1000);
    if ([...this.#entries.values()].some(stale)) await this.sample();
    return [...this.#entries.values()];
  }

  /** Reads the usage of every tracked container (one pass at a time). */
  sample(): Promise<void> {
    this.#sampling ??= this.#sampleAll().finally(() => (this.#sampling = undefined));
    return this.#sampling;
  }

  async #sampleAll(): Promise<void> {
    await Promise.all(
      [...this.#entries.values()].map(async (e) => {
        if (!e.container.usage) return;
        try {
          const usage = await e.container.usage();
          const at = this.#now();
          const prev = e.last;
          const logBytes = e.log?.bytesEmitted() ?? 0;
          const logRate = prev && at > prev.at ? ((logBytes - prev.logBytes) * 1000) / (at - prev.at) : 0;
          const cpuPercent =
            prev && at > prev.at
              ? Math.max(0, ((usage.cpuNanos - prev.usage.cpuNanos) / ((at - prev.at) * 1e6)) * 100)
              : 0;
          e.last = { at, usage, cpuPercent, logBytes, logRate };
        } catch (err) {
          this.#log?.debug({ err, handle: e.container.handle }, 'could not read container usage');
        }
      }),
    );
  }
}
