// SerialAction (executor depot/steps/serial_step.go): one after the other, stopping at the first failure.
// Ready when the last step is. A cancelled serial step cancels the running child and fails with its result.
import type { Ready, Step } from '../step.ts';

export class SerialStep implements Step {
  readonly #steps: readonly Step[];

  constructor(steps: readonly Step[]) {
    this.#steps = steps;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    for (const [i, step] of this.#steps.entries()) {
      // A child started after the abort sees an aborted signal and stops at once (Diego: the same).
      await step.perform(signal, i === this.#steps.length - 1 ? ready : undefined);
    }
    if (this.#steps.length === 0) ready?.();
  }
}
