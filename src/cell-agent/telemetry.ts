// What the rep tells the outside about the work it runs, in one place: each instance's log (envelopes tagged
// as Diego's rep tags them, to the cell's log hub) and the container and cell metrics. The rep calls it at
// the points where Diego's executor emits: container created, running, stopped, destroyed.
import type { Logger } from 'pino';
import type { IActualLRP, IDesiredLRP, ITask } from '../crds/models.ts';
import type { Container } from './backends/types.ts';
import { ContainerMetrics, exceededLogRateLimit, type CellCapacity } from './container-metrics.ts';
import { logTags, resolveMetricTags } from './logs/envelope.ts';
import { LogHub } from './logs/hub.ts';
import { InstanceLog } from './logs/instance-log.ts';
import { streamKey } from './logs/stream-server.ts';

export interface TelemetryOptions {
  /** Where the envelopes go (the ops server streams from it); default: a hub of its own. */
  hub?: LogHub;
  /** Diego's max_log_lines_per_second per instance; 0 (Diego's default): unlimited. */
  maxLogLinesPerSecond?: number;
  /** Diego's container_metrics_report_interval (default 15 s). */
  containerMetricsIntervalMs?: number;
  /** Also write every app line to the agent's own log (default off: they go to the log stream only). */
  logAppLines?: boolean;
}

export class CellTelemetry {
  readonly hub: LogHub;
  readonly metrics: ContainerMetrics;
  readonly #cellId: string;
  readonly #logAppLines: boolean;
  readonly #log: Logger;
  readonly #maxLines: number;

  constructor(opts: TelemetryOptions & { cellId: string; capacity: CellCapacity; log: Logger }) {
    this.hub = opts.hub ?? new LogHub();
    this.#cellId = opts.cellId;
    this.#log = opts.log;
    this.#maxLines = opts.maxLogLinesPerSecond ?? 0;
    this.#logAppLines = opts.logAppLines ?? false;
    this.metrics = new ContainerMetrics({
      cellId: opts.cellId,
      capacity: opts.capacity,
      intervalMs: opts.containerMetricsIntervalMs,
      log: opts.log,
    });
  }

  start(): void {
    this.metrics.start();
  }

  stop(): void {
    this.metrics.stop();
  }

  /** The log of an LRP instance (Diego: LogConfig from the DesiredLRP, metric tags resolved for the instance). */
  lrpLog(d: IDesiredLRP, a: IActualLRP, instanceGuid: string): InstanceLog {
    const index = a.spec.index;
    const logGuid = d.spec.logGuid || d.spec.processGuid;
    return this.#instanceLog(
      a.metadata.namespace ?? '',
      logGuid,
      index,
      instanceGuid,
      d.spec.logSource,
      d.spec.metricTags,
      {
        instanceGuid,
        index,
      },
      d.spec.logRateLimit?.bytesPerSecond,
    );
  }

  /** The log of a task (index 0; its metric tags have no per-instance values). */
  taskLog(t: ITask): InstanceLog {
    const logGuid = t.spec.logGuid || t.spec.taskGuid;
    return this.#instanceLog(
      t.metadata.namespace ?? '',
      logGuid,
      0,
      t.spec.taskGuid,
      t.spec.logSource,
      t.spec.metricTags,
      {},
      t.spec.logRateLimit?.bytesPerSecond,
    );
  }

  trackLRP(container: Container, d: IDesiredLRP, a: IActualLRP, instanceGuid: string, log?: InstanceLog): void {
    const tags = resolveMetricTags(d.spec.metricTags, { index: a.spec.index, instanceGuid });
    this.metrics.track({
      container,
      labels: {
        source_id: tags.source_id || d.spec.metricsGuid || d.spec.logGuid || d.spec.processGuid,
        instance_id: String(a.spec.index),
        process_guid: d.spec.processGuid,
        instance_guid: instanceGuid,
      },
      memoryMb: d.spec.memoryMb ?? 0,
      diskMb: d.spec.diskMb ?? 0,
      log: log && logRate(log),
    });
  }

  trackTask(container: Container, t: ITask, log?: InstanceLog): void {
    const tags = resolveMetricTags(t.spec.metricTags, {});
    this.metrics.track({
      container,
      labels: {
        source_id: tags.source_id || t.spec.metricsGuid || t.spec.logGuid || t.spec.taskGuid,
        instance_id: '0',
        process_guid: t.spec.taskGuid,
        instance_guid: t.spec.taskGuid,
      },
      memoryMb: t.spec.memoryMb ?? 0,
      diskMb: t.spec.diskMb ?? 0,
      log: log && logRate(log),
    });
  }

  running(handle: string): void {
    this.metrics.running(handle);
  }

  untrack(handle: string): void {
    this.metrics.untrack(handle);
  }

  #instanceLog(
    namespace: string,
    logGuid: string,
    index: number,
    containerGuid: string,
    sourceName: string | undefined,
    metricTags: IDesiredLRP['spec']['metricTags'],
    instance: { index?: number; instanceGuid?: string },
    bytesPerSecond: number | undefined,
  ): InstanceLog {
    return new InstanceLog({
      cellId: this.#cellId,
      containerGuid,
      logGuid: streamKey(namespace, logGuid),
      tags: logTags(logGuid, index, resolveMetricTags(metricTags, instance)),
      sourceName,
      limits: { linesPerSecond: this.#maxLines, bytesPerSecond: bytesPerSecond ?? -1 },
      hub: this.hub,
      log: this.#log.child({ logGuid, index }),
      onExceeded: () => exceededLogRateLimit.inc(),
      logAppLines: this.#logAppLines,
    });
  }
}

function logRate(log: InstanceLog): { bytesEmitted(): number; bytesPerSecondLimit: number } {
  return { bytesEmitted: () => log.bytesEmitted, bytesPerSecondLimit: log.limiter.limits.bytesPerSecond ?? -1 };
}
