// Action tree → step tree (executor depot/transformer/transformer.go stepFor), including Diego's log-source
// inheritance: run/download/upload log under their own log_source if set; timeout, try, parallel and
// codependent hand their log_source down to their children; emit_progress uses its log_source for its own
// messages only; serial ignores its log_source. An unset log_source keeps the parent's (container default LOG).
import type { Action } from '../../crds/actions.ts';
import type { Container } from '../backends/types.ts';
import type { DownloadCache } from './download-cache.ts';
import { Downloader } from './downloader.ts';
import { noopLogger, type ExecutorLogger, type LogStreamer } from './log.ts';
import { Semaphore, type Step } from './step.ts';
import { CodependentStep } from './steps/codependent.ts';
import { DownloadStep } from './steps/download.ts';
import { EmitProgressStep } from './steps/emit-progress.ts';
import { ParallelStep } from './steps/parallel.ts';
import { DEFAULT_GRACEFUL_SHUTDOWN_MS, RunStep, type NetworkInfo } from './steps/run.ts';
import { SerialStep } from './steps/serial.ts';
import { TimeoutStep } from './steps/timeout.ts';
import { TryStep } from './steps/try.ts';
import { UploadStep } from './steps/upload.ts';

/** Diego's max_concurrent_downloads default. */
export const DEFAULT_MAX_CONCURRENT_DOWNLOADS = 5;
/** Diego's max_concurrent_uploads default. */
export const DEFAULT_MAX_CONCURRENT_UPLOADS = 5;

export interface ExecutorContext {
  container: Container;
  /** The container's log (its log source; LOG when it has none). */
  log: LogStreamer;
  /** SIGTERM → SIGKILL delay for run steps (Diego: 10 s). */
  gracefulShutdownMs?: number;
  /** When given, run steps export CF_INSTANCE_* from it. */
  network?: NetworkInfo;
  /** Scratch space for downloads and uploads (default: the OS temp dir). */
  tempDir?: string;
  /** The cell's downloader (bounds concurrent transfers cell-wide); by default each built tree gets its own. */
  downloader?: Downloader;
  /** The cell's download cache: download actions with a cacheKey go through it. */
  cache?: DownloadCache;
  /** Share one per cell to bound concurrent transfers (when no downloader is given). */
  downloadLimiter?: Semaphore;
  uploadLimiter?: Semaphore;
  downloadAttempts?: number;
  downloadRetryWaitMs?: number;
  uploadAttempts?: number;
  logger?: ExecutorLogger;
  /** Run steps report no "Exit status N" (Diego's suppressExitStatusCode, for the monitor action's runs). */
  suppressExitStatusCode?: boolean;
}

interface Resolved extends ExecutorContext {
  gracefulShutdownMs: number;
  downloader: Downloader;
  uploadLimiter: Semaphore;
  logger: ExecutorLogger;
}

export function buildStep(action: Action, ctx: ExecutorContext): Step {
  const logger = ctx.logger ?? noopLogger;
  const resolved: Resolved = {
    ...ctx,
    gracefulShutdownMs: ctx.gracefulShutdownMs ?? DEFAULT_GRACEFUL_SHUTDOWN_MS,
    downloader:
      ctx.downloader ??
      new Downloader({
        limiter: ctx.downloadLimiter ?? new Semaphore(DEFAULT_MAX_CONCURRENT_DOWNLOADS),
        attempts: ctx.downloadAttempts,
        retryWaitMs: ctx.downloadRetryWaitMs,
        logger,
      }),
    uploadLimiter: ctx.uploadLimiter ?? new Semaphore(DEFAULT_MAX_CONCURRENT_UPLOADS),
    logger,
  };
  return stepFor(action, ctx.log, resolved);
}

function stepFor(action: Action, log: LogStreamer, ctx: Resolved): Step {
  const { container, logger } = ctx;
  if (action.download) {
    return new DownloadStep({
      container,
      action: action.download,
      log: log.withSource(action.download.logSource),
      tempDir: ctx.tempDir,
      downloader: ctx.downloader,
      cache: ctx.cache,
      logger,
    });
  }
  if (action.upload) {
    return new UploadStep({
      container,
      action: action.upload,
      log: log.withSource(action.upload.logSource),
      tempDir: ctx.tempDir,
      limiter: ctx.uploadLimiter,
      attempts: ctx.uploadAttempts,
      logger,
    });
  }
  if (action.run) {
    return new RunStep({
      container,
      action: action.run,
      log: log.withSource(action.run.logSource),
      gracefulShutdownMs: ctx.gracefulShutdownMs,
      network: ctx.network,
      suppressExitStatusCode: ctx.suppressExitStatusCode,
      logger,
    });
  }
  if (action.timeout) {
    const inner = stepFor(action.timeout.action, log.withSource(action.timeout.logSource), ctx);
    return new TimeoutStep(inner, action.timeout.timeoutMs, logger);
  }
  if (action.emitProgress) {
    const { action: child, logSource, ...messages } = action.emitProgress;
    return new EmitProgressStep(stepFor(child, log, ctx), messages, log.withSource(logSource));
  }
  if (action.try) {
    return new TryStep(stepFor(action.try.action, log.withSource(action.try.logSource), ctx), logger);
  }
  if (action.parallel) {
    const childLog = log.withSource(action.parallel.logSource);
    return new ParallelStep(action.parallel.actions.map((a) => stepFor(a, childLog, ctx)));
  }
  if (action.serial) {
    return new SerialStep(action.serial.actions.map((a) => stepFor(a, log, ctx)));
  }
  if (action.codependent) {
    const childLog = log.withSource(action.codependent.logSource);
    return new CodependentStep(
      action.codependent.actions.map((a) => stepFor(a, childLog, ctx)),
      { errorOnExit: true, cancelOthersOnExit: false },
    );
  }
  // bbs models/actions.go: an Action with no inner action fails validation this way.
  throw new Error('Invalid field: inner-action');
}
