// TimeoutAction (executor depot/steps/timeout_step.go): at the deadline the child is cancelled (a run step
// sends SIGTERM, then SIGKILL after the grace period), and once it has stopped the step fails with
// "exceeded <d> timeout", plus "; <child error>" when the child's error is meant for users.
import { emittableError, toStepError } from '../errors.ts';
import { goDuration } from '../format.ts';
import { noopLogger, type ExecutorLogger } from '../log.ts';
import { childController, type Ready, type Step } from '../step.ts';

export class TimeoutStep implements Step {
  readonly #step: Step;
  readonly #timeoutMs: number;
  readonly #logger: ExecutorLogger;

  constructor(step: Step, timeoutMs: number, logger: ExecutorLogger = noopLogger) {
    this.#step = step;
    this.#timeoutMs = timeoutMs;
    this.#logger = logger;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const { controller, signal: child } = childController(signal);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      this.#logger.error({ timeoutMs: this.#timeoutMs }, 'timeout-step: timed-out');
      controller.abort();
    }, this.#timeoutMs);
    let error: unknown;
    try {
      await this.#step.perform(child, ready);
    } catch (err) {
      error = err;
    } finally {
      clearTimeout(timer);
    }
    if (timedOut) {
      let message = `exceeded ${goDuration(this.#timeoutMs)} timeout`;
      const childError = error === undefined ? undefined : toStepError(error);
      if (childError?.emittable) message += `; ${childError.message}`;
      throw emittableError('timeout', message, error);
    }
    if (error !== undefined) throw toStepError(error);
  }
}
