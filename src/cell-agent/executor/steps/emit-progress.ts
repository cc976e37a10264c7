// EmitProgressAction (executor depot/steps/emit_progress_step.go): logs the start message, runs the child,
// then logs the success message, or the failure prefix followed by ": <error>" when the error is meant for
// users (otherwise the prefix alone). The child's error is passed on unchanged.
import { toStepError } from '../errors.ts';
import type { LogStreamer } from '../log.ts';
import type { Ready, Step } from '../step.ts';

export interface EmitProgressMessages {
  startMessage?: string;
  successMessage?: string;
  failureMessagePrefix?: string;
}

export class EmitProgressStep implements Step {
  readonly #step: Step;
  readonly #messages: EmitProgressMessages;
  readonly #log: LogStreamer;

  constructor(step: Step, messages: EmitProgressMessages, log: LogStreamer) {
    this.#step = step;
    this.#messages = messages;
    this.#log = log;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const { startMessage, successMessage, failureMessagePrefix } = this.#messages;
    if (startMessage) this.#log.stdout(startMessage);
    try {
      await this.#step.perform(signal, ready);
    } catch (err) {
      if (failureMessagePrefix) {
        const error = toStepError(err);
        this.#log.stderr(error.emittable ? `${failureMessagePrefix}: ${error.message}` : failureMessagePrefix);
      }
      throw err;
    }
    if (successMessage) this.#log.stdout(successMessage);
  }
}
