// Declarative health checks (check_definition.checks). Diego runs the `healthcheck` binary as sidecar processes
// (cloudfoundry/healthcheck); we run the same probes from the cell agent, with the same messages:
// * tcp: healthy when a connection succeeds within the timeout;
// * http: healthy when GET http://<addr>:<port><path> answers 200 (redirects followed) within the timeout.
// Startup polls every startupIntervalMs (Diego: unhealthy_monitoring_interval, 2 s) until every check passed
// or the start timeout ran out; liveness then polls each check at its interval (default: the healthy
// monitoring interval, 30 s) until one fails (executor depot/steps/health_check_step.go).
import net from 'node:net';
import http from 'node:http';
import type { z } from 'zod';
import type { Check } from '../../crds/checks.ts';
import type { ContainerInfo } from '../backends/types.ts';
import { cancelledError, emittableError, isCancellation, toStepError, StepError } from './errors.ts';
import { goDuration } from './format.ts';
import type { LogStreamer } from './log.ts';
import { ParallelStep } from './steps/parallel.ts';
import { CodependentStep } from './steps/codependent.ts';
import { sleep, type Ready, type Step } from './step.ts';

export type CheckModel = z.infer<typeof Check>;

/** transformer.go DefaultDeclarativeHealthcheckRequestTimeout */
export const DEFAULT_CHECK_TIMEOUT_MS = 1_000;
/** rep unhealthy_monitoring_interval: the startup poll. */
export const DEFAULT_STARTUP_INTERVAL_MS = 2_000;
/** rep healthy_monitoring_interval: the liveness poll when a check sets no interval. */
export const DEFAULT_LIVENESS_INTERVAL_MS = 30_000;
/** transformer.go HealthLogSource */
export const HEALTH_LOG_SOURCE = 'HEALTH';

/** Where a probe connects to. */
export interface CheckTarget {
  host: string;
  port: number;
}

/** A failed probe; `code` is the healthcheck binary's exit status for the failure. */
export class HealthCheckError extends Error {
  readonly code: number;

  constructor(code: number, message: string, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause });
    this.name = 'HealthCheckError';
    this.code = code;
  }
}

const ERRNO_TEXT: Record<string, string> = {
  ECONNREFUSED: 'connection refused',
  ECONNRESET: 'connection reset by peer',
  EHOSTUNREACH: 'no route to host',
  ENETUNREACH: 'network is unreachable',
  ETIMEDOUT: 'connection timed out',
};

const hostPort = (t: CheckTarget): string => (t.host.includes(':') ? `[${t.host}]:${t.port}` : `${t.host}:${t.port}`);

/** healthcheck.go PortHealthCheck. Rejects with HealthCheckError (or the signal's reason when aborted). */
export function tcpCheck(target: CheckTarget, timeoutMs: number, signal?: AbortSignal): Promise<void> {
  const addr = hostPort(target);
  return new Promise((resolve, reject) => {
    if (signal?.aborted) {
      reject(signal.reason as Error);
      return;
    }
    const socket = net.connect({ host: target.host, port: target.port });
    const finish = (err?: Error) => {
      clearTimeout(timer);
      signal?.removeEventListener('abort', onAbort);
      socket.destroy();
      if (err) reject(err);
      else resolve();
    };
    const onAbort = () => finish(signal?.reason as Error);
    const timer = setTimeout(
      () =>
        finish(
          new HealthCheckError(
            64,
            `failed to make TCP connection to ${addr}: timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`,
          ),
        ),
      timeoutMs,
    );
    signal?.addEventListener('abort', onAbort, { once: true });
    socket.once('connect', () => finish());
    socket.once('error', (err: NodeJS.ErrnoException) => {
      const text = ERRNO_TEXT[err.code ?? ''] ?? err.message;
      finish(new HealthCheckError(4, `failed to make TCP connection to ${addr}: dial tcp ${addr}: connect: ${text}`));
    });
  });
}

/** healthcheck.go HTTPHealthCheck: 200 is healthy; anything else, a timeout or no answer is not. */
export async function httpCheck(
  target: CheckTarget,
  path: string,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const uri = path || '/';
  const prefix = `failed to make HTTP request to '${uri}' on port ${target.port}`;
  const timeout = AbortSignal.timeout(timeoutMs);
  const both = signal ? AbortSignal.any([signal, timeout]) : timeout;
  const started = performance.now();
  let status: number;
  try {
    status = await get(new URL(`http://${hostPort(target)}${uri.startsWith('/') ? uri : `/${uri}`}`), both);
  } catch (err) {
    if (signal?.aborted) throw signal.reason as Error;
    if (timeout.aborted) {
      throw new HealthCheckError(65, `${prefix}: timed out after ${(timeoutMs / 1000).toFixed(2)} seconds`);
    }
    throw new HealthCheckError(5, `${prefix}: connection refused`, err);
  }
  if (status !== 200) {
    const ms = Math.floor(performance.now() - started);
    throw new HealthCheckError(6, `${prefix}: received status code ${status} in ${ms}ms`);
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);

/** GET with Go's client behaviour: follow up to 10 redirects, read the body, one deadline for everything. */
async function get(url: URL, signal: AbortSignal): Promise<number> {
  for (let redirects = 0; ; redirects++) {
    const res = await new Promise<http.IncomingMessage>((resolve, reject) => {
      const req = http.get(url, {
        agent: false,
        signal,
        headers: { 'User-Agent': 'diego-healthcheck', 'X-Forwarded-Proto': 'https' },
      });
      req.once('response', resolve);
      req.once('error', reject);
    });
    for await (const _ of res) {
      // drain: the healthcheck reads the body so servers don't log broken connections
    }
    const location = res.headers.location;
    if (res.statusCode !== undefined && REDIRECTS.has(res.statusCode) && location) {
      if (redirects >= 9) throw new Error('stopped after 10 redirects');
      url = new URL(location, url);
      if (url.protocol !== 'http:') throw new Error(`unsupported protocol scheme "${url.protocol}"`);
      continue;
    }
    return res.statusCode ?? 0;
  }
}

/** One check ready to poll. */
export interface Probe {
  probe(signal: AbortSignal): Promise<void>;
  /** Liveness poll interval of this check. */
  livenessIntervalMs: number;
}

export interface CheckDefaults {
  /** Per-attempt timeout when the check sets none (Diego: 1 s). */
  timeoutMs?: number;
  /** Liveness interval when the check sets none (Diego: 30 s). */
  livenessIntervalMs?: number;
}

/**
 * Where to probe a container port: the container's own address when it has one (runc, containerd), else the
 * host port of its mapping on loopback (process backend, which shares the host network).
 */
export function checkTargetFor(info: ContainerInfo): (containerPort: number) => CheckTarget {
  return (containerPort) => {
    if (info.ip) return { host: info.ip, port: containerPort };
    const mapping = info.ports.find((p) => p.containerPort === containerPort);
    return { host: '127.0.0.1', port: mapping?.hostPort ?? containerPort };
  };
}

/** check_definition.checks → probes, with transformer.go applyCheckDefaults. Invalid checks are skipped, as in Diego. */
export function probesFromChecks(
  checks: readonly CheckModel[],
  target: (containerPort: number) => CheckTarget,
  defaults: CheckDefaults = {},
): Probe[] {
  const timeoutDefault = defaults.timeoutMs ?? DEFAULT_CHECK_TIMEOUT_MS;
  const intervalDefault = defaults.livenessIntervalMs ?? DEFAULT_LIVENESS_INTERVAL_MS;
  const probes: Probe[] = [];
  for (const check of checks) {
    if (check.httpCheck && !check.tcpCheck) {
      const { port, path, requestTimeoutMs, intervalMs } = check.httpCheck;
      const timeoutMs = requestTimeoutMs || timeoutDefault;
      probes.push({
        probe: (signal) => httpCheck(target(port), path || '/', timeoutMs, signal),
        livenessIntervalMs: intervalMs || intervalDefault,
      });
    } else if (check.tcpCheck && !check.httpCheck) {
      const { port, connectTimeoutMs, intervalMs } = check.tcpCheck;
      const timeoutMs = connectTimeoutMs || timeoutDefault;
      probes.push({
        probe: (signal) => tcpCheck(target(port), timeoutMs, signal),
        livenessIntervalMs: intervalMs || intervalDefault,
      });
    }
  }
  return probes;
}

export interface HealthMonitorOptions {
  probes: readonly Probe[];
  /** The DesiredLRP's startTimeoutMs; 0 waits for ever. */
  startTimeoutMs: number;
  startupIntervalMs?: number;
  /** The container's log (Starting health monitoring…, Container became healthy/unhealthy). */
  log?: LogStreamer;
  /** The checks' own log (source HEALTH or check_definition.log_source): the probe errors. */
  healthLog?: LogStreamer;
}

/**
 * health_check_step.go: waits for every probe to pass (calling onHealthy), then polls until one fails.
 * Never resolves: it rejects with an emittable 'health' StepError ("Instance never healthy after <d>: <err>" or
 * "Instance became unhealthy: <err>"), or with 'cancelled' when the signal aborts.
 */
export async function startupThenLiveness(
  opts: HealthMonitorOptions,
  signal: AbortSignal,
  onHealthy?: () => void,
): Promise<never> {
  const interval = opts.startupIntervalMs ?? DEFAULT_STARTUP_INTERVAL_MS;
  opts.log?.stdout('Starting health monitoring of container');
  const started = performance.now();
  try {
    await new ParallelStep(opts.probes.map((p) => startupStep(p, interval, opts.startTimeoutMs))).perform(signal);
  } catch (err) {
    if (signal.aborted || isCancellation(err)) throw cancelledError();
    const elapsed = goDuration(Math.round(performance.now() - started));
    const message = toStepError(err).message;
    opts.healthLog?.stderr(message);
    opts.log?.stderr(`Failed after ${elapsed}: startup health check never passed.`);
    throw emittableError('health', `Instance never healthy after ${elapsed}: ${message}`, err);
  }
  opts.log?.stdout('Container became healthy');
  onHealthy?.();

  try {
    await new CodependentStep(
      opts.probes.map((p) => livenessStep(p)),
      { errorOnExit: false, cancelOthersOnExit: false },
    ).perform(signal);
  } catch (err) {
    if (signal.aborted || isCancellation(err)) throw cancelledError();
    const message = toStepError(err).message;
    opts.healthLog?.stderr(message);
    opts.log?.stderr('Container became unhealthy');
    throw emittableError('health', `Instance became unhealthy: ${message}`, err);
  }
  throw new StepError('internal', 'liveness monitoring stopped without a failure');
}

/** The health monitor as a step of the container's step tree (ready once healthy). */
export class HealthCheckStep implements Step {
  readonly #opts: HealthMonitorOptions;

  constructor(opts: HealthMonitorOptions) {
    this.#opts = opts;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    await startupThenLiveness(this.#opts, signal, ready);
  }
}

/** The healthcheck binary in startup mode for one probe. */
function startupStep(p: Probe, intervalMs: number, startTimeoutMs: number): Step {
  return {
    async perform(signal: AbortSignal): Promise<void> {
      const deadline = new AbortController();
      const timer = startTimeoutMs > 0 ? setTimeout(() => deadline.abort(), startTimeoutMs) : undefined;
      const both = AbortSignal.any([signal, deadline.signal]);
      let lastError: unknown;
      try {
        for (let attempt = 1; ; attempt++) {
          try {
            await p.probe(both);
            return;
          } catch (err) {
            if (signal.aborted) throw cancelledError();
            if (!deadline.signal.aborted) lastError = err;
          }
          if (!deadline.signal.aborted) await sleep(intervalMs, both).catch(() => {});
          if (signal.aborted) throw cancelledError();
          if (deadline.signal.aborted) {
            const reason = lastError instanceof Error ? lastError.message : 'no attempt completed';
            throw new StepError(
              'health',
              `Timed out after ${goDuration(startTimeoutMs)} (${attempt} attempts) waiting for startup check to succeed: ${reason}`,
              { cause: lastError },
            );
          }
        }
      } finally {
        clearTimeout(timer);
      }
    },
  };
}

/** The healthcheck binary in liveness mode for one probe: runs until the probe fails. */
function livenessStep(p: Probe): Step {
  return {
    async perform(signal: AbortSignal): Promise<void> {
      for (;;) {
        try {
          await p.probe(signal);
        } catch (err) {
          if (signal.aborted) throw cancelledError();
          const message = err instanceof Error ? err.message : String(err);
          throw new StepError('health', `Liveness check unsuccessful: ${message}`, { cause: err });
        }
        try {
          await sleep(p.livenessIntervalMs, signal);
        } catch {
          throw cancelledError();
        }
      }
    },
  };
}
