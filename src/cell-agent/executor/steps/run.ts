// RunAction → a process in the container (executor depot/steps/run_step.go).
import type { Action } from '../../../crds/actions.ts';
import type { Container, EnvVar, ProcessHandle, ProcessIO } from '../../backends/types.ts';
import { cancelledError, exceededGracefulShutdownError, exitTimeoutError, StepError, toStepError } from '../errors.ts';
import { goDuration } from '../format.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from '../log.ts';
import { aborted, type Ready, type Step } from '../step.ts';

export type RunActionModel = NonNullable<Action['run']>;

/** Diego's graceful_shutdown_interval: SIGTERM first, SIGKILL this long after. */
export const DEFAULT_GRACEFUL_SHUTDOWN_MS = 10_000;
/** How long to wait for a SIGKILLed process to be reported gone (run_step.go ExitTimeout). */
export const EXIT_TIMEOUT_MS = 1_000;

/** A port as the executor knows it (executor.PortMapping), including Envoy's TLS proxy ports. */
export interface NetworkPortMapping {
  containerPort: number;
  hostPort: number;
  containerTlsProxyPort?: number;
  hostTlsProxyPort?: number;
}

/** What the rep knows about the container's network, exported to processes as CF_INSTANCE_*. */
export interface NetworkInfo {
  externalIp: string;
  internalIp: string;
  internalIpv6?: string;
  ports: NetworkPortMapping[];
}

export interface RunStepOptions {
  container: Container;
  action: RunActionModel;
  /** Already switched to the action's log_source. */
  log: LogStreamer;
  gracefulShutdownMs?: number;
  /** When given, CF_INSTANCE_* variables are added to the environment as Diego does. */
  network?: NetworkInfo;
  /** Health-check processes report their output, not "Exit status N" (Diego's suppressExitStatusCode). */
  suppressExitStatusCode?: boolean;
  logger?: ExecutorLogger;
}

type Outcome = { status: number } | { error: unknown };

export class RunStep implements Step {
  readonly #opts: RunStepOptions;
  readonly #gracefulShutdownMs: number;
  readonly #logger: ExecutorLogger;

  constructor(opts: RunStepOptions) {
    this.#opts = opts;
    this.#gracefulShutdownMs = opts.gracefulShutdownMs ?? DEFAULT_GRACEFUL_SHUTDOWN_MS;
    this.#logger = opts.logger ?? noopLogger;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const { container, action, log } = this.#opts;
    if (signal.aborted) throw cancelledError();

    const env: EnvVar[] = [
      ...(action.env ?? []).map((e) => ({ name: e.name, value: e.value ?? '' })),
      ...(this.#opts.network ? networkingEnv(this.#opts.network) : []),
    ];
    const io: ProcessIO = action.suppressLogOutput
      ? { stdout() {}, stderr() {} }
      : { stdout: (line) => log.stdout(line), stderr: (line) => log.stderr(line) };

    let proc: ProcessHandle;
    try {
      proc = await container.run(
        {
          path: action.path,
          args: action.args ?? [],
          dir: action.dir || undefined,
          env,
          user: action.user,
          limits: action.resourceLimits?.nofile === undefined ? undefined : { nofile: action.resourceLimits.nofile },
        },
        io,
      );
    } catch (err) {
      const error = toStepError(err);
      this.#logger.error({ err: error.message, path: action.path }, 'failed-creating-process');
      this.#writeToStdout(`failed-creating-process: ${error.message}`);
      throw error;
    }
    this.#logger.debug({ pid: proc.pid, path: action.path }, 'successful-process-create');
    ready?.();

    const exit: Promise<Outcome> = proc.wait().then(
      (status) => ({ status }),
      (error: unknown) => ({ error }),
    );
    let cancelled = false;
    let killed = false;
    const abort = aborted(signal);
    let outcome = await Promise.race([exit, abort.promise.then(() => undefined)]);
    abort.dispose();
    if (outcome === undefined) {
      cancelled = true;
      this.#logger.debug({ pid: proc.pid }, 'signalling-terminate');
      proc.signal('SIGTERM');
      outcome = await within(exit, this.#gracefulShutdownMs);
      if (outcome === undefined) {
        killed = true;
        this.#logger.info({ pid: proc.pid }, 'graceful-shutdown-timeout-exceeded: signalling-kill');
        proc.signal('SIGKILL');
        outcome = await within(exit, EXIT_TIMEOUT_MS);
        if (outcome === undefined) {
          this.#logger.error({ pid: proc.pid, timeoutMs: EXIT_TIMEOUT_MS }, 'process-did-not-exit');
          throw exitTimeoutError();
        }
      }
    }
    if ('error' in outcome) throw toStepError(outcome.error);

    const status = outcome.status;
    this.#logger.info({ pid: proc.pid, exitStatus: status, cancelled }, 'process-exit');
    let exitMessage = '';
    let emittableMessage = '';
    if (!this.#opts.suppressExitStatusCode) {
      exitMessage = `Exit status ${status}`;
      emittableMessage = `${log.sourceName}: Exited with status ${status}`;
    }
    if (killed) {
      exitMessage = `${exitMessage} (exceeded ${goDuration(this.#gracefulShutdownMs)} graceful shutdown interval)`;
    }
    if (status !== 0 && (await this.#outOfMemory())) {
      exitMessage = `${exitMessage} (out of memory)`;
      emittableMessage = `${emittableMessage} (out of memory)`;
    }
    this.#writeToStdout(exitMessage);

    if (killed) throw exceededGracefulShutdownError();
    if (cancelled) throw cancelledError();
    if (status !== 0) {
      throw new StepError('exit', emittableMessage, { emittable: true, exitStatus: status });
    }
  }

  async #outOfMemory(): Promise<boolean> {
    try {
      const info = await this.#opts.container.info();
      return (info.events ?? []).some((e) => e.toLowerCase() === 'out of memory');
    } catch (err) {
      this.#logger.error({ err: String(err) }, 'failed-to-get-info');
      return false;
    }
  }

  #writeToStdout(message: string): void {
    if (!this.#opts.action.suppressLogOutput && message !== '') this.#opts.log.stdout(message);
  }
}

/** The CF_INSTANCE_* variables, exactly as run_step.go networkingEnvVars builds them. */
export function networkingEnv(network: NetworkInfo): EnvVar[] {
  const env: EnvVar[] = [
    { name: 'CF_INSTANCE_IP', value: network.externalIp },
    { name: 'CF_INSTANCE_INTERNAL_IP', value: network.internalIp },
  ];
  if (network.internalIpv6) env.push({ name: 'CF_INSTANCE_INTERNAL_IPV6', value: network.internalIpv6 });
  const first = network.ports[0];
  if (first) {
    if (first.hostPort > 0) {
      env.push({ name: 'CF_INSTANCE_PORT', value: String(first.hostPort) });
      env.push({ name: 'CF_INSTANCE_ADDR', value: `${network.externalIp}:${first.hostPort}` });
    }
    // Field order and omitempty as in the Go struct.
    const ports = network.ports.map((p) => ({
      ...(p.hostPort ? { external: p.hostPort } : {}),
      internal: p.containerPort,
      ...(p.hostTlsProxyPort ? { external_tls_proxy: p.hostTlsProxyPort } : {}),
      ...(p.containerTlsProxyPort ? { internal_tls_proxy: p.containerTlsProxyPort } : {}),
    }));
    env.push({ name: 'CF_INSTANCE_PORTS', value: JSON.stringify(ports) });
  } else {
    env.push({ name: 'CF_INSTANCE_PORT', value: '' });
    env.push({ name: 'CF_INSTANCE_ADDR', value: '' });
    env.push({ name: 'CF_INSTANCE_PORTS', value: '[]' });
  }
  return env;
}

/** The promise's value, or undefined if it takes longer than ms. */
async function within<T>(promise: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<undefined>((resolve) => {
    timer = setTimeout(() => resolve(undefined), ms);
  });
  try {
    return await Promise.race([promise, timeout]);
  } finally {
    clearTimeout(timer);
  }
}
