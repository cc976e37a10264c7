// One LRP instance's life once its container exists, shared by a fresh start and a re-adopted container: the
// long-running action, its sidecars, the health monitor (check_definition checks, or else the legacy monitor
// action, or none), and readiness checks — Diego's LongLived = Codependent[action, sidecars..., monitor|checks,
// readiness] (executor transformer.go StepsRunner, steps/codependent_step.go with errorOnExit = false and
// cancelOthersOnExit = "has sidecars"). What ends the instance:
//  * any part failing (a non-zero exit, a failed check);
//  * with sidecars, any part exiting at all, even with status 0;
//  * without sidecars, the action exiting 0 only when nothing else watches the instance: with a health check or
//    a readiness check the instance lives on (the process may have daemonized) until a check fails.
// The instance is RUNNING once healthy (or, without checks, once the action and sidecars have started);
// readiness only toggles routable.
import type { IDesiredLRP } from '../crds/models.ts';
import type { Container, ContainerInfo } from './backends/types.ts';
import {
  buildStep,
  checkTargetFor,
  probesFromChecks,
  startupThenLiveness,
  toStepError,
  type ExecutorContext,
  type LogStreamer,
} from './executor/index.ts';
import { MonitorStep, monitorReadiness } from './executor/monitor.ts';
import { readyWhenAll } from './executor/step.ts';

/** Starts (or re-attaches to) a long-running process; `ready` fires when it runs. */
export type LongRunning = (signal: AbortSignal, ready: (() => void) | undefined) => Promise<void>;

export interface SuperviseOptions {
  d: IDesiredLRP;
  container: Container;
  info: ContainerInfo;
  log: LogStreamer;
  /** Executor context for the monitor action's runs. */
  ctx: ExecutorContext;
  /** Stops the instance on purpose (SIGTERM → SIGKILL): not a crash. */
  signal: AbortSignal;
  /** The agent lets go of the instance and leaves it running (restart): stop watching, touch nothing. */
  detach?: AbortSignal;
  /** Starts (or re-attaches to) the action. */
  action: LongRunning;
  /** Starts (or re-attaches to) each sidecar. */
  sidecars?: LongRunning[];
  onHealthy(): void;
  onRoutable(routable: boolean): void;
  /** A re-adopted RUNNING instance: its startup checks passed long ago (only liveness runs). */
  alreadyHealthy?: boolean;
  startupIntervalMs?: number;
  livenessIntervalMs?: number;
}

/** The reason an instance ended when its process exited with status 0 and nothing kept it alive. */
export const PROCESS_EXITED = 'the process exited';
export const SIDECAR_EXITED = 'a sidecar exited';

/** Resolves with the crash reason, or undefined when the instance was stopped on purpose or let go of. */
export async function supervise(o: SuperviseOptions): Promise<string | undefined> {
  const { d, info, log } = o;
  const sidecars = o.sidecars ?? [];
  // Ends every part when one of them ends the instance.
  const stopAll = new AbortController();
  // The checks also stop on detach; the processes do not: they must go on running.
  const checksSignal = AbortSignal.any([o.signal, stopAll.signal, ...(o.detach ? [o.detach] : [])]);
  const processSignal = AbortSignal.any([o.signal, stopAll.signal]);
  const probes = probesFromChecks(d.spec.checkDefinition?.checks ?? [], checkTargetFor(info), {
    livenessIntervalMs: o.livenessIntervalMs,
  });
  const monitor = probes.length === 0 && d.spec.monitor ? d.spec.monitor : undefined;
  const readinessProbes = probesFromChecks(d.spec.checkDefinition?.readinessChecks ?? [], checkTargetFor(info), {
    livenessIntervalMs: o.livenessIntervalMs,
  });
  const watched = probes.length > 0 || monitor !== undefined || readinessProbes.length > 0;
  const healthy = () => {
    if (!o.alreadyHealthy) o.onHealthy();
  };

  let end!: (reason: string) => void;
  const ended = new Promise<string>((resolve) => (end = resolve));

  // Without a health check the instance is healthy once every process has started (Diego: codependent ready).
  const started =
    probes.length === 0 && !monitor
      ? readyWhenAll(1 + sidecars.length, healthy)
      : Array<undefined>(1 + sidecars.length);
  const action = o.action(processSignal, started[0]);
  action.then(
    () => {
      if (sidecars.length > 0 || !watched) end(PROCESS_EXITED);
    },
    (err: unknown) => end(toStepError(err).message),
  );
  const sidecarRuns = sidecars.map((run, i) => {
    const p = run(processSignal, started[i + 1]);
    p.then(
      () => end(SIDECAR_EXITED),
      (err: unknown) => end(toStepError(err).message),
    );
    return p;
  });
  let health: Promise<void> | undefined;
  if (probes.length > 0) {
    health = startupThenLiveness(
      {
        probes,
        startTimeoutMs: o.alreadyHealthy ? 0 : (d.spec.startTimeoutMs ?? 0),
        startupIntervalMs: o.startupIntervalMs,
        log,
      },
      checksSignal,
      healthy,
    );
  } else if (monitor) {
    health = new MonitorStep({
      check: (buffer) => buildStep(monitor, { ...o.ctx, log: buffer, suppressExitStatusCode: true }),
      log,
      startTimeoutMs: o.alreadyHealthy ? 0 : (d.spec.startTimeoutMs ?? 0),
      unhealthyIntervalMs: o.startupIntervalMs,
      healthyIntervalMs: o.livenessIntervalMs,
    }).perform(checksSignal, healthy);
  }
  health?.catch((err: unknown) => end(toStepError(err).message));
  const readiness = monitorReadiness(
    { probes: readinessProbes, untilReadyIntervalMs: o.startupIntervalMs, onChange: (r) => o.onRoutable(r), log },
    checksSignal,
  );
  const detached = new Promise<'detached'>((resolve) => {
    if (o.detach?.aborted) resolve('detached');
    o.detach?.addEventListener('abort', () => resolve('detached'), { once: true });
  });
  const stopped = new Promise<'stopped'>((resolve) => {
    if (o.signal.aborted) resolve('stopped');
    o.signal.addEventListener('abort', () => resolve('stopped'), { once: true });
  });
  const outcome = await Promise.race([ended, detached, stopped]);
  if (outcome === 'detached') return undefined; // the checks saw `detach`; the processes are left alone
  stopAll.abort();
  const quiet = (p: Promise<unknown> | undefined) => p?.catch(() => undefined);
  await Promise.all([quiet(action), ...sidecarRuns.map(quiet), quiet(health), readiness]);
  if (o.signal.aborted) return undefined; // stopped on purpose: not a crash
  const reason = outcome === 'stopped' ? PROCESS_EXITED : outcome;
  const events = (await o.container.info().catch(() => info)).events ?? [];
  const disk = events.find((e) => e.startsWith('disk quota exceeded'));
  return disk && !reason.includes(disk) ? `${reason} (${disk})` : reason;
}
