// One LRP instance's life once its container exists, shared by a fresh start and a re-adopted container: the
// long-running action, the health monitor (check_definition checks, or else the legacy monitor action, or none),
// and readiness checks, as Diego's LongLived = Codependent[action, monitor|checks, readiness]. The instance is
// RUNNING once healthy and ends when the action exits or the monitor fails; readiness only toggles routable.
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
  /** Starts (or re-attaches to) the action; `ready` fires when it runs (used when there is no health check). */
  action(signal: AbortSignal, ready: (() => void) | undefined): Promise<void>;
  onHealthy(): void;
  onRoutable(routable: boolean): void;
  /** A re-adopted RUNNING instance: its startup checks passed long ago (only liveness runs). */
  alreadyHealthy?: boolean;
  startupIntervalMs?: number;
  livenessIntervalMs?: number;
}

/** Resolves with the crash reason, or undefined when the instance was stopped on purpose or let go of. */
export async function supervise(o: SuperviseOptions): Promise<string | undefined> {
  const { d, info, log } = o;
  // Ends the action and the checks when one of them ends the instance.
  const stopBoth = new AbortController();
  // The checks also stop on detach; the action does not: its processes must go on running.
  const both = AbortSignal.any([o.signal, stopBoth.signal, ...(o.detach ? [o.detach] : [])]);
  const probes = probesFromChecks(d.spec.checkDefinition?.checks ?? [], checkTargetFor(info), {
    livenessIntervalMs: o.livenessIntervalMs,
  });
  const monitor = probes.length === 0 && d.spec.monitor ? d.spec.monitor : undefined;
  const healthy = () => {
    if (!o.alreadyHealthy) o.onHealthy();
  };
  const actionSignal = AbortSignal.any([o.signal, stopBoth.signal]);
  const action = o.action(actionSignal, probes.length === 0 && !monitor ? healthy : undefined);
  action.catch(() => undefined); // observed below, or abandoned on detach
  let health: Promise<never>;
  if (probes.length > 0) {
    health = startupThenLiveness(
      {
        probes,
        startTimeoutMs: o.alreadyHealthy ? 0 : (d.spec.startTimeoutMs ?? 0),
        startupIntervalMs: o.startupIntervalMs,
        log,
      },
      both,
      healthy,
    );
  } else if (monitor) {
    health = new MonitorStep({
      check: (buffer) => buildStep(monitor, { ...o.ctx, log: buffer, suppressExitStatusCode: true }),
      log,
      startTimeoutMs: o.alreadyHealthy ? 0 : (d.spec.startTimeoutMs ?? 0),
      unhealthyIntervalMs: o.startupIntervalMs,
      healthyIntervalMs: o.livenessIntervalMs,
    })
      .perform(both, healthy)
      .then(() => new Promise<never>(() => undefined));
  } else {
    health = new Promise<never>(() => undefined);
  }
  health.catch(() => undefined);
  const readinessProbes = probesFromChecks(d.spec.checkDefinition?.readinessChecks ?? [], checkTargetFor(info), {
    livenessIntervalMs: o.livenessIntervalMs,
  });
  const readiness = monitorReadiness(
    { probes: readinessProbes, untilReadyIntervalMs: o.startupIntervalMs, onChange: (r) => o.onRoutable(r), log },
    both,
  );
  const detached = new Promise<'detached'>((resolve) => {
    if (o.detach?.aborted) resolve('detached');
    o.detach?.addEventListener('abort', () => resolve('detached'), { once: true });
  });
  // The instance lives while both the action runs and the checks pass; whichever ends first ends it.
  const outcome = await Promise.race([action.then(() => 'the process exited'), health, detached]).catch(
    (err: unknown) => toStepError(err).message,
  );
  if (outcome === 'detached') return undefined; // the checks saw `detach`; the action is left alone
  stopBoth.abort();
  await action.catch(() => undefined);
  await readiness;
  if (o.signal.aborted) return undefined; // stopped on purpose: not a crash
  const events = (await o.container.info().catch(() => info)).events ?? [];
  const disk = events.find((e) => e.startsWith('disk quota exceeded'));
  return disk && !String(outcome).includes(disk) ? `${String(outcome)} (${disk})` : String(outcome);
}
