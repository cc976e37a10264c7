// Turns a byte stream into lines for ProcessIO; any backend that reads a process's pipes can use it.
import { StringDecoder } from 'node:string_decoder';

/** Longest partial line kept in memory; a process that never writes a newline is passed on in pieces. */
export const MAX_PARTIAL_LINE = 64 * 1024;

export class LineSplitter {
  readonly #emit: (line: string) => void;
  readonly #decoder = new StringDecoder('utf8');
  #partial = '';

  constructor(emit: (line: string) => void) {
    this.#emit = emit;
  }

  write(chunk: Buffer): void {
    const text = this.#partial + this.#decoder.write(chunk);
    const lines = text.split('\n');
    this.#partial = lines.pop() ?? '';
    for (const line of lines) this.#emit(line);
    if (this.#partial.length > MAX_PARTIAL_LINE) {
      this.#emit(this.#partial);
      this.#partial = '';
    }
  }

  /** Emits what is left after the last newline (a final line without one). */
  end(): void {
    const rest = this.#partial + this.#decoder.end();
    this.#partial = '';
    if (rest !== '') this.#emit(rest);
  }
}
