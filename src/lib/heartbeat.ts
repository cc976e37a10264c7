// A periodic job that never piles up: the next run is scheduled when the previous one has ended (a setInterval keeps
// firing while a slow API server answers nothing, and the renewals queue up behind it). A failed run is reported and
// the beat goes on; stop() waits for the run in progress.

export class Heartbeat {
  readonly #beat: () => Promise<void>;
  readonly #intervalMs: number;
  readonly #onError: (err: unknown) => void;
  #timer?: NodeJS.Timeout;
  #running?: Promise<void>;
  #stopped = true;

  constructor(beat: () => Promise<void>, intervalMs: number, onError: (err: unknown) => void) {
    this.#beat = beat;
    this.#intervalMs = intervalMs;
    this.#onError = onError;
  }

  /** Beats every intervalMs after the previous beat ended (the first one interval from now). */
  start(): void {
    if (!this.#stopped) return;
    this.#stopped = false;
    this.#schedule();
  }

  async stop(): Promise<void> {
    this.#stopped = true;
    clearTimeout(this.#timer);
    await this.#running;
  }

  #schedule(): void {
    if (this.#stopped) return;
    this.#timer = setTimeout(() => {
      this.#running = this.#beat()
        .catch((err: unknown) => this.#onError(err))
        .finally(() => {
          this.#running = undefined;
          this.#schedule();
        });
    }, this.#intervalMs);
    this.#timer.unref();
  }
}
