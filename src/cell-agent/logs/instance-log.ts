// The log of one instance (or task): what its processes print, what its health checks report and what the cell
// says about its container, each line turned into a Loggregator-style envelope and published to the cell's log
// hub (the ops server streams from it). The cell's own lifecycle lines are also written to the agent's log; app
// lines are not, unless asked (logAppLines): a tenant printing gigabytes must not make the agent write (and,
// behind a slow stdout, buffer) gigabytes of its own — Diego's rep does not log app output either. App lines go
// through the instance's rate limit; the cell's lifecycle lines do not (Diego sends those straight to
// Loggregator, storenode.go).
import type { Logger } from 'pino';
import { LogStreamer, type LogMessage } from '../executor/log.ts';
import { logEnvelope, type LogEnvelope, type LogType } from './envelope.ts';
import type { LogHub } from './hub.ts';
import { LogRateLimiter, type LogRateLimits } from './rate-limit.ts';

export interface InstanceLogOptions {
  cellId: string;
  /** The container's guid as Diego names it in its messages: the instance guid, or the task guid. */
  containerGuid: string;
  /** The stream the lines go to on the hub. */
  logGuid: string;
  /** Tags of every line, with source_id and instance_id (see envelope.ts logTags). */
  tags: Record<string, string>;
  /** The container's log source (DesiredLRP/Task log_source); Diego's default is LOG. */
  sourceName?: string;
  limits: LogRateLimits;
  hub?: LogHub;
  /** The agent's log; one line per envelope, with the log guid and index bound. */
  log: Logger;
  /** Called each time the app is told it exceeded its limit (the AppInstanceExceededLogRateLimitCount metric). */
  onExceeded?: () => void;
  /** Also write app lines to the agent's own log (debugging; off by default). */
  logAppLines?: boolean;
  now?: () => number;
}

export type LifecycleEvent =
  'creating' | 'created' | 'create-failed' | 'stopping' | 'destroying' | 'destroyed' | 'destroy-failed';

export class InstanceLog {
  /** The streamer the executor writes app lines to (rate limited). */
  readonly streamer: LogStreamer;
  readonly limiter: LogRateLimiter;
  /** Bytes of app lines let through so far (Diego's log_rate metric is its rate). */
  bytesEmitted = 0;
  readonly #o: InstanceLogOptions;

  constructor(opts: InstanceLogOptions) {
    this.#o = opts;
    this.limiter = new LogRateLimiter(opts.limits, opts.now);
    this.streamer = new LogStreamer((m) => this.#app(m), opts.sourceName);
  }

  /** The cell's own message about the container, worded as Diego's executor words it, with the container's source. */
  lifecycle(event: LifecycleEvent, error?: string): void {
    const { cellId, containerGuid: guid } = this.#o;
    const [type, text]: [LogType, string] = {
      creating: ['OUT', `Cell ${cellId} creating container for instance ${guid}`],
      created: ['OUT', `Cell ${cellId} successfully created container for instance ${guid}`],
      'create-failed': ['ERR', `Cell ${cellId} failed to create container for instance ${guid}: ${error ?? ''}`],
      stopping: ['OUT', `Cell ${cellId} stopping instance ${guid}`],
      destroying: ['OUT', `Cell ${cellId} destroying container for instance ${guid}`],
      destroyed: ['OUT', `Cell ${cellId} successfully destroyed container for instance ${guid}`],
      'destroy-failed': ['OUT', `Cell ${cellId} failed to destroy container for instance ${guid}`],
    }[event] as [LogType, string];
    this.#emit(this.streamer.sourceName, type, text, true);
  }

  #app(m: LogMessage): void {
    const verdict = this.limiter.check(Buffer.byteLength(m.line));
    if (verdict.allowed) {
      this.bytesEmitted += Buffer.byteLength(m.line);
      this.#emit(m.source, m.stream === 'stderr' ? 'ERR' : 'OUT', m.line);
      return;
    }
    if (verdict.notice) {
      this.#o.onExceeded?.();
      this.#emit(m.source, 'OUT', verdict.notice);
    }
  }

  #emit(sourceType: string, type: LogType, payload: string, cell = false): void {
    const envelope: LogEnvelope = logEnvelope(this.#o.tags, sourceType, type, payload);
    this.#o.hub?.publish(this.#o.logGuid, envelope);
    if (cell || this.#o.logAppLines)
      this.#o.log.info({ source: sourceType, stream: type === 'ERR' ? 'stderr' : 'stdout' }, payload);
  }
}
