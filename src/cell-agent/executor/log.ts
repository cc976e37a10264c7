// App log lines (what `cf logs` shows) and the executor's own operational log.
// LogStreamer is executor depot/log_streamer: a source name plus stdout/stderr, and WithSource to derive the
// streamer of an action that names its own log_source.

export type LogStream = 'stdout' | 'stderr';

export interface LogMessage {
  /** Diego's source type: APP, STG, HEALTH, CELL, ...; the container default is 'LOG'. */
  source: string;
  stream: LogStream;
  line: string;
}

export type LogSink = (message: LogMessage) => void;

/** Diego's default source name when the container's log config has none (log_streamer.DefaultLogSource). */
export const DEFAULT_LOG_SOURCE = 'LOG';
/** Longest message Diego sends to Loggregator (log_streamer.MAX_MESSAGE_SIZE); longer lines are split. */
export const MAX_MESSAGE_SIZE = 61440;

export class LogStreamer {
  readonly sourceName: string;
  readonly #sink: LogSink;

  constructor(sink: LogSink, sourceName?: string) {
    this.#sink = sink;
    this.sourceName = sourceName || DEFAULT_LOG_SOURCE;
  }

  /** A streamer for an action's log_source; an empty or missing source keeps this one's (Diego's WithSource). */
  withSource(sourceName: string | undefined): LogStreamer {
    return sourceName ? new LogStreamer(this.#sink, sourceName) : this;
  }

  stdout(text: string): void {
    this.#write('stdout', text);
  }

  stderr(text: string): void {
    this.#write('stderr', text);
  }

  /**
   * As Diego's stream destination: '\n' and '\r' both end a message, empty messages are dropped, and lines
   * longer than MAX_MESSAGE_SIZE bytes are split (on a character boundary).
   */
  #write(stream: LogStream, text: string): void {
    for (const line of text.split(/[\r\n]/)) {
      if (line === '') continue;
      for (const chunk of splitBytes(line, MAX_MESSAGE_SIZE)) {
        this.#sink({ source: this.sourceName, stream, line: chunk });
      }
    }
  }
}

/** A sink that drops everything (Diego's noop streamer, for steps whose output nobody reads). */
export const discardLogs: LogSink = () => {};

function splitBytes(line: string, max: number): string[] {
  if (Buffer.byteLength(line) <= max) return [line];
  const chunks: string[] = [];
  let current = '';
  let size = 0;
  for (const ch of line) {
    const n = Buffer.byteLength(ch);
    if (size + n > max) {
      chunks.push(current);
      current = '';
      size = 0;
    }
    current += ch;
    size += n;
  }
  chunks.push(current);
  return chunks;
}

/** The executor's own log (pino-compatible), for operators rather than app developers. */
export interface ExecutorLogger {
  debug(obj: object, msg?: string): void;
  info(obj: object, msg?: string): void;
  warn(obj: object, msg?: string): void;
  error(obj: object, msg?: string): void;
}

export const noopLogger: ExecutorLogger = { debug() {}, info() {}, warn() {}, error() {} };
