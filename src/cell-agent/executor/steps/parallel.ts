// ParallelAction (executor depot/steps/parallel_step.go): all children at once; waits for every one of them
// and fails with the combined errors. A failing child does not stop the others. Ready when all are ready.
import { aggregateErrors } from '../errors.ts';
import { readyWhenAll, type Ready, type Step } from '../step.ts';

export class ParallelStep implements Step {
  readonly #steps: readonly Step[];

  constructor(steps: readonly Step[]) {
    this.#steps = steps;
  }

  async perform(signal: AbortSignal, ready?: Ready): Promise<void> {
    const readies = readyWhenAll(this.#steps.length, ready);
    const results = await Promise.allSettled(this.#steps.map((step, i) => step.perform(signal, readies[i])));
    const error = aggregateErrors(results.flatMap((r): unknown[] => (r.status === 'rejected' ? [r.reason] : [])));
    if (error) throw error;
  }
}
