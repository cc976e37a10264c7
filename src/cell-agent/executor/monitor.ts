// The legacy health check (DesiredLRP monitor action) and readiness checks.
// * Monitor (executor depot/steps/monitor_step.go): the monitor action is run once per interval — the unhealthy
//   interval (2 s) until it first succeeds, then the healthy interval (30 s). The first success makes the
//   container healthy (ready: RUNNING); a failure after that ends the container ("Instance became unhealthy: …").
//   Before the first success, a failure past the start timeout ends it ("Instance never healthy after <d>: …").
//   The check's own output is not streamed: on failure it goes to the container's stderr.
// * Readiness (transformer.go transformReadinessCheckDefinition): each readiness check is polled until it
//   passes (every startup interval), then at its interval until it fails, and again; the instance is routable
//   while all pass. Readiness never crashes the instance.
import { emittableError, isCancellation, StepError, cancelledError, toStepError } from './errors.ts';
import { goDuration } from './format.ts';
import { LogStreamer } from './log.ts';
import { sleep, type Ready, type Step } from './step.ts';
import { DEFAULT_LIVENESS_INTERVAL_MS, DEFAULT_STARTUP_INTERVAL_MS, type Probe } from './health.ts';

export interface MonitorOptions {
  /** Builds one run of the monitor action, logging into the given streamer (a buffer). */
  check: (log: LogStreamer) => Step;
  /** The container's log: "Starting health monitoring of container", "Container became healthy", … */
  log: LogStreamer;
  /** The DesiredLRP's startTimeoutMs; 0 waits for ever. */
  startTimeoutMs: number;
  /** rep unhealthy_monitoring_interval (Diego 2 s). */
  unhealthyIntervalMs?: number;
  /** rep healthy_monitoring_interval (Diego 30 s). */
  healthyIntervalMs?: number;
}

const TIMEOUT_MESSAGE = (d: string) => `Timed out after ${d}: health check never passed.`;

/** monitor_step.go. Never resolves: rejects with an emittable 'health' error, or 'cancelled'. */
export class MonitorStep implements Step {
  readonly #o: MonitorOptions;

  constructor(o: MonitorOptions) {
    this.#o = o;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const unhealthy = this.#o.unhealthyIntervalMs ?? DEFAULT_STARTUP_INTERVAL_MS;
    const healthyInterval = this.#o.healthyIntervalMs ?? DEFAULT_LIVENESS_INTERVAL_MS;
    const { log, startTimeoutMs } = this.#o;
    let startBy = startTimeoutMs > 0 ? Date.now() + startTimeoutMs : undefined;
    let healthy = false;
    let interval = unhealthy;
    log.stdout('Starting health monitoring of container');
    for (;;) {
      try {
        await sleep(interval, signal);
      } catch {
        throw cancelledError();
      }
      const output: string[] = [];
      // Like Diego's buffer streamer: the check's stdout is kept, its stderr dropped.
      const buffer = new LogStreamer((m) => m.stream === 'stdout' && output.push(m.line));
      let failure: StepError | undefined;
      try {
        await this.#o.check(buffer).perform(signal);
      } catch (err) {
        if (signal.aborted || isCancellation(err)) throw cancelledError();
        failure = toStepError(err);
      }
      const text = output.join('\n');
      if (healthy && failure) {
        if (text) log.stderr(text);
        log.stdout('Container became unhealthy');
        throw emittableError('health', `Instance became unhealthy: ${text}`, failure);
      }
      if (!healthy && !failure) {
        healthy = true;
        ready?.();
        log.stdout('Container became healthy');
        interval = healthyInterval;
        startBy = undefined;
      }
      if (startBy !== undefined && Date.now() > startBy && failure) {
        const d = goDuration(startTimeoutMs);
        if (text) log.stderr(text);
        log.stderr(TIMEOUT_MESSAGE(d));
        throw emittableError('health', `Instance never healthy after ${d}: ${failure.message || text}`, failure);
      }
    }
  }
}

export interface ReadinessOptions {
  probes: readonly Probe[];
  /** Poll interval until ready (Diego: the startup interval, 2 s). */
  untilReadyIntervalMs?: number;
  /** Called when the instance turns ready (true) or not (false); the first call is true. */
  onChange: (ready: boolean) => void;
  log?: LogStreamer;
}

/** Runs until the signal aborts; resolves then. Never fails the instance. */
export async function monitorReadiness(o: ReadinessOptions, signal: AbortSignal): Promise<void> {
  const untilReady = o.untilReadyIntervalMs ?? DEFAULT_STARTUP_INTERVAL_MS;
  if (o.probes.length === 0) return;
  const passes = async () => {
    try {
      await Promise.all(o.probes.map((p) => p.probe(signal)));
      return true;
    } catch (err) {
      if (signal.aborted) throw err;
      return false;
    }
  };
  try {
    for (;;) {
      while (!(await passes())) await sleep(untilReady, signal);
      o.onChange(true);
      o.log?.stdout('Container passed the readiness health check');
      const every = Math.min(...o.probes.map((p) => p.livenessIntervalMs));
      do await sleep(every, signal);
      while (await passes());
      o.onChange(false);
      o.log?.stdout('Container failed the readiness health check');
    }
  } catch {
    // aborted: the instance is stopping
  }
}
