// CodependentAction (executor depot/steps/codependent_step.go): all children at once; as soon as one fails the
// others are cancelled. For actions Diego builds it with errorOnExit, so a child that *succeeds* counts as a
// failure too ("Codependent step exited"): the action never succeeds. The cancelled siblings' errors are not
// displayable, so the combined message names only the child that ended it.
import { aggregateErrors, codependentExitedError } from '../errors.ts';
import { childController, readyWhenAll, type Ready, type Step } from '../step.ts';

export interface CodependentOptions {
  /** A child that exits cleanly is an error (true for CodependentAction). */
  errorOnExit: boolean;
  /** A child that exits cleanly cancels the others (the long-lived container step with sidecars). */
  cancelOthersOnExit: boolean;
}

export class CodependentStep implements Step {
  readonly #steps: readonly Step[];
  readonly #opts: CodependentOptions;

  constructor(steps: readonly Step[], opts: CodependentOptions = { errorOnExit: true, cancelOthersOnExit: false }) {
    this.#steps = steps;
    this.#opts = opts;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const { controller, signal: children } = childController(signal);
    const readies = readyWhenAll(this.#steps.length, ready);
    const errors: unknown[] = [];
    await Promise.all(
      this.#steps.map(async (step, i) => {
        let error: unknown;
        try {
          await step.perform(children, readies[i]);
          if (this.#opts.errorOnExit) error = codependentExitedError();
          else if (this.#opts.cancelOthersOnExit) controller.abort();
        } catch (err) {
          error = err;
        }
        if (error !== undefined) {
          errors.push(error);
          controller.abort();
        }
      }),
    );
    const error = aggregateErrors(errors);
    if (error) throw error;
  }
}
