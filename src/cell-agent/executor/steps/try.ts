// TryAction (executor depot/steps/try_step.go): runs the child and succeeds whatever happens, logging a failure
// to the operator log only (the app log sees whatever the child itself wrote).
import { toStepError } from '../errors.ts';
import { noopLogger, type ExecutorLogger } from '../log.ts';
import type { Ready, Step } from '../step.ts';

export class TryStep implements Step {
  readonly #step: Step;
  readonly #logger: ExecutorLogger;

  constructor(step: Step, logger: ExecutorLogger = noopLogger) {
    this.#step = step;
    this.#logger = logger;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    try {
      await this.#step.perform(signal, ready);
    } catch (err) {
      this.#logger.info({ error: toStepError(err).message }, 'try-step: failed');
    }
  }
}
